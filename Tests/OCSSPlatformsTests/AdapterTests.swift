import OCSSCore
import OCSSPlatforms
import Testing

/// Fixtures written from shared/platforms/FORMATS.md; each says why it exists.
enum Fixtures {
    static let shopifySecret = "shpss_0123456789abcdef"
    static let wooSecret = "wc-secret-xyz"

    /// orders/create, paid: id above 2^53 (must survive as digits), decimal-string money ("29.90"),
    /// a gift card (skipped), a line with an empty SKU (kept with its variant id), WGS84 point,
    /// an offset timestamp (converted to UTC).
    static let shopifyPaid = #"""
        {"id":820982911946154508,"name":"#1001","financial_status":"paid","currency":"CNY","total_price":"109.70",
         "created_at":"2024-05-18T10:21:44-04:00","processed_at":"2024-05-18T10:22:01-04:00","phone":null,
         "shipping_address":{"first_name":"三","last_name":"张","name":"张三","address1":"文三路398号","address2":"东部软件园",
           "city":"杭州市","province":"Zhejiang","zip":"310013","country_code":"CN","phone":"13800138000","latitude":30.2795,"longitude":120.1250},
         "line_items":[
           {"id":1,"sku":"SKU-1001","variant_id":447654529,"quantity":2,"price":"29.90","requires_shipping":true,"gift_card":false},
           {"id":2,"sku":"GIFT-50","variant_id":447654530,"quantity":1,"price":"50.00","requires_shipping":false,"gift_card":true},
           {"id":3,"sku":"","variant_id":447654531,"quantity":1,"price":"49.9","requires_shipping":true,"gift_card":false}],
         "shipping_lines":[{"price":"0.00"}]}
        """#

    /// order.created as WooCommerce sends it: PHP's escaped unicode and slashes, CN state code,
    /// a JSON-number price (29.9 -> 2990 fen without a float), GMT times without a Z.
    static let wooCreated = #"""
        {"id":4711,"status":"processing","currency":"CNY","total":"59.80","shipping_total":"0.00",
         "date_created_gmt":"2026-11-26T02:13:00","date_paid_gmt":"2026-11-26T02:13:05","date_modified_gmt":"2026-11-26T02:13:05",
         "billing":{"first_name":"\u56db","last_name":"\u674e","phone":"13900139000","state":"CN12","city":"\u676d\u5dde\u5e02","country":"CN","address_1":""},
         "shipping":{"first_name":"\u56db","last_name":"\u674e","address_1":"\u897f\u6e56\u533a\u6587\u4e09\u8def398\u53f7","address_2":"",
           "city":"\u676d\u5dde\u5e02","state":"CN12","postcode":"310013","country":"CN","phone":""},
         "line_items":[{"id":9,"product_id":93,"variation_id":0,"sku":"SKU-1001","quantity":2,"price":29.9}],
         "meta":"https:\/\/shop.example.cn\/"}
        """#

    /// Shipping all empty strings: the address comes from billing.
    static let wooBillingOnly = #"""
        {"id":4712,"status":"pending","date_modified_gmt":"2026-11-26T03:00:00",
         "billing":{"first_name":"五","last_name":"王","phone":"13700137000","state":"CN2","city":"北京市","country":"CN","address_1":"朝阳区建国路88号"},
         "shipping":{"first_name":"","last_name":"","address_1":"","address_2":"","city":"","state":"","postcode":"","country":"","phone":""},
         "line_items":[{"id":1,"product_id":5,"variation_id":7,"sku":"","quantity":1,"price":"15.00"}]}
        """#

    static func shopifyHeaders(_ body: String, topic: String = "orders/create", secret: String = shopifySecret) -> [String: String] {
        [
            "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": Signatures.shopify(body: Array(body.utf8), secret: secret),
            "X-Shopify-Event-Id": "evt-1",
        ]
    }

    static func wooHeaders(_ body: String, topic: String = "order.created") -> [String: String] {
        ["X-WC-Webhook-Topic": topic, "X-WC-Webhook-Signature": Signatures.shopify(body: Array(body.utf8), secret: wooSecret)]
    }
}

@Suite struct ShopifyAdapterTests {
    let a = Adapters.adapter(for: "shopify")!

    @Test func paidOrderToCanonical() throws {
        let m = InboundMessage(headers: Fixtures.shopifyHeaders(Fixtures.shopifyPaid), body: Array(Fixtures.shopifyPaid.utf8))
        try a.verify(m, credentials: PlatformCredentials(base_url: "", app_secret: Fixtures.shopifySecret))
        guard case .event(let o) = try a.parse(m) else { Issue.record("not an event"); return }
        #expect(o.platform_order_id == "820982911946154508")
        #expect(o.idempotency_key == "shopify:820982911946154508:orders/create")
        #expect(o.event == "order.paid")
        #expect(o.lines.map(\.sku) == ["SKU-1001", nil])
        #expect(o.lines.map(\.platform_sku_id) == ["447654529", "447654531"])
        #expect(o.lines.map(\.unit_price_minor) == [2990, 4990])
        #expect(o.total_minor == 10970)
        #expect(o.shipping.coordinates == .init(lat: 30.2795, lon: 120.1250, crs: "WGS84"))
        #expect(o.created_at == "2024-05-18T14:21:44Z")
        #expect(o.paid_at == "2024-05-18T14:22:01Z")
        #expect(o.buyer?.phone == "13800138000")
        #expect(o.validate() == nil)
    }

    @Test func badOrMissingSignatureIsRefused() {
        var h = Fixtures.shopifyHeaders(Fixtures.shopifyPaid)
        h["X-Shopify-Hmac-Sha256"] = Signatures.shopify(body: Array(Fixtures.shopifyPaid.utf8), secret: "other")
        #expect(throws: AdapterError(.signature, "signature does not match", field: "X-Shopify-Hmac-Sha256")) {
            try a.verify(
                InboundMessage(headers: h, body: Array(Fixtures.shopifyPaid.utf8)),
                credentials: PlatformCredentials(base_url: "", app_secret: Fixtures.shopifySecret))
        }
        h.removeValue(forKey: "X-Shopify-Hmac-Sha256")
        #expect(throws: AdapterError.self) {
            try a.verify(
                InboundMessage(headers: h, body: Array(Fixtures.shopifyPaid.utf8)),
                credentials: PlatformCredentials(base_url: "", app_secret: Fixtures.shopifySecret))
        }
        // One changed byte in the body.
        let tampered = Fixtures.shopifyPaid.replacingOccurrences("29.90", "19.90")
        #expect(throws: AdapterError.self) {
            try a.verify(
                InboundMessage(headers: Fixtures.shopifyHeaders(Fixtures.shopifyPaid), body: Array(tampered.utf8)),
                credentials: PlatformCredentials(base_url: "", app_secret: Fixtures.shopifySecret))
        }
    }

    @Test func cancelledAndUnrelatedTopics() throws {
        let cancel = #"{"id":820982911946154508,"cancelled_at":"2024-05-19T08:00:00-04:00","line_items":[]}"#
        guard
            case .event(let o) = try a.parse(
                InboundMessage(headers: Fixtures.shopifyHeaders(cancel, topic: "orders/cancelled"), body: Array(cancel.utf8)))
        else {
            Issue.record("not an event"); return
        }
        #expect(o.event == "order.cancelled" && o.platform_order_id == "820982911946154508")
        guard case .ignored = try a.parse(InboundMessage(headers: Fixtures.shopifyHeaders("{}", topic: "products/update"), body: Array("{}".utf8)))
        else {
            Issue.record("should be ignored"); return
        }
    }

    @Test func malformedPayloadNamesTheField() {
        let bad = #"{"id":1,"line_items":[{"quantity":"two"}]}"#
        #expect { try a.parse(InboundMessage(headers: Fixtures.shopifyHeaders(bad), body: Array(bad.utf8))) } throws: { e in
            (e as? AdapterError)?.field == "line_items[0].quantity"
        }
        let money = #"{"id":1,"line_items":[{"quantity":1,"price":"12,50"}]}"#
        #expect { try a.parse(InboundMessage(headers: Fixtures.shopifyHeaders(money), body: Array(money.utf8))) } throws: { e in
            (e as? AdapterError)?.field == "line_items[0].price"
        }
    }
}

@Suite struct WooCommerceAdapterTests {
    let a = Adapters.adapter(for: "woocommerce")!

    @Test func createdOrderWithCNStateAndNumberPrice() throws {
        let m = InboundMessage(headers: Fixtures.wooHeaders(Fixtures.wooCreated), body: Array(Fixtures.wooCreated.utf8))
        try a.verify(m, credentials: PlatformCredentials(base_url: "", app_secret: Fixtures.wooSecret))
        guard case .event(let o) = try a.parse(m) else { Issue.record("not an event"); return }
        #expect(o.event == "order.paid")
        #expect(o.shipping.province == "浙江省")
        #expect(o.shipping.city == "杭州市")
        #expect(o.shipping.text == "浙江省杭州市西湖区文三路398号")
        #expect(o.lines.first?.unit_price_minor == 2990)
        #expect(o.lines.first?.platform_sku_id == "93")
        #expect(o.total_minor == 5980)
        #expect(o.created_at == "2026-11-26T02:13:00Z")
        #expect(o.idempotency_key == "woocommerce:4711:order.created:2026-11-26T02:13:05")
        #expect(o.buyer?.name == "李四")
        #expect(o.buyer?.phone == "13900139000")  // shipping phone empty: billing's
    }

    @Test func billingFallbackPingAndDelete() throws {
        // Created pending (awaiting payment): not routed; routed when an update moves it to processing.
        let pending = InboundMessage(headers: Fixtures.wooHeaders(Fixtures.wooBillingOnly), body: Array(Fixtures.wooBillingOnly.utf8))
        guard case .ignored = try a.parse(pending) else { Issue.record("a pending order was not ignored"); return }
        let paid = Fixtures.wooBillingOnly.replacingOccurrences(#""status":"pending""#, #""status":"processing""#)
        let m = InboundMessage(headers: Fixtures.wooHeaders(paid, topic: "order.updated"), body: Array(paid.utf8))
        guard case .event(let o) = try a.parse(m) else { Issue.record("not an event"); return }
        #expect(o.event == "order.paid")
        // An update to completed is an order fulfilled without ocss: not routed.
        let done = Fixtures.wooBillingOnly.replacingOccurrences(#""status":"pending""#, #""status":"completed""#)
        guard case .ignored = try a.parse(InboundMessage(headers: Fixtures.wooHeaders(done, topic: "order.updated"), body: Array(done.utf8))) else {
            Issue.record("an update to completed was routed"); return
        }
        #expect(o.shipping.province == "北京市" && o.shipping.detail == "朝阳区建国路88号")
        #expect(o.lines.first?.sku == nil && o.lines.first?.platform_sku_id == "7")
        let ping = InboundMessage(headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Array("webhook_id=12".utf8))
        #expect(a.isUnsignedPing(ping))
        let deleted = #"{"id":4711}"#
        guard
            case .event(let d) = try a.parse(InboundMessage(headers: Fixtures.wooHeaders(deleted, topic: "order.deleted"), body: Array(deleted.utf8)))
        else {
            Issue.record("not an event"); return
        }
        #expect(d.event == "order.cancelled" && d.platform_order_id == "4711")
    }

    @Test func unknownStateCodeIsAPayloadError() {
        let bad = Fixtures.wooCreated.replacingOccurrences("CN12", "CN99")
        #expect(throws: AdapterError(.payload, "unknown CN state code 'CN99'", field: "shipping.state")) {
            try a.parse(InboundMessage(headers: Fixtures.wooHeaders(bad), body: Array(bad.utf8)))
        }
    }
}

@Suite struct MoneyAndTimeTests {
    @Test(arguments: [("29.9", 2990), ("29.90", 2990), ("0.01", 1), ("100", 10000), ("-0.50", -50), ("1.230", 123), (".5", 50)] as [(String, Int64)])
    func decimalToMinor(text: String, minor: Int64) { #expect(Money.minorUnits(text) == minor) }

    @Test(arguments: ["", "abc", "1.234", "1,5", "1e3", "--1", "92233720368547758.08"])
    func notMoney(text: String) { #expect(Money.minorUnits(text) == nil) }

    @Test func timestamps() {
        #expect(Timestamps.utc("2024-05-18T10:21:44-04:00") == "2024-05-18T14:21:44Z")
        #expect(Timestamps.utc("2026-11-26 10:13:00") == "2026-11-26T02:13:00Z")  // Asia/Shanghai by default
        #expect(Timestamps.utc("2026-11-26T02:13:00.123Z") == "2026-11-26T02:13:00Z")
        #expect(Timestamps.utc("2026-01-01T00:30:00+08:00") == "2025-12-31T16:30:00Z")
        #expect(Timestamps.utc("yesterday") == nil)
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

/// What staff need to pick and hand over (CANONICAL.md rule 9), copied as the platform sends it.
@Suite struct StaffFieldsTests {
    @Test func shopifyLineTitlesVariantAndNote() throws {
        let body = Fixtures.shopifyPaid
            .replacingOccurrences(#""sku":"SKU-1001","#, #""sku":"SKU-1001","title":"矿泉水","variant_title":"550ml","#)
            .replacingOccurrences(#""phone":null,"#, #""phone":null,"note":"放前台，谢谢","#)
        let a = Adapters.adapter(for: "shopify")!
        guard case .event(let o) = try a.parse(InboundMessage(headers: Fixtures.shopifyHeaders(body), body: Array(body.utf8))) else {
            Issue.record("not an event")
            return
        }
        #expect(o.lines.first?.title == "矿泉水" && o.lines.first?.spec == "550ml")
        #expect(o.remark == "放前台，谢谢" && o.delivery_by == "courier" && o.validate() == nil)
        // The hash leaves them out: the same order without them is the same request.
        guard
            case .event(let bare) = try a.parse(
                InboundMessage(headers: Fixtures.shopifyHeaders(Fixtures.shopifyPaid), body: Array(Fixtures.shopifyPaid.utf8)))
        else { return }
        #expect(CanonicalJSON.decisionBytes(o) == CanonicalJSON.decisionBytes(bare))
        #expect(CanonicalJSON.encode(o) != CanonicalJSON.encode(bare))
    }

    @Test func wooCommerceItemNameAndCustomerNote() throws {
        let body = Fixtures.wooCreated
            .replacingOccurrences(#""sku":"SKU-1001","#, #""sku":"SKU-1001","name":"\u77ff\u6cc9\u6c34 550ml","#)
            .replacingOccurrences(#""status":"processing","#, #""status":"processing","customer_note":"\u5c11\u51b0","#)
        let a = Adapters.adapter(for: "woocommerce")!
        guard case .event(let o) = try a.parse(InboundMessage(headers: Fixtures.wooHeaders(body), body: Array(body.utf8))) else {
            Issue.record("not an event")
            return
        }
        #expect(o.lines.first?.title == "矿泉水 550ml" && o.remark == "少冰")
    }

    @Test func elemeRetailProductNameRemarkAndDayNumber() throws {
        let answer =
            #"{"body":{"errno":0,"error":"success","data":{"order":{"order_id":"9","create_time":1800000000,"user_fee":1234,"#
            + #""remark":"不要辣","order_index":17},"#
            + #""user":{"province":"北京","city":"北京市","district":"朝阳区","address":"建国路88号","coord":{"longitude":116.4637,"latitude":39.9145}},"#
            + #""products":[[{"baidu_product_id":"7","custom_sku_id":"SKU-7","product_amount":2,"product_price":617,"product_name":"鲜牛奶 1L"}]]}}}"#
        guard case .event(let o) = try AdapterOutcome.fromDetail(platform: "eleme_retail", body: Array(answer.utf8)) else {
            Issue.record("not an event")
            return
        }
        #expect(o.lines.first?.title == "鲜牛奶 1L" && o.remark == "不要辣" && o.pickup_no == "17")
        #expect(o.delivery_by == "platform_rider" && o.validate() == nil)
    }

    /// Pinduoduo and JD's detail answers, as connectors forward them: goods names and specs, the buyer's note.
    @Test func pinduoduoAndJDDetailAnswersCarryTitlesAndNotes() throws {
        let pdd =
            #"{"order_info_get_response":{"order_info":{"order_sn":"261126-1","order_status":1,"refund_status":1,"province":"广东","#
            + #""city":"广州市","town":"海珠区","receiver_address":"新港中路397号","receiver_name":"钱八","buyer_memo":"周末送","#
            + #""item_list":[{"goods_id":1,"sku_id":1,"outer_id":"A","goods_count":3,"goods_price":11.01,"goods_name":"纸巾","goods_spec":"3包装"}],"#
            + #""pay_amount":33.03,"postage":0}}}"#
        guard case .event(let p) = try AdapterOutcome.fromDetail(platform: "pinduoduo", body: Array(pdd.utf8)) else {
            Issue.record("not an event")
            return
        }
        #expect(p.lines.first?.title == "纸巾" && p.lines.first?.spec == "3包装" && p.remark == "周末送" && p.delivery_by == "courier")
        let pop =
            #"{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"orderInfo":{"orderId":"281234567890","orderState":"WAIT_SELLER_STOCK_OUT","#
            + #""consigneeInfo":{"fullname":"王","mobile":"13600136000","fullAddress":"广东广州市海珠区赤岗街道1号","province":"广东","city":"广州市"},"#
            + #""itemInfoList":[{"skuId":"100012345678","outerSkuId":"A","itemTotal":"1","jdPrice":"29.90","skuName":"京东 矿泉水"}],"#
            + #""orderRemark":"放快递柜","orderPayment":"29.90"}}}}"#
        guard case .event(let j) = try AdapterOutcome.fromDetail(platform: "jd", body: Array(pop.utf8)) else {
            Issue.record("not an event")
            return
        }
        #expect(j.lines.first?.title == "京东 矿泉水" && j.remark == "放快递柜" && j.validate() == nil)
    }

    @Test func unknownDeliveryByAndFulfilmentAreRefusedByName() {
        var o = CanonicalOrder(
            platform: "direct", event: "order.paid", platform_order_id: "1", idempotency_key: "k", shipping: .init(text: "x"),
            lines: [.init(sku: "A", platform_sku_id: nil, quantity: 1, unit_price_minor: nil)])
        o.delivery_by = "drone"
        #expect(o.validate()?.field == "delivery_by")
        o.delivery_by = "store"
        o.fulfillment = "teleport"
        #expect(o.validate()?.field == "fulfillment")
        o.fulfillment = "pickup"
        o.lines[0].title = String(repeating: "长", count: 201)
        #expect(o.validate()?.field == "lines[0].title")
        #expect(o.clippingBuyerText().clipped == ["lines[0].title"])
    }
}
