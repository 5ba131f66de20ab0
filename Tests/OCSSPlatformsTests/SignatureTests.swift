import OCSSPlatforms
import Testing

/// Golden vectors computed independently with Python's hashlib/hmac/base64 (see each comment), so
/// the signing code is checked against the algorithms, not against itself.
@Suite struct SignatureTests {
    static let top: [String: String] = [
        "method": "taobao.logistics.offline.send", "app_key": "12345678", "session": "sess", "timestamp": "2026-11-26 10:13:00",
        "format": "json", "v": "2.0", "sign_method": "md5", "tid": "2411234567890123456", "out_sid": "SF1234567890", "company_code": "SF",
    ]

    @Test func taobaoTOPThreeMethods() {
        // md5(secret + sorted(k+v) + secret).upper()
        #expect(Signatures.top(Self.top, secret: "helloworld", method: "md5") == "CEF732367F93344E401EA525D4BF7271")
        var h = Self.top
        h["sign_method"] = "hmac"
        // hmac.new(secret, sorted(k+v), md5).upper()
        #expect(Signatures.top(h, secret: "helloworld", method: "hmac") == "4E653359869752194784B9A86066E1A0")
        h["sign_method"] = "hmac-sha256"
        #expect(Signatures.top(h, secret: "helloworld", method: "hmac-sha256") == "EB8EC66BCE739FFFCFEC18D58205598D42C85CA84E96EE6705A3A1D630EE55E5")
        // `sign` never signs itself.
        var withSign = Self.top
        withSign["sign"] = "X"
        #expect(Signatures.top(withSign, secret: "helloworld", method: "md5") == "CEF732367F93344E401EA525D4BF7271")
    }

    @Test func meitunElemeYouzanShopify() {
        // md5(url + "?" + sorted k=v & + secret)
        #expect(
            Signatures.meituan(
                url: "http://127.0.0.1:9/api/v1/order/confirm",
                ["app_id": "5", "timestamp": "1800000000", "order_id": "27061900338318740"], secret: "mtsecret")
                == "61dc05e40bae69153ff8df1402b1fee9")
        // md5(action + token + sorted k=v (JSON values) + secret).upper()
        #expect(
            Signatures.eleme(
                action: "eleme.order.confirmOrderLite", token: "tok",
                ["app_key": "\"ek\"", "timestamp": "1800000000", "orderId": "\"3024712456123\""], secret: "esecret")
                == "FF80D5E8A15D4FE2448684B6B451F2E3")
        #expect(
            Signatures.youzanPush(clientID: "cid", body: Array(#"{"tid":"E20261126"}"#.utf8), secret: "ysecret") == "49a3098ce68a4c68de880c30fe1f1259"
        )
        #expect(
            Signatures.shopify(body: Array(#"{"id":820982911946154508}"#.utf8), secret: "shpss_secret")
                == "jqbalbO3Z8mDmrF2/+wzM3KYvbgqzVBF969vgiIy80I=")
    }

    @Test func shanghaiLocalTime() {
        #expect(shanghaiTime(1_800_000_000) == "2027-01-15 16:00:00")
        #expect(shanghaiTime(0) == "1970-01-01 08:00:00")
    }

    @Test func base64Padding() {
        #expect(Crypto.base64(Array("f".utf8)) == "Zg==")
        #expect(Crypto.base64(Array("fo".utf8)) == "Zm8=")
        #expect(Crypto.base64(Array("foo".utf8)) == "Zm9v")
        #expect(Crypto.base64([]) == "")
    }
}

@Suite struct StatusCallTests {
    let creds = PlatformCredentials(
        base_url: "http://127.0.0.1:9", app_key: "12345678", app_secret: "helloworld", access_token: "tok",
        session: "sess")
    let shipped = StatusUpdate(
        event: "shipped", platformOrderID: "2411234567890123456", carrier: "SF", trackingNumber: "SF1234567890",
        at: 1_800_000_000)

    @Test func taobaoOfflineSendIsASignedForm() throws {
        let r = try StatusCalls.request(platform: "taobao", update: shipped, credentials: creds, nonce: "n")
        #expect(r.method == "POST")
        #expect(r.url == "http://127.0.0.1:9/router/rest")
        let form = String(decoding: r.body, as: UTF8.self)
        #expect(form.contains("tid=2411234567890123456"))
        #expect(form.contains("timestamp=2027-01-15%2016%3A00%3A00"))
        #expect(form.contains("sign="))
    }

    /// Issue 21: `ready` is Meituan's 出餐完成 (which calls its rider); a platform without such a call is never sent one.
    @Test func readyIsMeituansMealCompleteAndOnlyMeituans() throws {
        let ready = StatusUpdate(event: "ready", platformOrderID: "27061900338318740", at: 1_800_000_000)
        let r = try StatusCalls.request(platform: "meituan", update: ready, credentials: creds, nonce: "n")
        #expect(r.url.hasPrefix("http://127.0.0.1:9/api/v1/order/preparationMealComplete?") && r.url.contains("sig="))
        #expect(StatusCalls.hasCall(platform: "meituan", event: "ready"))
        #expect(!StatusCalls.hasCall(platform: "eleme", event: "ready") && !StatusCalls.hasCall(platform: "shopify", event: "ready"))
        #expect(throws: StatusCallError.self) { try StatusCalls.request(platform: "eleme", update: ready, credentials: creds, nonce: "n") }
        #expect(throws: StatusCallError.self) {
            try StatusCalls.request(
                platform: "meituan", update: StatusUpdate(event: "handed_over", platformOrderID: "1", at: 1_800_000_000), credentials: creds,
                nonce: "n")
        }
    }

    @Test func missingCredentialsAreNamed() {
        #expect(throws: StatusCallError(message: "missing session")) {
            try StatusCalls.request(
                platform: "taobao", update: shipped,
                credentials: PlatformCredentials(base_url: "x", app_key: "k", app_secret: "s"), nonce: "n")
        }
        var noTracking = shipped
        noTracking.trackingNumber = nil
        #expect(throws: StatusCallError(message: "missing tracking_number")) {
            try StatusCalls.request(platform: "youzan", update: noTracking, credentials: creds, nonce: "n")
        }
    }

    @Test func whichEventsHaveCalls() {
        #expect(StatusCalls.hasCall(platform: "taobao", event: "shipped"))
        #expect(!StatusCalls.hasCall(platform: "taobao", event: "accepted"))
        #expect(StatusCalls.hasCall(platform: "meituan", event: "accepted"))
        #expect(!StatusCalls.hasCall(platform: "direct", event: "shipped"))
    }

    @Test func platformAnswersAreReadTheirWay() {
        #expect(
            StatusCalls.succeeded(
                platform: "taobao", status: 200, body: Array(#"{"logistics_offline_send_response":{"shipping":{"is_success":true}}}"#.utf8)))
        #expect(!StatusCalls.succeeded(platform: "taobao", status: 200, body: Array(#"{"error_response":{"code":27}}"#.utf8)))
        #expect(StatusCalls.succeeded(platform: "meituan", status: 200, body: Array(#"{"data":"ok"}"#.utf8)))
        #expect(!StatusCalls.succeeded(platform: "meituan", status: 200, body: Array(#"{"data":"ng","error":{"code":703}}"#.utf8)))
        #expect(!StatusCalls.succeeded(platform: "shopify", status: 422, body: []))
    }
}
