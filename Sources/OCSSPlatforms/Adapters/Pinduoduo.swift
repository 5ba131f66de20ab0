import FoundationEssentials
import OCSSCore

/// Pinduoduo. The message service is a WebSocket with unsigned frames, so the merchant's connector
/// forwards frames (or `order_info_get_response` bodies) with the ocss admin token. A paid trade is
/// completed with the signed `pdd.order.information.get`.
struct PinduoduoAdapter: PlatformAdapter {
    let platform = "pinduoduo"
    let successBody = (contentType: "application/json", body: #"{"success":true}"#)
    func needsBearer(_ m: InboundMessage) -> Bool { true }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {}

    struct Frame: Decodable {
        struct Message: Decodable {
            var type: String
            var content: String
        }
        var id: Literal?
        var message: Message
    }
    struct Content: Decodable { var tid: Literal }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        struct Probe: Decodable {
            var order_info_get_response: Detail?
            var message: Frame.Message?
        }
        let probe = try AdapterSupport.decode(Probe.self, m.body)
        if let d = probe.order_info_get_response { return try Self.order(from: d.order_info) }
        guard let msg = probe.message else {
            throw AdapterError(.payload, "neither a message frame nor an order_info_get_response", field: "message")
        }
        let content: Content
        do { content = try AdapterSupport.decode(Content.self, Array(msg.content.utf8)) } catch {
            throw AdapterError(.payload, error.message, field: "message.content" + (error.field.map { "." + $0 } ?? ""))
        }
        let tid = content.tid.text
        switch msg.type {
        case "pdd_trade_TradeConfirmed": return .needsDetail(platformOrderID: tid, topic: msg.type)
        case "pdd_refund_RefundCreated", "pdd_refund_RefundAgreeAgreement":
            return .event(
                CanonicalOrder(
                    platform: platform, event: "order.refund_requested", platform_order_id: tid,
                    idempotency_key: "pinduoduo:\(tid):\(msg.type)", shipping: .init(), lines: []))
        default: return .ignored(reason: "type '\(msg.type)' is not routed")
        }
    }

    struct Detail: Decodable { var order_info: Info }
    struct Info: Decodable {
        struct Item: Decodable {
            var sku_id: Literal?
            var outer_id: String?
            var goods_count: Int
            var goods_price: Literal?
            var goods_name: String?
            var goods_spec: String?
        }
        var order_sn: String
        /// The buyer's note (买家留言).
        var buyer_memo: String?
        var order_status: Int?
        var refund_status: Int?
        var province: String?
        var city: String?
        var town: String?
        var receiver_address: String?
        var receiver_name: String?
        var receiver_phone: String?
        var item_list: [Item]?
        var pay_amount: Literal?
        var postage: Literal?
        var created_time: String?
        var pay_time: String?
    }

    static func order(from o: Info) throws(AdapterError) -> AdapterOutcome {
        let event: String
        if (o.refund_status ?? 1) > 1 {
            event = "order.refund_requested"
        } else if o.order_status == 1 {
            event = "order.paid"
        } else {
            return .ignored(reason: "order_status \(o.order_status ?? 0) is not routed")
        }
        var lines: [CanonicalOrder.Line] = []
        for (i, it) in (o.item_list ?? []).enumerated() {
            let price = try AdapterSupport.money(it.goods_price?.text, field: "order_info.item_list[\(i)].goods_price")
            lines.append(
                .init(
                    sku: it.outer_id?.nonEmpty, platform_sku_id: it.sku_id?.text, quantity: it.goods_count, unit_price_minor: price,
                    title: it.goods_name?.nonEmpty, spec: it.goods_spec?.nonEmpty))
        }
        // The phone is ciphertext while the order waits to ship: never stored as a number.
        let phone = o.receiver_phone?.nonEmpty.flatMap { $0.allSatisfy { $0.isNumber || $0 == "-" } ? $0 : nil }
        let nameMasked = o.receiver_name.map { $0.contains("*") || $0.hasPrefix("~") } ?? false
        let addressMasked = o.receiver_address.map { $0.contains("*") || $0.hasPrefix("~") } ?? false
        let detail = addressMasked ? nil : o.receiver_address?.nonEmpty
        let text = [Provinces.normalised(o.province), o.city?.nonEmpty, o.town?.nonEmpty, detail].compactMap { $0 }.joined()
        var order =
            CanonicalOrder(
                platform: "pinduoduo", event: event, platform_order_id: o.order_sn, idempotency_key: "pinduoduo:\(o.order_sn):\(event)",
                buyer: .init(name: nameMasked ? nil : o.receiver_name?.nonEmpty, phone: phone),
                shipping: .init(
                    country: "CN", province: Provinces.normalised(o.province), city: o.city?.nonEmpty, district: o.town?.nonEmpty,
                    detail: detail, text: text.nonEmpty,
                    address_precision: (phone == nil && o.receiver_phone?.nonEmpty != nil) || nameMasked || addressMasked ? "masked" : nil),
                lines: lines, currency: "CNY", total_minor: o.pay_amount.flatMap { Money.minorUnits($0.text) },
                shipping_fee_minor: o.postage.flatMap { Money.minorUnits($0.text) },
                created_at: o.created_time.flatMap { Timestamps.utc($0) }, paid_at: o.pay_time.flatMap { Timestamps.utc($0) })
        order.remark = o.buyer_memo?.nonEmpty
        order.delivery_by = "courier"
        return .event(order)
    }

    /// The signed `pdd.order.information.get` (POP router: MD5(secret + sorted k+v + secret), upper hex).
    static func detailRequest(orderSN: String, credentials c: PlatformCredentials, at: Double) throws(StatusCallError) -> OutboundRequest {
        var p: [String: String] = [
            "type": "pdd.order.information.get", "client_id": try StatusCalls.need(c.app_key, "app_key"),
            "access_token": try StatusCalls.need(c.access_token, "access_token"), "timestamp": String(Int64(at)), "data_type": "JSON",
            "version": "V1", "order_sn": orderSN,
        ]
        p["sign"] = Signatures.top(p, secret: try StatusCalls.need(c.app_secret, "app_secret"), method: "md5")
        return OutboundRequest(
            method: "POST", url: c.base_url + "/api/router", headers: ["Content-Type": "application/x-www-form-urlencoded"],
            body: Array(formEncode(p.sorted { $0.key < $1.key }).utf8))
    }
}
