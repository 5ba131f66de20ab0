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
        let m = InboundMessage(headers: ["Event-Sign": "01de118b788d40d7989599907f72ef3d", "Client-Id": "yz-client", "Event-Type": "trade_TradePaid"], body: body)
        try a.verify(m, credentials: PlatformCredentials(base_url: "", app_key: "yz-client", app_secret: "yz-secret"))
        #expect(throws: AdapterError.self) { try a.verify(m, credentials: PlatformCredentials(base_url: "", app_key: "yz-client", app_secret: "other")) }
        guard case .event(let o) = try a.parse(m) else { Issue.record("not an event"); return }
        #expect(o.event == "order.paid" && o.platform_order_id == "E20261126021300012345")
        #expect(o.shipping.text == "浙江省杭州市西湖区文三路398号")
        #expect(o.shipping.coordinates == .init(lat: 30.2839, lon: 120.1271, crs: "GCJ-02"))
        #expect(o.lines.map(\.sku) == ["SKU-1001"] && o.lines.first?.unit_price_minor == 2990 && o.lines.first?.platform_sku_id == "36541232")
        #expect(o.created_at == "2026-11-26T02:13:00Z" && o.total_minor == 5980)
        #expect(o.validate() == nil)
    }

    @Test func meituanDoubleEncodedFormPush() throws {
        let a = Adapters.adapter(for: "meituan")!
        let m = InboundMessage(headers: ["Content-Type": "application/x-www-form-urlencoded"], body: PushFixtures.bytes("meituan.form"))
        let creds = PlatformCredentials(base_url: "", app_key: "mt-app", app_secret: "mt-secret", callback_url: "https://ocss.example.cn/v1/platforms/meituan/webhook")
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
    }
}

@Suite struct DetailAnswerTests {
    @Test func elemeRetailFallsBackToBD09AndKeepsFen() throws {
        let answer = #"{"body":{"errno":0,"error":"success","data":{"order":{"order_id":"1","create_time":1800000000,"user_fee":1234},"#
            + #""user":{"province":"北京","city":"北京市","district":"朝阳区","address":"建国路88号","coord":{"longitude":116.4637,"latitude":39.9145}},"#
            + #""products":[[{"baidu_product_id":"7","custom_sku_id":"","product_amount":2,"product_price":617}]]}}}"#
        guard case .event(let o) = try AdapterOutcome.fromDetail(platform: "eleme_retail", body: Array(answer.utf8)) else { Issue.record("no event"); return }
        #expect(o.shipping.coordinates == .init(lat: 39.9145, lon: 116.4637, crs: "BD-09"))
        #expect(o.shipping.province == "北京市")
        #expect(o.lines.first?.sku == nil && o.lines.first?.platform_sku_id == "7" && o.lines.first?.unit_price_minor == 617)
        #expect(o.total_minor == 1234)
    }

    @Test func truncatedJSONNamesNoFieldButIsAPayloadError() {
        #expect { try AdapterOutcome.fromDetail(platform: "taobao", body: Array(#"{"trade_fullinfo_get_response":{"trade":{"tid":1"#.utf8)) } throws: { e in
            (e as? AdapterError)?.kind == .payload
        }
    }
}
