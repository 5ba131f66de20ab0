import FoundationEssentials

/// Request builders for the platforms' own status calls, and how to read their answers.
///
/// | platform | accepted | shipped | delivered | cancelled |
/// |---|---|---|---|---|
/// | Shopify | - | fulfillment with tracking (two calls: fulfillment orders, then fulfillment) | - | order cancel |
/// | Taobao/Tmall | - | `taobao.logistics.offline.send` | - | - |
/// | Youzan | - | `youzan.logistics.online.confirm` 3.0.0 | - | - |
/// | Meituan 外卖 | `order/confirm` | `order/delivering` | `order/arrived` | `order/cancel` |
/// (and Meituan's `order/preparationMealComplete` for `ready`, 出餐完成, which calls its rider)
/// | Ele.me | `eleme.order.confirmOrderLite` | `eleme.order.deliveryBySelfLite` | `eleme.order.receivedOrderLite` | `eleme.order.cancelOrderLite` |
public enum StatusCalls {
    /// Platforms with status calls.
    public static let platforms: Set<String> = ["shopify", "taobao", "youzan", "meituan", "eleme"]

    /// True when `platform` has a call for `event`.
    public static func hasCall(platform: String, event: String) -> Bool {
        switch (platform, event) {
        case ("shopify", "shipped"), ("shopify", "cancelled"), ("taobao", "shipped"), ("youzan", "shipped"): true
        case ("meituan", "ready"): true  // 出餐完成: Meituan calls its rider
        case ("meituan", _), ("eleme", _): ["accepted", "shipped", "delivered", "cancelled"].contains(event)
        default: false
        }
    }

    /// The request for a single-call platform (everything but Shopify's shipment, see `shopifyFulfillmentOrders`).
    public static func request(
        platform: String, update u: StatusUpdate, credentials c: PlatformCredentials,
        nonce: String
    ) throws(StatusCallError) -> OutboundRequest {
        switch platform {
        case "taobao": return try taobaoOfflineSend(u, c)
        case "youzan": return try youzanConfirm(u, c)
        case "meituan": return try meituan(u, c)
        case "eleme": return try eleme(u, c, nonce: nonce)
        case "shopify" where u.event == "cancelled": return try shopifyCancel(u, c)
        default: throw StatusCallError(message: "no single status call for \(platform) \(u.event)")
        }
    }

    static func need(_ v: String?, _ name: String) throws(StatusCallError) -> String {
        guard let v, !v.isEmpty else { throw StatusCallError(message: "missing \(name)") }
        return v
    }

    // MARK: Taobao

    static func taobaoOfflineSend(_ u: StatusUpdate, _ c: PlatformCredentials) throws(StatusCallError) -> OutboundRequest {
        let method = c.sign_method ?? "md5"
        var p: [String: String] = [
            "method": "taobao.logistics.offline.send",
            "app_key": try need(c.app_key, "app_key"),
            "session": try need(c.session, "session"),
            "timestamp": shanghaiTime(u.at),
            "format": "json",
            "v": "2.0",
            "sign_method": method,
            "tid": u.platformOrderID,
            "out_sid": try need(u.trackingNumber, "tracking_number"),
            "company_code": try need(u.carrier, "carrier"),
        ]
        p["sign"] = Signatures.top(p, secret: try need(c.app_secret, "app_secret"), method: method)
        return OutboundRequest(
            method: "POST", url: c.base_url + "/router/rest",
            headers: ["Content-Type": "application/x-www-form-urlencoded;charset=utf-8"],
            body: Array(formEncode(p.sorted { $0.key < $1.key }).utf8))
    }

    // MARK: Youzan

    static func youzanConfirm(_ u: StatusUpdate, _ c: PlatformCredentials) throws(StatusCallError) -> OutboundRequest {
        let token = try need(c.access_token, "access_token")
        let body = jsonBytes([
            "tid": u.platformOrderID, "out_stype": try need(u.carrier, "carrier"),
            "out_sid": try need(u.trackingNumber, "tracking_number"), "is_no_express": "0",
        ])
        return OutboundRequest(
            method: "POST", url: c.base_url + "/api/youzan.logistics.online.confirm/3.0.0?access_token=" + percentEncode(token),
            headers: ["Content-Type": "application/json"], body: body)
    }

    // MARK: Meituan

    static func meituan(_ u: StatusUpdate, _ c: PlatformCredentials) throws(StatusCallError) -> OutboundRequest {
        let path: String
        switch u.event {
        case "accepted": path = "order/confirm"
        case "shipped": path = "order/delivering"
        case "delivered": path = "order/arrived"
        case "ready": path = "order/preparationMealComplete"
        case "cancelled": path = "order/cancel"
        default: throw StatusCallError(message: "no Meituan call for \(u.event)")
        }
        let url = c.base_url + "/api/v1/" + path
        var p: [String: String] = ["app_id": try need(c.app_key, "app_key"), "timestamp": String(Int64(u.at)), "order_id": u.platformOrderID]
        if u.event == "cancelled" {
            p["reason_code"] = "2007"  // merchant-initiated
            p["reason"] = u.reason ?? "merchant cancelled"
        }
        p["sig"] = Signatures.meituan(url: url, p, secret: try need(c.app_secret, "app_secret"))
        return OutboundRequest(method: "GET", url: url + "?" + formEncode(p.sorted { $0.key < $1.key }))
    }

