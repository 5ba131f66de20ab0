import Foundation
import OCSSCore
import OCSSPlatforms
import Testing

/// Youzan, Meituan and Ele.me pushes from Fixtures/ (make_fixtures.py signs them with Python's hashlib).
enum PushFixtures {
    static let dir: String = {
        var p = #filePath
        p = String(p[..<p.lastIndex(of: "/")!])
        return p + "/Fixtures/"
    }()

    static func bytes(_ name: String) -> [UInt8] { Array((try? Data(contentsOf: URL(fileURLWithPath: dir + name))) ?? Data()) }
}

@Suite struct PushAdapterTests {
    @Test func youzanPaidTrade() throws {
        let a = Adapters.adapter(for: "youzan")!
        let body = PushFixtures.bytes("youzan.json")
        let m = InboundMessage(
            headers: ["Event-Sign": "4af24cd52c2559b96eaa2db2c0fbbcda", "Client-Id": "yz-client", "Event-Type": "trade_TradePaid"], body: body)
        try a.verify(m, credentials: PlatformCredentials(base_url: "", app_key: "yz-client", app_secret: "yz-secret"))
        #expect(throws: AdapterError.self) {
            try a.verify(m, credentials: PlatformCredentials(base_url: "", app_key: "yz-client", app_secret: "other"))
        }
        guard case .event(let o) = try a.parse(m) else { Issue.record("not an event"); return }
        #expect(o.event == "order.paid" && o.platform_order_id == "E20261126021300012345")
        #expect(o.shipping.text == "浙江省杭州市西湖区文三路398号")
        #expect(o.shipping.coordinates == .init(lat: 30.2839, lon: 120.1271, crs: "GCJ-02"))
        #expect(o.lines.map(\.sku) == ["SKU-1001"] && o.lines.first?.unit_price_minor == 2990 && o.lines.first?.platform_sku_id == "36541232")
        #expect(o.created_at == "2026-11-26T02:13:00Z" && o.total_minor == 5980)
        #expect(o.lines.first?.title == "农夫山泉 矿泉水 550ml" && o.remark == "请放门口" && o.delivery_by == "courier")
        #expect(o.validate() == nil)
    }

    @Test func meituanDoubleEncodedFormPush() throws {
        let a = Adapters.adapter(for: "meituan")!
        let m = InboundMessage(headers: ["Content-Type": "application/x-www-form-urlencoded"], body: PushFixtures.bytes("meituan.form"))
        let creds = PlatformCredentials(
            base_url: "", app_key: "mt-app", app_secret: "mt-secret", callback_url: "https://ocss.example.cn/v1/platforms/meituan/webhook")
        try a.verify(m, credentials: creds)
        var wrongURL = creds
        wrongURL.callback_url = "https://elsewhere.example.cn/hook"
        #expect(throws: AdapterError.self) { try a.verify(m, credentials: wrongURL) }
        guard case .event(let o) = try a.parse(m) else { Issue.record("not an event"); return }
        #expect(o.platform_order_id == "27061900338318740")
        #expect(o.buyer?.name == "赵六" && o.buyer?.phone == "13600136000" && o.buyer?.phone_extension == "1234")
        #expect(o.shipping.text == "浙江省杭州市西湖区文三路398号")
        #expect(o.shipping.coordinates == .init(lat: 30.281690, lon: 120.131740, crs: "GCJ-02"))
        #expect(o.lines.first?.sku == "SKU-1001" && o.lines.first?.quantity == 2 && o.lines.first?.unit_price_minor == 2990)
        #expect(o.platform_store_id == "HZ-001" && o.total_minor == 5980 && o.shipping_fee_minor == 500)
        // What staff need: the dish and its spec, the buyer's note (encoded twice, like the address), the day number.
        #expect(o.lines.first?.title == "矿泉水" && o.lines.first?.spec == "550ml" && o.remark == "少冰，放前台")
        #expect(o.pickup_no == "18" && o.expected_at == nil && o.fulfillment == "delivery" && o.delivery_by == "platform_rider")
    }

    @Test func elemeOrderWithHugeUserIDAndFeeGroup() throws {
        let a = Adapters.adapter(for: "eleme")!
        let m = InboundMessage(headers: ["Content-Type": "application/json"], body: PushFixtures.bytes("eleme.json"))
        try a.verify(m, credentials: PlatformCredentials(base_url: "", app_secret: "el-secret"))
        #expect(throws: AdapterError.self) { try a.verify(m, credentials: PlatformCredentials(base_url: "", app_secret: "x")) }
        guard case .event(let o) = try a.parse(m) else { Issue.record("not an event"); return }
        #expect(o.platform_order_id == "3024712456123" && o.event == "order.paid")
        #expect(o.lines.count == 1)  // the 餐盒费 fee group is not goods
        #expect(o.lines.first?.platform_sku_id == "200000123456" && o.lines.first?.unit_price_minor == 2990)
        #expect(o.buyer?.phone == "13500135000" && o.buyer?.phone_extension == "5678")
        #expect(o.shipping.coordinates == .init(lat: 30.281690, lon: 120.131740, crs: "GCJ-02"))
        #expect(o.created_at == "2026-11-26T02:13:05Z" && o.total_minor == 3190)
        #expect(o.lines.first?.title == "矿泉水 550ml" && o.remark == "不要辣" && o.pickup_no == "7")
    }
}

