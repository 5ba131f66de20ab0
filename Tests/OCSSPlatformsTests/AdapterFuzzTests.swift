import Foundation
import OCSSCore
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// Arithmetic on input never traps (CONVENTIONS.md 21). Each adapter's payload is filled with extreme and random
/// numbers in every money, count and time field, signed as the platform signs it, then verified, parsed, validated
/// and encoded. A trap ends the test process, so reaching the end is the check; each case must also come out as an
/// order (valid, or refused by `validate` naming a field) or as a payload error.
@Suite struct AdapterFuzzTests {
    /// Numbers a hostile or broken sender might put in a field, as JSON number text.
    static let extremes = [
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616", "-1", "0", "1e308",
        "-1e308", "1.7976931348623157e308", "99999999999999999999.99", "92233720368547758.07", "-0.01", "0.001", "1e-300",
        "4294967296", "2147483648", "253402300800", "-62135596801",
    ]

    /// `count` values: every extreme once, then seeded random digit strings (signs, fractions, exponents, 1-25 digits).
    static func values(seed: UInt64, count: Int) -> [String] {
        var g = SplitMix64(seed: seed)
        var out = extremes
        while out.count < count {
            var s = Bool.random(using: &g) ? "-" : ""
            s += String((0..<Int.random(in: 1...25, using: &g)).map { _ in Character(String(Int.random(in: 0...9, using: &g))) })
            if s.hasPrefix("0") && s.count > 1 { s.removeFirst() }
            if s.hasPrefix("-0") && s.count > 2 { s.remove(at: s.index(after: s.startIndex)) }
            if Bool.random(using: &g) { s += "." + String(Int.random(in: 0...999_999, using: &g)) }
            if Int.random(in: 0..<4, using: &g) == 0 { s += "e" + String(Int.random(in: -400...400, using: &g)) }
            out.append(s)
        }
        return out
    }

    /// `template` with each `#N` (a JSON number) and `$N` (the same value inside a JSON string) filled by `pick`.
    static func fill(_ template: String, slots: Int, _ pick: (Int) -> String) -> String {
        var s = template
        for i in (0..<slots).reversed() {
            s = s.replacingOccurrences(of: "#\(i)", with: pick(i)).replacingOccurrences(of: "$\(i)", with: pick(i))
        }
        return s
    }

