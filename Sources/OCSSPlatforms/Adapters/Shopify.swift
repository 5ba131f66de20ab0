import OCSSCore

/// Shopify `orders/create`, `orders/updated`, `orders/cancelled` (and `refunds/create`) webhooks.
/// Signed with base64 HMAC-SHA256 of the raw body in `X-Shopify-Hmac-Sha256`; any 2xx acknowledges.
struct ShopifyAdapter: PlatformAdapter {
    let platform = "shopify"
    let successBody = (contentType: "text/plain", body: "")

    struct Order: Decodable {
        struct Address: Decodable {
            var name: String?
            var first_name: String?
            var last_name: String?
            var address1: String?
            var address2: String?
            var city: String?
            var province: String?
            var zip: String?
            var country_code: String?
            var phone: String?
            var latitude: Double?
            var longitude: Double?
        }
        struct Item: Decodable {
            var sku: String?
            var variant_id: Int64?
            var quantity: Int
            var price: String?
            var requires_shipping: Bool?
            var gift_card: Bool?
            var title: String?
            var variant_title: String?
        }
        struct ShippingLine: Decodable { var price: String? }
        var id: Int64
        var financial_status: String?
        var currency: String?
        var total_price: String?
        var created_at: String?
        var processed_at: String?
        var cancelled_at: String?
        var phone: String?
        var shipping_address: Address?
        var line_items: [Item]?
        var shipping_lines: [ShippingLine]?
        /// The buyer's note at checkout.
        var note: String?
    }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {
        try AdapterSupport.verifyBase64HMAC(
            m.header("x-shopify-hmac-sha256"), body: m.body, secret: credentials?.app_secret, header: "X-Shopify-Hmac-Sha256")
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        let topic = m.header("x-shopify-topic") ?? ""
        guard ["orders/create", "orders/paid", "orders/updated", "orders/cancelled", "refunds/create"].contains(topic) else {
            return .ignored(reason: "topic '\(topic)' is not an order event")
        }
        if topic == "refunds/create" {
            struct Refund: Decodable { var order_id: Int64 }
            let r = try AdapterSupport.decode(Refund.self, m.body)
            return .event(
                CanonicalOrder(
                    platform: platform, event: "order.refund_requested", platform_order_id: String(r.order_id),
                    idempotency_key: "shopify:\(r.order_id):\(topic)", shipping: .init(), lines: []))
        }
        let o = try AdapterSupport.decode(Order.self, m.body)
        let event: String
        switch topic {
        case "orders/cancelled": event = "order.cancelled"
        case "orders/updated": event = o.cancelled_at != nil ? "order.cancelled" : "ignore"
        default: event = o.financial_status == "paid" ? "order.paid" : "order.created"
        }
        if event == "ignore" { return .ignored(reason: "orders/updated without a cancellation") }
        var lines: [CanonicalOrder.Line] = []
        for (i, item) in (o.line_items ?? []).enumerated() {
            // Gift cards and digital goods are not fulfilled from a store's stock.
            if item.requires_shipping == false || item.gift_card == true { continue }
            let price = try AdapterSupport.money(item.price, field: "line_items[\(i)].price")
            lines.append(
                .init(
                    sku: item.sku?.nonEmpty, platform_sku_id: item.variant_id.map { String($0) }, quantity: item.quantity,
                    unit_price_minor: price, title: item.title?.nonEmpty, spec: item.variant_title?.nonEmpty))
        }
        let a = o.shipping_address
        let coordinates: CanonicalOrder.Coordinates? = a.flatMap { a in
            guard let lat = a.latitude, let lon = a.longitude else { return nil }
            return .init(lat: lat, lon: lon, crs: "WGS84")
        }
        let detail = [a?.address1?.nonEmpty, a?.address2?.nonEmpty].compactMap { $0 }.joined(separator: " ")
        let text = [
            a?.address1?.nonEmpty, a?.address2?.nonEmpty, a?.city?.nonEmpty, a?.province?.nonEmpty, a?.zip?.nonEmpty, a?.country_code?.nonEmpty,
        ]
        .compactMap { $0 }.joined(separator: ", ")
        let name = a?.name?.nonEmpty ?? [a?.first_name?.nonEmpty, a?.last_name?.nonEmpty].compactMap { $0 }.joined(separator: " ").nonEmpty
        var shippingFee: Int64 = 0
        for (i, line) in (o.shipping_lines ?? []).enumerated() {
            let field = "shipping_lines[\(i)].price"
            let (sum, overflow) = shippingFee.addingReportingOverflow(try AdapterSupport.money(line.price, field: field) ?? 0)
            guard !overflow else { throw AdapterError(.payload, "shipping prices add up past what an amount can hold", field: field) }
            shippingFee = sum
        }
        let total = try AdapterSupport.money(o.total_price, field: "total_price")
        var order =
            CanonicalOrder(
                platform: platform, event: event, platform_order_id: String(o.id), idempotency_key: "shopify:\(o.id):\(topic)",
                buyer: .init(name: name, phone: a?.phone?.nonEmpty ?? o.phone?.nonEmpty),
                shipping: .init(
                    country: a?.country_code, province: a?.province?.nonEmpty, city: a?.city?.nonEmpty, detail: detail.nonEmpty,
                    postal_code: a?.zip?.nonEmpty, text: text.nonEmpty, coordinates: coordinates),
                lines: lines, currency: o.currency, total_minor: total, shipping_fee_minor: shippingFee,
                created_at: o.created_at.flatMap { Timestamps.utc($0) },
                paid_at: o.financial_status == "paid" ? o.processed_at.flatMap { Timestamps.utc($0) } : nil)
        order.remark = o.note?.nonEmpty
        // An order with an address to ship to leaves by parcel (the store books the carrier, `ship`).
        order.delivery_by = a == nil ? nil : "courier"
        return .event(order)
    }
}
