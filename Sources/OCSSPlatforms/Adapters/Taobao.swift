import FoundationEssentials
import OCSSCore

/// Taobao/Tmall. TMC delivers only ids over a WebSocket with no per-message signature, so the
/// merchant's connector forwards either the TMC message (`{id, topic, content}`: ocss then calls
/// `taobao.trade.fullinfo.get` itself) or the detail response (`{"trade_fullinfo_get_response":…}`).
/// Both are authenticated with the ocss admin token, not a platform signature.
struct TaobaoAdapter: PlatformAdapter {
    let platform = "taobao"
    let successBody = (contentType: "application/json", body: #"{"success":true}"#)
    func needsBearer(_ m: InboundMessage) -> Bool { true }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {}

    struct TMC: Decodable {
        var id: Literal?
        var topic: String
        var content: String
    }
    struct Content: Decodable { var tid: Literal }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        struct Probe: Decodable {
            var trade_fullinfo_get_response: Response?
            var topic: String?
        }
        let probe = try AdapterSupport.decode(Probe.self, m.body)
        if let r = probe.trade_fullinfo_get_response { return try Self.order(from: r.trade) }
        guard probe.topic != nil else { throw AdapterError(.payload, "neither a TMC message nor a trade_fullinfo_get_response", field: "topic") }
        let msg = try AdapterSupport.decode(TMC.self, m.body)
        let event: String
        switch msg.topic {
        case "taobao_trade_TradeBuyerPay": event = "order.paid"
        case "taobao_trade_TradeClose", "taobao_trade_TradeCloseAndModifyDetailOrder": event = "order.cancelled"
        case "taobao_refund_RefundCreated", "taobao_refund_RefundSuccess": event = "order.refund_requested"
        default: return .ignored(reason: "topic '\(msg.topic)' is not routed")
        }
        let content: Content
        do { content = try AdapterSupport.decode(Content.self, Array(msg.content.utf8)) } catch {
            throw AdapterError(.payload, error.message, field: "content" + (error.field.map { "." + $0 } ?? ""))
        }
        let tid = content.tid.text
        guard !tid.isEmpty, tid.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw AdapterError(.payload, "tid must be digits", field: "content.tid")
        }
        if event == "order.paid" { return .needsDetail(platformOrderID: tid, topic: msg.topic) }
        return .event(
            CanonicalOrder(
                platform: platform, event: event, platform_order_id: tid,
                idempotency_key: "taobao:\(tid):\(msg.topic)", shipping: .init(), lines: []))
    }

    struct Response: Decodable { var trade: Trade }
    struct Trade: Decodable {
        struct Orders: Decodable { var order: [SubOrder]? }
        struct SubOrder: Decodable {
            var sku_id: Literal?
            var outer_sku_id: String?
            var num: Int
            var price: String?
            var title: String?
            var sku_properties_name: String?
        }
        var tid: Literal?
        var tid_str: String?
        var status: String?
        var receiver_name: String?
        var receiver_mobile: String?
        var receiver_phone: String?
        var receiver_state: String?
        var receiver_city: String?
        var receiver_district: String?
        var receiver_town: String?
        var receiver_address: String?
        var receiver_zip: String?
        var payment: String?
        var post_fee: String?
        var created: String?
        var pay_time: String?
        var orders: Orders?
        /// The buyer's message to the seller (买家留言).
        var buyer_message: String?
    }

    /// The canonical order in a `taobao.trade.fullinfo.get` answer.
    static func order(from t: Trade) throws(AdapterError) -> AdapterOutcome {
        guard let tid = t.tid_str ?? t.tid?.text, !tid.isEmpty else {
            throw AdapterError(.payload, "trade has no tid", field: "trade_fullinfo_get_response.trade.tid")
        }
        let status = t.status ?? ""
        let event: String
        if status == "WAIT_SELLER_SEND_GOODS" {
            event = "order.paid"
        } else if status.hasPrefix("TRADE_CLOSED") {
            event = "order.cancelled"
        } else {
            return .ignored(reason: "trade status \(status) is not routed")
        }
        var lines: [CanonicalOrder.Line] = []
        for (i, o) in (t.orders?.order ?? []).enumerated() {
            let price = try AdapterSupport.money(o.price, field: "trade.orders.order[\(i)].price")
            lines.append(
                .init(
                    sku: o.outer_sku_id?.nonEmpty, platform_sku_id: o.sku_id?.text, quantity: o.num, unit_price_minor: price,
                    title: o.title?.nonEmpty, spec: o.sku_properties_name?.nonEmpty))
        }
        // Province-administered county-level cities: the city comes in receiver_district, receiver_city empty.
        var city = t.receiver_city?.nonEmpty, district = t.receiver_district?.nonEmpty
        if city == nil, let d = district { city = d; district = nil }
        let masked = [t.receiver_name, t.receiver_mobile, t.receiver_address].contains { s in
            s.map { $0.contains("*") || AdapterSupport.isMasked($0) } ?? false
        }
        let detail = (t.receiver_address.map { $0.contains("*") } ?? false) ? nil : t.receiver_address?.nonEmpty
        let text = [t.receiver_state?.nonEmpty, city, district, detail].compactMap { $0 }.joined()
        let phone = t.receiver_mobile?.nonEmpty ?? t.receiver_phone?.nonEmpty
        var order =
            CanonicalOrder(
                platform: "taobao", event: event, platform_order_id: tid, idempotency_key: "taobao:\(tid):\(event)",
                buyer: .init(
                    name: (t.receiver_name?.contains("*") ?? false) ? nil : t.receiver_name?.nonEmpty,
                    phone: (phone?.contains("*") ?? false) ? nil : phone),
                shipping: .init(
                    country: "CN", province: t.receiver_state?.nonEmpty, city: city, district: district, town: t.receiver_town?.nonEmpty,
                    detail: detail, postal_code: t.receiver_zip?.nonEmpty, text: text.nonEmpty, address_precision: masked ? "masked" : nil),
                lines: lines, currency: "CNY", total_minor: t.payment.flatMap { Money.minorUnits($0) },
                shipping_fee_minor: t.post_fee.flatMap { Money.minorUnits($0) },
                created_at: t.created.flatMap { Timestamps.utc($0) }, paid_at: t.pay_time.flatMap { Timestamps.utc($0) })
        order.remark = t.buyer_message?.nonEmpty
        order.delivery_by = "courier"
        return .event(order)
    }

    /// The signed `taobao.trade.fullinfo.get` request for `tid`.
    static func detailRequest(tid: String, credentials c: PlatformCredentials, at: Double) throws(StatusCallError) -> OutboundRequest {
        let method = c.sign_method ?? "md5"
        var p: [String: String] = [
            "method": "taobao.trade.fullinfo.get", "app_key": try StatusCalls.need(c.app_key, "app_key"),
            "session": try StatusCalls.need(c.session, "session"), "timestamp": shanghaiTime(at), "format": "json", "v": "2.0",
            "sign_method": method, "tid": tid,
            "fields": "tid,tid_str,status,payment,post_fee,created,pay_time,receiver_name,receiver_mobile,receiver_phone,receiver_state,"
                + "receiver_city,receiver_district,receiver_town,receiver_address,receiver_zip,orders",
        ]
        p["sign"] = Signatures.top(p, secret: try StatusCalls.need(c.app_secret, "app_secret"), method: method)
        return OutboundRequest(
            method: "POST", url: c.base_url + "/router/rest",
            headers: ["Content-Type": "application/x-www-form-urlencoded;charset=utf-8"],
            body: Array(formEncode(p.sorted { $0.key < $1.key }).utf8))
    }
}