    // MARK: Ele.me

    static func eleme(_ u: StatusUpdate, _ c: PlatformCredentials, nonce: String) throws(StatusCallError) -> OutboundRequest {
        let action: String
        switch u.event {
        case "accepted": action = "eleme.order.confirmOrderLite"
        case "shipped": action = "eleme.order.deliveryBySelfLite"
        case "delivered": action = "eleme.order.receivedOrderLite"
        case "cancelled": action = "eleme.order.cancelOrderLite"
        default: throw StatusCallError(message: "no Ele.me call for \(u.event)")
        }
        let token = try need(c.access_token, "access_token")
        let key = try need(c.app_key, "app_key")
        let ts = String(Int64(u.at))
        // Values enter the signature as JSON text: strings quoted, numbers bare.
        var pairs: [String: String] = ["app_key": "\"\(key)\"", "timestamp": ts, "orderId": "\"\(u.platformOrderID)\""]
        var params = #"{"orderId":"\#(u.platformOrderID)""#
        if u.event == "cancelled" {
            pairs["type"] = "\"others\""
            pairs["remark"] = "\"\(u.reason ?? "merchant cancelled")\""
            params += #","type":"others","remark":"\#(u.reason ?? "merchant cancelled")""#
        }
        params += "}"
        let signature = Signatures.eleme(action: action, token: token, pairs, secret: try need(c.app_secret, "app_secret"))
        let body =
            #"{"nop":"1.0.0","id":"\#(nonce)","action":"\#(action)","token":"\#(token)","metas":{"app_key":"\#(key)","timestamp":\#(ts)},"params":\#(params),"signature":"\#(signature)"}"#
        return OutboundRequest(
            method: "POST", url: c.base_url + "/api/v1/", headers: ["Content-Type": "application/json;charset=utf-8"],
            body: Array(body.utf8))
    }

    // MARK: Shopify

    static let shopifyAPI = "/admin/api/2024-07"

    static func shopifyHeaders(_ c: PlatformCredentials) throws(StatusCallError) -> [String: String] {
        ["X-Shopify-Access-Token": try need(c.access_token, "access_token"), "Content-Type": "application/json"]
    }

    /// Step 1 of a Shopify shipment: the order's fulfillment orders.
    public static func shopifyFulfillmentOrders(_ u: StatusUpdate, _ c: PlatformCredentials) throws(StatusCallError) -> OutboundRequest {
        OutboundRequest(
            method: "GET", url: c.base_url + shopifyAPI + "/orders/\(u.platformOrderID)/fulfillment_orders.json",
            headers: try shopifyHeaders(c))
    }

    /// Ids of the open fulfillment orders in step 1's answer.
    public static func shopifyOpenFulfillmentOrderIDs(_ body: [UInt8]) -> [String] {
        struct Answer: Decodable {
            struct FO: Decodable {
                var id: Int64
                var status: String?
            }
            var fulfillment_orders: [FO]
        }
        guard let a = try? JSONDecoder().decode(Answer.self, from: Data(body)) else { return [] }
        return a.fulfillment_orders.filter { ($0.status ?? "open") == "open" || $0.status == "in_progress" }.map { String($0.id) }
    }

    /// Step 2: the fulfillment with tracking for those fulfillment orders.
    public static func shopifyFulfillment(
        _ u: StatusUpdate, fulfillmentOrderIDs: [String], _ c: PlatformCredentials
    ) throws(StatusCallError) -> OutboundRequest {
        let items = fulfillmentOrderIDs.map { #"{"fulfillment_order_id":\#($0)}"# }.joined(separator: ",")
        let body =
            #"{"fulfillment":{"line_items_by_fulfillment_order":[\#(items)],"tracking_info":{"company":"\#(try need(u.carrier, "carrier"))","number":"\#(try need(u.trackingNumber, "tracking_number"))"},"notify_customer":true}}"#
        return OutboundRequest(
            method: "POST", url: c.base_url + shopifyAPI + "/fulfillments.json", headers: try shopifyHeaders(c),
            body: Array(body.utf8))
    }

    static func shopifyCancel(_ u: StatusUpdate, _ c: PlatformCredentials) throws(StatusCallError) -> OutboundRequest {
        OutboundRequest(
            method: "POST", url: c.base_url + shopifyAPI + "/orders/\(u.platformOrderID)/cancel.json", headers: try shopifyHeaders(c),
            body: Array("{}".utf8))
    }

    // MARK: answers

    /// Whether the platform accepted the call: HTTP 2xx and, for the Chinese platforms, their own
    /// success marker in the body (they answer errors with HTTP 200).
    public static func succeeded(platform: String, status: Int, body: [UInt8]) -> Bool {
        guard (200..<300).contains(status) else { return false }
        let text = String(decoding: body, as: UTF8.self)
        switch platform {
        case "taobao": return !text.contains("\"error_response\"")
        case "youzan": return text.contains("\"success\":true")
        case "meituan": return text.contains("\"data\":\"ok\"")
        case "eleme": return text.contains("\"error\":null")
        default: return true
        }
    }
}