@Suite struct DetailAnswerTests {
    @Test func elemeRetailFallsBackToBD09AndKeepsFen() throws {
        let answer =
            #"{"body":{"errno":0,"error":"success","data":{"order":{"order_id":"1","create_time":1800000000,"user_fee":1234},"#
            + #""user":{"province":"北京","city":"北京市","district":"朝阳区","address":"建国路88号","coord":{"longitude":116.4637,"latitude":39.9145}},"#
            + #""products":[[{"baidu_product_id":"7","custom_sku_id":"","product_amount":2,"product_price":617}]]}}}"#
        guard case .event(let o) = try AdapterOutcome.fromDetail(platform: "eleme_retail", body: Array(answer.utf8)) else {
            Issue.record("no event"); return
        }
        #expect(o.shipping.coordinates == .init(lat: 39.9145, lon: 116.4637, crs: "BD-09"))
        #expect(o.shipping.province == "北京市")
        #expect(o.lines.first?.sku == nil && o.lines.first?.platform_sku_id == "7" && o.lines.first?.unit_price_minor == 617)
        #expect(o.total_minor == 1234)
    }

    @Test func truncatedJSONNamesNoFieldButIsAPayloadError() {
        #expect {
            try AdapterOutcome.fromDetail(platform: "taobao", body: Array(#"{"trade_fullinfo_get_response":{"trade":{"tid":1"#.utf8))
        } throws: { e in
            (e as? AdapterError)?.kind == .payload
        }
    }
}

/// Cancels, refunds, multi-line orders and odd values per platform (parse only; signatures are
/// covered by the signed fixtures above).
@Suite struct PlatformEventTableTests {
    func parse(_ platform: String, _ body: String, _ headers: [String: String] = [:]) throws -> AdapterOutcome {
        try Adapters.adapter(for: platform)!.parse(InboundMessage(headers: headers, body: Array(body.utf8)))
    }

    func event(_ o: AdapterOutcome) -> CanonicalOrder? {
        if case .event(let e) = o { return e }
        return nil
    }

    @Test func cancelsAndRefunds() throws {
        let youzanClose = #"{"type":"trade_TradeClose","msg":"%7B%22tid%22%3A%22E1%22%7D"}"#
        #expect(event(try parse("youzan", youzanClose))?.event == "order.cancelled")
        // Created is not paid: Youzan orders are routed at trade_TradePaid.
        let youzanCreated = #"{"type":"trade_TradeCreate","msg":"%7B%22tid%22%3A%22E1%22%7D"}"#
        guard case .ignored = try parse("youzan", youzanCreated) else { Issue.record("trade_TradeCreate was routed"); return }
        let meituanCancel = "order_id=27061900338318740&status=9&app_id=1&timestamp=1"
        #expect(event(try parse("meituan", meituanCancel))?.event == "order.cancelled")
        let elemeCancel = #"{"type":14,"message":"{\"orderId\":\"3024712456123\",\"state\":\"invalid\"}","requestId":"1","timestamp":1}"#
        let e = try #require(event(try parse("eleme", elemeCancel)))
        #expect(e.event == "order.cancelled" && e.platform_order_id == "3024712456123")
        let pddRefund = #"{"id":1,"message":{"type":"pdd_refund_RefundCreated","content":"{\"tid\":\"261126-1\",\"refund_fee\":100}"}}"#
        #expect(event(try parse("pinduoduo", pddRefund))?.event == "order.refund_requested")
        let wooRefunded = #"{"id":5,"status":"refunded","line_items":[]}"#
        #expect(event(try parse("woocommerce", wooRefunded, ["X-WC-Webhook-Topic": "order.updated"]))?.event == "order.refund_requested")
        let taobaoClose = #"{"id":1,"topic":"taobao_trade_TradeClose","content":"{\"tid\":2411234567890123456}"}"#
        #expect(event(try parse("taobao", taobaoClose))?.platform_order_id == "2411234567890123456")
    }