    /// Parses, then validates and encodes an event: must not trap; a refusal is a payload error.
    static func check(_ adapter: String, _ body: String, _ run: () throws(AdapterError) -> AdapterOutcome) {
        do {
            if case .event(let o) = try run() {
                if let problem = o.validate() { #expect(!problem.field.isEmpty, "\(adapter): \(body)") }
                _ = CanonicalJSON.encode(o)
            }
        } catch {
            #expect(error.kind == .payload, "\(adapter): \(error) for \(body)")
        }
    }

    static let shopify =
        #"{"id":#0,"financial_status":"paid","currency":"CNY","total_price":"$1","created_at":"2024-05-18T10:21:44-04:00","#
        + #""shipping_address":{"address1":"文三路398号","city":"杭州市","latitude":#2,"longitude":#3},"#
        + #""line_items":[{"sku":"A","variant_id":#4,"quantity":#5,"price":"$6"}],"shipping_lines":[{"price":"$7"},{"price":"$8"}]}"#
    static let woo =
        #"{"id":#0,"status":"processing","currency":"CNY","total":"$1","shipping_total":"$2","date_created_gmt":"2026-11-26T02:13:00","#
        + #""shipping":{"address_1":"文三路398号","city":"杭州市","state":"CN12","country":"CN"},"#
        + #""line_items":[{"id":#3,"product_id":#4,"variation_id":#5,"sku":"A","quantity":#6,"price":#7}]}"#
    static let eleme =
        #"{"orderId":"1","address":"杭州市西湖区文三路398号","deliveryGeo":"$0,$1","createdAt":"2026-11-26T10:13:05","#
        + #""groups":[{"type":"normal","items":[{"skuId":#2,"extendCode":"A","quantity":#3,"price":#4}]}],"totalPrice":#5,"deliverFee":#6}"#
    static let details: [(platform: String, template: String, slots: Int)] = [
        (
            "taobao",
            #"{"trade_fullinfo_get_response":{"trade":{"tid":#0,"status":"WAIT_SELLER_SEND_GOODS","receiver_address":"天坛路88号","#
                + #""payment":"$1","post_fee":"$2","created":"2026-11-26 10:13:00","orders":{"order":[{"sku_id":#3,"outer_sku_id":"A","num":#4,"price":"$5"}]}}}}"#,
            6
        ),
        (
            "pinduoduo",
            #"{"order_info_get_response":{"order_info":{"order_sn":"1","order_status":1,"refund_status":1,"receiver_address":"新港中路397号","#
                + #""item_list":[{"goods_id":#0,"sku_id":#1,"outer_id":"A","goods_count":#2,"goods_price":#3}],"pay_amount":#4,"postage":#5}}}"#, 6
        ),
        (
            "jd",
            #"{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"orderInfo":{"orderId":"1","orderState":"WAIT_SELLER_STOCK_OUT","#
                + #""consigneeInfo":{"fullAddress":"广州市海珠区"},"itemInfoList":[{"skuId":"$0","outerSkuId":"A","itemTotal":"$1","jdPrice":"$2"}],"#
                + #""orderPayment":"$3","freightPrice":"$4"}}}}"#, 5
        ),
        (
            "eleme_retail",
            #"{"body":{"errno":0,"error":"success","data":{"order":{"order_id":"1","create_time":#0,"user_fee":#1,"send_fee":#2},"#
                + #""user":{"address":"建国路88号","coord":{"longitude":#3,"latitude":#4}},"#
                + #""products":[[{"baidu_product_id":"7","custom_sku_id":"A","product_amount":#5,"product_price":#6}]]}}}"#, 7
        ),
    ]

    @Test(arguments: [1, 2, 3] as [UInt64])
    func signedPushesWithExtremeNumbersNeverTrap(seed: UInt64) throws {
        let vs = Self.values(seed: seed, count: 120)
        var g = SplitMix64(seed: seed &* 31)
        let shopify = Adapters.adapter(for: "shopify")!, woo = Adapters.adapter(for: "woocommerce")!
        let eleme = Adapters.adapter(for: "eleme")!, meituan = Adapters.adapter(for: "meituan")!
        let shopifyCreds = PlatformCredentials(base_url: "", app_secret: "shpss_fuzz")
        let meituanURL = "https://ocss.example.cn/v1/platforms/meituan/webhook"
        let meituanCreds = PlatformCredentials(base_url: "", app_key: "mt-app", app_secret: "mt-secret", callback_url: meituanURL)
        // First every extreme in every slot at once (sums of extremes are where overflow hides), then random mixes.
        for round in 0..<(Self.extremes.count + 200) {
            func pick(_ i: Int) -> String {
                round < Self.extremes.count ? Self.extremes[round] : vs[Int.random(in: 0..<vs.count, using: &g)]
            }

            let s = Self.fill(Self.shopify, slots: 9, pick)
            let sm = InboundMessage(
                headers: [
                    "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": Signatures.shopify(body: Array(s.utf8), secret: "shpss_fuzz"),
                ],
                body: Array(s.utf8))
            Self.check("shopify", s) { () throws(AdapterError) in
                try shopify.verify(sm, credentials: shopifyCreds)
                return try shopify.parse(sm)
            }

            let w = Self.fill(Self.woo, slots: 8, pick)
            let wm = InboundMessage(
                headers: [
                    "X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Signature": Signatures.shopify(body: Array(w.utf8), secret: "wc-fuzz"),
                ],
                body: Array(w.utf8))
            Self.check("woocommerce", w) { () throws(AdapterError) in
                try woo.verify(wm, credentials: PlatformCredentials(base_url: "", app_secret: "wc-fuzz"))
                return try woo.parse(wm)
            }

            // Ele.me: the message is a JSON string inside the signed envelope.
            let message = Self.fill(Self.eleme, slots: 7, pick)
            var fields: [String: String] = ["requestId": "1", "type": "10", "appId": "1", "message": message, "shopId": "1", "timestamp": pick(0)]
            let joined = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined()
            fields["signature"] = Crypto.hex(Crypto.md5(Array((joined + "el-secret").utf8))).uppercased()
            let envelope = String(decoding: try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]), as: UTF8.self)
            let em = InboundMessage(headers: ["Content-Type": "application/json"], body: Array(envelope.utf8))
            Self.check("eleme", envelope) { () throws(AdapterError) in
                try eleme.verify(em, credentials: PlatformCredentials(base_url: "", app_secret: "el-secret"))
                return try eleme.parse(em)
            }

            // Meituan: form values signed once-decoded; `detail` is percent-encoded once more inside the value.
            let detail = #"[{"app_food_code":"F1","sku_id":"A","quantity":#0,"price":#1}]"#
            let once: [String: String] = [
                "app_id": "mt-app", "timestamp": pick(2), "order_id": "27061900338318740", "status": "2",
                "recipient_address": Self.formEncode("杭州市文三路398号"),
                "latitude": pick(3), "longitude": pick(4), "detail": Self.formEncode(Self.fill(detail, slots: 2, pick)),
                "total": pick(5), "shipping_fee": pick(6), "ctime": pick(7),
            ]
            var signed = once
            signed["sig"] = Signatures.meituan(url: meituanURL, once, secret: "mt-secret")
            let form = signed.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.formEncode($0.value))" }.joined(separator: "&")
            let mm = InboundMessage(headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Array(form.utf8))
            Self.check("meituan", form) { () throws(AdapterError) in
                try meituan.verify(mm, credentials: meituanCreds)
                return try meituan.parse(mm)
            }

