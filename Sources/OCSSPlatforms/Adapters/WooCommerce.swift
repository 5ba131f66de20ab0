import FoundationEssentials
import OCSSCore

/// WooCommerce `order.created` / `order.updated` / `order.deleted` webhooks and the unsigned ping.
/// Signed with base64 HMAC-SHA256 of the raw body in `X-WC-Webhook-Signature`. No retries on
/// WooCommerce's side, so the answer must be a quick 2xx.
struct WooCommerceAdapter: PlatformAdapter {
    let platform = "woocommerce"
    let successBody = (contentType: "application/json", body: #"{"ok":true}"#)
    var contentTypes: [String] { ["application/json", "application/x-www-form-urlencoded"] }

    /// WooCommerce's CN state codes (i18n/states.php) to province names with their suffix.
    static let cnStates: [String: String] = [
        "CN1": "云南省", "CN2": "北京市", "CN3": "天津市", "CN4": "河北省", "CN5": "山西省", "CN6": "内蒙古自治区",
        "CN7": "辽宁省", "CN8": "吉林省", "CN9": "黑龙江省", "CN10": "上海市", "CN11": "江苏省", "CN12": "浙江省",
        "CN13": "安徽省", "CN14": "福建省", "CN15": "江西省", "CN16": "山东省", "CN17": "河南省", "CN18": "湖北省",
        "CN19": "湖南省", "CN20": "广东省", "CN21": "广西壮族自治区", "CN22": "海南省", "CN23": "重庆市", "CN24": "四川省",
        "CN25": "贵州省", "CN26": "陕西省", "CN27": "甘肃省", "CN28": "青海省", "CN29": "宁夏回族自治区", "CN30": "澳门特别行政区",
        "CN31": "西藏自治区", "CN32": "新疆维吾尔自治区",
    ]

    struct Order: Decodable {
        struct Address: Decodable {
            var first_name: String?
            var last_name: String?
            var address_1: String?
            var address_2: String?
            var city: String?
            var state: String?
            var postcode: String?
            var country: String?
            var phone: String?
        }
        struct Item: Decodable {
            var product_id: Int64?
            var variation_id: Int64?
            var sku: String?
            var quantity: Int
            var price: Decimalish?
            var name: String?
        }
        struct Fee: Decodable { var total: String? }
        var id: Int64
        var status: String?
        var currency: String?
        var total: String?
        var shipping_total: String?
        var date_created_gmt: String?
        var date_paid_gmt: String?
        var date_modified_gmt: String?
        var shipping: Address?
        var billing: Address?
        var line_items: [Item]?
        /// The buyer's note at checkout.
        var customer_note: String?
    }

    /// A JSON number or string kept as its literal text, for decimal money.
    struct Decimalish: Decodable {
        let text: String
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { text = s; return }
            // swift-foundation decodes Decimal from the literal digits, not through a Double.
            let d = try c.decode(Decimal.self)
            text = "\(d)"
        }
    }

    func isUnsignedPing(_ m: InboundMessage) -> Bool {
        m.header("x-wc-webhook-signature") == nil && String(decoding: m.body, as: UTF8.self).hasPrefix("webhook_id=")
    }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {
        try AdapterSupport.verifyBase64HMAC(
            m.header("x-wc-webhook-signature"), body: m.body, secret: credentials?.app_secret, header: "X-WC-Webhook-Signature")
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        if isUnsignedPing(m) { return .ignored(reason: "webhook ping") }
        let topic = m.header("x-wc-webhook-topic") ?? ""
        guard topic.hasPrefix("order.") else { return .ignored(reason: "topic '\(topic)' is not an order event") }
        if topic == "order.deleted" {
            struct Deleted: Decodable { var id: Int64 }
            let d = try AdapterSupport.decode(Deleted.self, m.body)
            return .event(
                CanonicalOrder(
                    platform: platform, event: "order.cancelled", platform_order_id: String(d.id),
                    idempotency_key: "woocommerce:\(d.id):order.deleted", shipping: .init(), lines: []))
        }
        let o = try AdapterSupport.decode(Order.self, m.body)
        let event: String
        switch o.status ?? "" {
        // Paid (or cash on delivery, which WooCommerce puts straight into processing): route it. An order created
        // pending (awaiting payment: abandoned checkouts make these) or on-hold (awaiting a bank transfer) is routed
        // when an update moves it to processing; repeats of that are one order (the engine's platform-order check).
        // An update to completed is not routed: the order was fulfilled without ocss.
        case "processing": event = "order.paid"
        case "completed": event = topic == "order.created" ? "order.paid" : "ignore"
        case "pending", "on-hold": event = "ignore"
        case "cancelled", "failed": event = "order.cancelled"
        case "refunded": event = "order.refund_requested"
        default: event = "ignore"
        }
        if event == "ignore" { return .ignored(reason: "\(topic) with status \(o.status ?? "none") changes nothing to route") }
        // Shipping can be all empty strings: fall back to billing.
        let hasShipping = [o.shipping?.address_1, o.shipping?.city, o.shipping?.state].contains { $0?.nonEmpty != nil }
        let a = hasShipping ? o.shipping : o.billing
        let field = hasShipping ? "shipping" : "billing"
        var province = a?.state?.nonEmpty
        if a?.country == "CN", let code = province {
            guard let name = Self.cnStates[code] else { throw AdapterError(.payload, "unknown CN state code '\(code)'", field: "\(field).state") }
            province = name
        }
        var lines: [CanonicalOrder.Line] = []
        for (i, item) in (o.line_items ?? []).enumerated() {
            let price = try AdapterSupport.money(item.price?.text, field: "line_items[\(i)].price")
            let platformID = (item.variation_id.flatMap { $0 == 0 ? nil : $0 } ?? item.product_id).map { String($0) }
            lines.append(
                .init(
                    sku: item.sku?.nonEmpty, platform_sku_id: platformID, quantity: item.quantity, unit_price_minor: price,
                    title: item.name?.nonEmpty))
        }
        // `address_1` carries district and street (WooCommerce has no district field).
        let detail = [a?.address_1?.nonEmpty, a?.address_2?.nonEmpty].compactMap { $0 }.joined(separator: " ")
        let text = [province, a?.city?.nonEmpty, detail.nonEmpty].compactMap { $0 }.joined()
        let name = [a?.last_name?.nonEmpty, a?.first_name?.nonEmpty].compactMap { $0 }.joined()
        let gmt = { (s: String?) in s.flatMap { Timestamps.utc($0, defaultOffsetMinutes: 0) } }
        var order =
            CanonicalOrder(
                platform: platform, event: event, platform_order_id: String(o.id),
                idempotency_key: "woocommerce:\(o.id):\(topic):\(o.date_modified_gmt ?? "")",
                buyer: .init(name: name.nonEmpty, phone: a?.phone?.nonEmpty ?? o.billing?.phone?.nonEmpty),
                shipping: .init(
                    country: a?.country?.nonEmpty, province: province, city: a?.city?.nonEmpty, detail: detail.nonEmpty,
                    postal_code: a?.postcode?.nonEmpty, text: text.nonEmpty),
                lines: lines, currency: o.currency, total_minor: try AdapterSupport.money(o.total, field: "total"),
                shipping_fee_minor: try AdapterSupport.money(o.shipping_total, field: "shipping_total"),
                created_at: gmt(o.date_created_gmt), paid_at: gmt(o.date_paid_gmt))
        order.remark = o.customer_note?.nonEmpty
        return .event(order)
    }
}
