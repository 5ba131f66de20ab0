import FoundationEssentials
import OCSSCore

/// Ele.me open platform pushes: JSON `{requestId, type, appId, message (a JSON string), shopId,
/// timestamp (ms), signature, userId}`. `signature` = UPPER(MD5(sorted key + "=" + value, no
/// separator, `signature` excluded, + app_secret)), with numbers as their literal digits
/// (`userId` exceeds 2^53). Reply `{"message":"ok"}`.
struct ElemeAdapter: PlatformAdapter {
    let platform = "eleme"
    let successBody = (contentType: "application/json", body: #"{"message":"ok"}"#)

    /// `timestamp` is signed in milliseconds.
    func signedTime(_ m: InboundMessage) -> (field: String, epochSeconds: Int64?)? {
        ("timestamp", (try? AdapterSupport.decode([String: Literal].self, m.body))?["timestamp"].flatMap { Int64($0.text) }.map { $0 / 1000 })
    }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {
        let secret = try AdapterSupport.requireSecret(credentials)
        let fields = try AdapterSupport.decode([String: Literal].self, m.body)
        guard let given = fields["signature"]?.text else { throw AdapterError(.signature, "missing signature", field: "signature") }
        let joined = fields.filter { $0.key != "signature" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.text)" }.joined()
        let want = Crypto.hex(Crypto.md5(Array((joined + secret).utf8))).uppercased()
        guard Crypto.constantTimeEqual(Array(want.utf8), Array(given.uppercased().utf8)) else {
            throw AdapterError(.signature, "signature does not match", field: "signature")
        }
    }

    struct Order: Decodable {
        struct Group: Decodable {
            struct Item: Decodable {
                var skuId: Literal?
                var extendCode: String?
                var quantity: Int
                var price: Literal?
                var name: String?
            }
            var type: String?
            var items: [Item]?
        }
        var orderId: Literal?
        var id: Literal?
        var openId: String?
        var consignee: String?
        var phoneList: [String]?
        var address: String?
        var deliveryGeo: String?
        var createdAt: String?
        var activeAt: String?
        var groups: [Group]?
        var totalPrice: Literal?
        var deliverFee: Literal?
        /// The buyer's note (备注), the day's order number shown to riders, and the scheduled time (nil: as soon as
        /// possible, local time without an offset).
        var description: String?
        var daySn: Literal?
        var deliverTime: String?
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        let fields = try AdapterSupport.decode([String: Literal].self, m.body)
        let type = fields["type"]?.text ?? ""
        guard let message = fields["message"]?.text else { throw AdapterError(.payload, "message is missing", field: "message") }
        switch type {
        case "10": break
        // 14/15/17: cancelled or invalidated; 23/25: the buyer's cancellation agreed by the shop or by arbitration;
        // 33/35: a whole-order refund (退单) agreed likewise.
        case "14", "15", "17", "23", "25", "33", "35":
            struct Status: Decodable { var orderId: Literal }
            let s: Status
            do { s = try AdapterSupport.decode(Status.self, Array(message.utf8)) } catch {
                throw AdapterError(.payload, error.message, field: "message" + (error.field.map { "." + $0 } ?? ""))
            }
            return .event(
                CanonicalOrder(
                    platform: platform, event: ["33", "35"].contains(type) ? "order.refund_requested" : "order.cancelled",
                    platform_order_id: s.orderId.text,
                    idempotency_key: "eleme:\(s.orderId.text):\(type)", shipping: .init(), lines: []))
        default: return .ignored(reason: "type \(type) is not routed")
        }
        let o: Order
        do { o = try AdapterSupport.decode(Order.self, Array(message.utf8)) } catch {
            throw AdapterError(.payload, error.message, field: "message" + (error.field.map { "." + $0 } ?? ""))
        }
        guard let id = (o.orderId ?? o.id)?.text, !id.isEmpty else { throw AdapterError(.payload, "orderId is missing", field: "message.orderId") }
        var lines: [CanonicalOrder.Line] = []
        for (g, group) in (o.groups ?? []).enumerated() where group.type != "extra" && group.type != "discount" {
            // "extra" groups are fees (餐盒费), not goods.
            for (i, it) in (group.items ?? []).enumerated() {
                let price = try AdapterSupport.money(it.price?.text, field: "message.groups[\(g)].items[\(i)].price")
                lines.append(
                    .init(
                        sku: it.extendCode?.nonEmpty, platform_sku_id: it.skuId?.text, quantity: it.quantity, unit_price_minor: price,
                        title: it.name?.nonEmpty))
            }
        }
        var coordinates: CanonicalOrder.Coordinates?
        if let geo = o.deliveryGeo, case let p = geo.split(separator: ","), p.count == 2, let lon = Double(p[0]), let lat = Double(p[1]) {
            coordinates = .init(lat: lat, lon: lon, crs: "GCJ-02")
        }
        let phone = o.phoneList?.first.map { $0.split(separator: ",", maxSplits: 1).map(String.init) }
        var order =
            CanonicalOrder(
                platform: platform, event: "order.paid", platform_order_id: id, idempotency_key: "eleme:\(id):10",
                buyer: .init(name: o.consignee?.nonEmpty, phone: phone?.first, phone_extension: (phone?.count ?? 0) > 1 ? phone?[1] : nil),
                shipping: .init(country: "CN", text: o.address?.nonEmpty, coordinates: coordinates),
                platform_store_id: o.openId?.nonEmpty, lines: lines, currency: "CNY",
                total_minor: o.totalPrice.flatMap { Money.minorUnits($0.text) },
                shipping_fee_minor: o.deliverFee.flatMap { Money.minorUnits($0.text) },
                created_at: (o.createdAt ?? o.activeAt).flatMap { Timestamps.utc($0) })
        // Ele.me delivery orders are taken by its riders (蜂鸟).
        order.delivery_by = "platform_rider"
        order.pickup_no = o.daySn?.text.nonEmpty
        order.remark = o.description?.nonEmpty
        order.expected_at = o.deliverTime.flatMap { Timestamps.utc($0) }
        return .event(order)
    }
}