    @Test func multiLineOrdersAndMoneyForms() throws {
        // Meituan detail with two SKUs, one price 29.9 and one 0.1 (no float drift), already once-decoded JSON.
        let detail =
            #"[{"sku_id":"A","quantity":1,"price":29.9},{"sku_id":"B","quantity":3,"price":0.1},{"app_food_code":"F9","quantity":1,"price":5}]"#
        let form =
            "order_id=1&status=2&detail=" + (detail.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let m = try #require(event(try parse("meituan", form)))
        #expect(m.lines.map(\.unit_price_minor) == [2990, 10, 500])
        #expect(m.lines.map(\.sku) == ["A", "B", nil] && m.lines.last?.platform_sku_id == "F9")  // empty merchant SKU keeps the platform id
        #expect(m.shipping.coordinates == nil && m.shipping.district == nil)  // missing district and point: left for the geocoder
        // Youzan with two lines and money "29.90" / "29.9".
        let msg =
            #"{"full_order_info":{"order_info":{"tid":"E2"},"orders":[{"outer_sku_id":"A","num":1,"price":"29.90"},{"outer_sku_id":"","sku_id":9,"num":2,"price":"29.9"}]}}"#
        let y = try #require(
            event(try parse("youzan", #"{"type":"trade_TradePaid","msg":"\#(msg.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"}"#)))
        #expect(y.lines.map(\.unit_price_minor) == [2990, 2990] && y.lines.map(\.sku) == ["A", nil])
    }

    @Test func truncatedOrWrongPayloadsAreFieldErrors() {
        for (platform, body) in [
            ("shopify", #"{"id":1,"line_items":[{"quan"#), ("youzan", #"{"type":"trade_TradePaid","msg":"%7B%22full"#),
            ("eleme", #"{"type":10,"message":"{\"orderId\":"}"#), ("jd_daojia", "jd_param_json=%7B%22bill"),
        ] {
            #expect(throws: AdapterError.self, "\(platform)") {
                try Adapters.adapter(for: platform)!.parse(InboundMessage(headers: ["X-Shopify-Topic": "orders/create"], body: Array(body.utf8)))
            }
        }
    }
}

@Suite struct ElemeCancelFlowTests {
    /// Issue 22.3 (the other platforms' own cancel and refund pushes): Ele.me's agreed cancellation (23, 25) and agreed
    /// whole-order refund (33, 35) stop fulfilment; a buyer's request the shop may still refuse (20, 30) does not.
    @Test(
        arguments: [
            ("23", "order.cancelled"), ("25", "order.cancelled"), ("33", "order.refund_requested"), ("35", "order.refund_requested"),
            ("20", nil), ("30", nil),
        ] as [(String, String?)])
    func agreedCancellationsAndRefunds(type: String, event: String?) throws {
        let body = #"{"requestId":"1","type":\#(type),"appId":1,"message":"{\"orderId\":\"3024712456123\"}","shopId":1,"timestamp":1}"#
        let outcome = try Adapters.adapter(for: "eleme")!.parse(InboundMessage(headers: [:], body: Array(body.utf8)))
        switch outcome {
        case .event(let o): #expect(o.event == event && o.platform_order_id == "3024712456123" && o.idempotency_key == "eleme:3024712456123:\(type)")
        default: #expect(event == nil)
        }
    }
}