/// A JSON scalar kept as its literal text (ids beyond 2^53 stay exact).
struct Literal: Decodable, Sendable {
    let text: String
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { text = s; return }
        if let b = try? c.decode(Bool.self) { text = b ? "true" : "false"; return }
        text = "\(try c.decode(Decimal.self))"
    }
}

extension AdapterOutcome {
    /// Parses a detail-API answer for `platform` (what a fetcher got back).
    public static func fromDetail(platform: String, body: [UInt8]) throws(AdapterError) -> AdapterOutcome {
        switch platform {
        case "taobao":
            struct Wrapped: Decodable { var trade_fullinfo_get_response: TaobaoAdapter.Response? }
            let w = try AdapterSupport.decode(Wrapped.self, body)
            guard let r = w.trade_fullinfo_get_response else {
                throw AdapterError(.payload, "no trade_fullinfo_get_response: \(String(decoding: body.prefix(200), as: UTF8.self))")
            }
            return try TaobaoAdapter.order(from: r.trade)
        case "pinduoduo":
            struct Wrapped: Decodable { var order_info_get_response: PinduoduoAdapter.Detail? }
            let w = try AdapterSupport.decode(Wrapped.self, body)
            guard let r = w.order_info_get_response else {
                throw AdapterError(.payload, "no order_info_get_response: \(String(decoding: body.prefix(200), as: UTF8.self))")
            }
            return try PinduoduoAdapter.order(from: r.order_info)
        case "jd":
            struct Wrapped: Decodable { var jingdong_pop_order_get_responce: JDPopAdapter.Response? }
            let w = try AdapterSupport.decode(Wrapped.self, body)
            guard let info = w.jingdong_pop_order_get_responce?.orderDetailInfo?.orderInfo else {
                throw AdapterError(.payload, "no jingdong_pop_order_get_responce: \(String(decoding: body.prefix(200), as: UTF8.self))")
            }
            return try JDPopAdapter.order(from: info)
        case "jd_daojia":
            return try JDDaojiaAdapter.order(fromQuery: body)
        case "eleme_retail":
            return try ElemeRetailAdapter.order(fromAnswer: body)
        default:
            throw AdapterError(.payload, "no detail parser for \(platform)")
        }
    }

    /// The signed detail request for `platform`.
    public static func detailRequest(
        platform: String, platformOrderID: String, credentials: PlatformCredentials, at: Double
    ) throws(StatusCallError) -> OutboundRequest {
        switch platform {
        case "taobao": return try TaobaoAdapter.detailRequest(tid: platformOrderID, credentials: credentials, at: at)
        case "pinduoduo": return try PinduoduoAdapter.detailRequest(orderSN: platformOrderID, credentials: credentials, at: at)
        case "jd": return try JDPopAdapter.detailRequest(orderID: platformOrderID, credentials: credentials, at: at)
        case "jd_daojia": return try JDDaojiaAdapter.detailRequest(orderID: platformOrderID, credentials: credentials, at: at)
        case "eleme_retail":
            return try ElemeRetailAdapter.detailRequest(
                orderID: platformOrderID, credentials: credentials, at: at,
                ticket: Crypto.hex(Crypto.randomBytes(16)))
        default: throw StatusCallError(message: "no detail API for \(platform)")
        }
    }
}