            // Detail answers (Taobao, Pinduoduo, JD, Ele.me retail) come through the connector with the admin token.
            for d in Self.details {
                let body = Self.fill(d.template, slots: d.slots, pick)
                Self.check(d.platform, body) { () throws(AdapterError) in try AdapterOutcome.fromDetail(platform: d.platform, body: Array(body.utf8))
                }
            }
        }
    }

    /// The two crashes found by attack, pinned: each is now a payload error naming its field.
    @Test func shopifyShippingPricesPastInt64AreRefusedByField() {
        let body = Self.fill(Self.shopify, slots: 9) {
            ["1", "10.00", "30.2", "120.1", "1", "1", "1.00", "92233720368547758.07", "92233720368547758.07"][$0]
        }
        let m = InboundMessage(headers: ["X-Shopify-Topic": "orders/create"], body: Array(body.utf8))
        #expect(throws: AdapterError(.payload, "shipping prices add up past what an amount can hold", field: "shipping_lines[1].price")) {
            try Adapters.adapter(for: "shopify")!.parse(m)
        }
    }

    @Test func meituanCtimeAtInt64MinIsRefusedByField() {
        let form =
            "order_id=1&status=2&detail=\(Self.formEncode(Self.formEncode(#"[{"sku_id":"A","quantity":1,"price":1}]"#)))&ctime=-9223372036854775808"
        #expect(throws: AdapterError(.payload, "expected epoch seconds as digits", field: "ctime")) {
            try Adapters.adapter(for: "meituan")!.parse(InboundMessage(headers: [:], body: Array(form.utf8)))
        }
        #expect(CivilTime(epochSeconds: .min).year == -9999 && CivilTime(epochSeconds: .max, offsetSeconds: 28_800).year == 9999)
    }

    static func formEncode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
