import OCSSCore

/// Youzan (有赞云) trade pushes. `Event-Sign` = lower-hex MD5(client_id + raw body + client_secret);
/// `msg` is a form-encoded JSON string. Reply `{"code":0,"msg":"success"}`.
struct YouzanAdapter: PlatformAdapter {
    let platform = "youzan"
    let successBody = (contentType: "application/json", body: #"{"code":0,"msg":"success"}"#)

    struct Push: Decodable {
        var msg: String?
        var type: String?
        var client_id: String?
        var msg_id: String?
    }
    struct Msg: Decodable {
        struct Full: Decodable {
            struct Info: Decodable {
                var tid: String
                var created: String?
                var pay_time: String?
            }
            struct Address: Decodable {
                var receiver_name: String?
                var receiver_tel: String?
                var delivery_province: String?
                var delivery_city: String?
                var delivery_district: String?
                var delivery_address: String?
                var delivery_postal_code: String?
                var address_extra: String?
                var self_fetch_info: String?
            }
            struct Line: Decodable {
                var sku_id: Int64?
                var outer_sku_id: String?
                var num: Int
                var price: String?
                var title: String?
            }
            struct Pay: Decodable {
                var payment: String?
                var post_fee: String?
            }
            var order_info: Info
            var address_info: Address?
            var orders: [Line]?
            var pay_info: Pay?
            /// The buyer's message (买家留言).
            struct Remarks: Decodable { var buyer_message: String? }
            var remark_info: Remarks?
        }
        var full_order_info: Full?
        var tid: String?
    }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {
        let secret = try AdapterSupport.requireSecret(credentials)
        guard let clientID = credentials?.app_key ?? m.header("client-id") else {
            throw AdapterError(.signature, "no client id configured or sent", field: "Client-Id")
        }
        guard let given = m.header("event-sign") else { throw AdapterError(.signature, "missing Event-Sign header", field: "Event-Sign") }
        let want = Signatures.youzanPush(clientID: clientID, body: m.body, secret: secret)
        guard Crypto.constantTimeEqual(Array(want.utf8), Array(given.lowercased().utf8)) else {
            throw AdapterError(.signature, "signature does not match", field: "Event-Sign")
        }
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        let push = try AdapterSupport.decode(Push.self, m.body)
        let type = push.type ?? m.header("event-type") ?? ""
        let event: String
        switch type {
        case "trade_TradePaid": event = "order.paid"
        // Created is not paid: the order is routed at TradePaid (an unpaid order would hold stock and reach a store).
        case "trade_TradeCreate": return .ignored(reason: "trade_TradeCreate: routed when paid (trade_TradePaid)")
        case "trade_TradeClose": event = "order.cancelled"
        case let t where t.hasPrefix("trade_refund") || t.hasPrefix("refund"): event = "order.refund_requested"
        default: return .ignored(reason: "type '\(type)' is not routed")
        }
        guard let raw = push.msg, let text = AdapterSupport.formDecode(Substring(raw)) else {
            throw AdapterError(.payload, "msg is missing or not form-encoded", field: "msg")
        }
        let msg: Msg
        do { msg = try AdapterSupport.decode(Msg.self, Array(text.utf8)) } catch {
            throw AdapterError(.payload, error.message, field: "msg" + (error.field.map { "." + $0 } ?? ""))
        }
        guard let full = msg.full_order_info else {
            guard let tid = msg.tid else { throw AdapterError(.payload, "msg has neither full_order_info nor tid", field: "msg") }
            return .event(
                CanonicalOrder(
                    platform: platform, event: event, platform_order_id: tid, idempotency_key: "youzan:\(tid):\(type)",
                    shipping: .init(), lines: []))
        }
        let a = full.address_info
        var lines: [CanonicalOrder.Line] = []
        for (i, l) in (full.orders ?? []).enumerated() {
            let price = try AdapterSupport.money(l.price, field: "msg.full_order_info.orders[\(i)].price")
            lines.append(
                .init(
                    sku: l.outer_sku_id?.nonEmpty, platform_sku_id: l.sku_id.map { String($0) }, quantity: l.num, unit_price_minor: price,
                    title: l.title?.nonEmpty))
        }
        // address_extra: {"areaCode":"310114","lon":…,"lat":…}; GCJ-02 assumed (FORMATS.md).
        var coordinates: CanonicalOrder.Coordinates?
        if let extra = a?.address_extra?.nonEmpty {
            struct Extra: Decodable { var lon: Double?; var lat: Double? }
            if let e = try? AdapterSupport.decode(Extra.self, Array(extra.utf8)), let lon = e.lon, let lat = e.lat, lon != 0 || lat != 0 {
                coordinates = .init(lat: lat, lon: lon, crs: "GCJ-02")
            }
        }
        let masked = AdapterSupport.isMasked(a?.delivery_address) || AdapterSupport.isMasked(a?.receiver_tel)
        let detail = AdapterSupport.isMasked(a?.delivery_address) ? nil : a?.delivery_address?.nonEmpty
        let fullText = [a?.delivery_province, a?.delivery_city, a?.delivery_district, detail].compactMap { $0?.nonEmpty }.joined()
        let tid = full.order_info.tid
        var order =
            CanonicalOrder(
                platform: platform, event: event, platform_order_id: tid, idempotency_key: "youzan:\(tid):\(type)",
                buyer: .init(
                    name: AdapterSupport.isMasked(a?.receiver_name) ? nil : a?.receiver_name?.nonEmpty,
                    phone: AdapterSupport.isMasked(a?.receiver_tel) ? nil : a?.receiver_tel?.nonEmpty),
                shipping: .init(
                    country: "CN", province: a?.delivery_province?.nonEmpty, city: a?.delivery_city?.nonEmpty,
                    district: a?.delivery_district?.nonEmpty, detail: detail, postal_code: a?.delivery_postal_code?.nonEmpty,
                    text: fullText.nonEmpty, coordinates: coordinates, address_precision: masked ? "masked" : nil),
                fulfillment: (a?.self_fetch_info?.nonEmpty).map { _ in "pickup" } ?? "delivery",
                lines: lines, currency: "CNY", total_minor: full.pay_info?.payment.flatMap { Money.minorUnits($0) },
                shipping_fee_minor: full.pay_info?.post_fee.flatMap { Money.minorUnits($0) },
                created_at: full.order_info.created.flatMap { Timestamps.utc($0) },
                paid_at: full.order_info.pay_time.flatMap { Timestamps.utc($0) })
        order.remark = full.remark_info?.buyer_message?.nonEmpty
        order.delivery_by = order.fulfillment == "pickup" ? nil : "courier"
        return .event(order)
    }
}
