import FoundationEssentials
import OCSSCore

/// Ele.me retail (饿了么零售, ebai): cmd-style form pushes carrying only ids. `sign` =
/// UPPER(MD5(sorted "k=v" joined by "&" over every param except sign, plus `secret=<app secret>`)).
/// The reply is the same signed envelope with `cmd = resp.<cmd>`; the order comes from the signed
/// `order.get`, with `user.coord` in BD-09 and `user.coord_amap` in GCJ-02, money in fen.
struct ElemeRetailAdapter: PlatformAdapter {
    let platform = "eleme_retail"
    let successBody = (contentType: "application/json", body: #"{"body":{"errno":0,"error":"success"}}"#)
    var contentTypes: [String] { ["application/x-www-form-urlencoded", "application/json"] }
    /// JSON is the `order.get` answer forwarded by the merchant's connector (admin token).
    func needsBearer(_ m: InboundMessage) -> Bool { (m.header("content-type") ?? "").lowercased().hasPrefix("application/json") }

    static func sign(_ params: [String: String], secret: String) -> String {
        var p = params.filter { $0.key != "sign" }
        p["secret"] = secret
        let joined = p.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        return Crypto.hex(Crypto.md5(Array(joined.utf8))).uppercased()
    }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {
        let secret = try AdapterSupport.requireSecret(credentials)
        let f = try AdapterSupport.formFields(m.body)
        guard let given = f["sign"] else { throw AdapterError(.signature, "missing sign", field: "sign") }
        guard Crypto.constantTimeEqual(Array(Self.sign(f, secret: secret).utf8), Array(given.uppercased().utf8)) else {
            throw AdapterError(.signature, "signature does not match", field: "sign")
        }
    }

    func signedTime(_ m: InboundMessage) -> (field: String, epochSeconds: Int64?)? {
        needsBearer(m) ? nil : ("timestamp", (try? AdapterSupport.formFields(m.body))?["timestamp"].flatMap { Int64($0) })
    }

    /// The signed reply envelope ebai expects.
    func reply(to m: InboundMessage, credentials: PlatformCredentials?) -> (contentType: String, body: String) {
        if needsBearer(m) { return ("application/json", #"{"success":true}"#) }
        let f = (try? AdapterSupport.formFields(m.body)) ?? [:]
        var p: [String: String] = [
            "cmd": "resp." + (f["cmd"] ?? ""), "source": f["source"] ?? "", "ticket": f["ticket"] ?? "",
            "timestamp": f["timestamp"] ?? "", "version": f["version"] ?? "3", "encrypt": "",
            "body": #"{"errno":0,"error":"success","data":""}"#,
        ]
        p["sign"] = Self.sign(p, secret: credentials?.app_secret ?? "")
        return ("application/json", String(decoding: CanonicalJSON.encodeValue(p), as: UTF8.self))
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        if needsBearer(m) { return try Self.order(fromAnswer: m.body) }
        let f = try AdapterSupport.formFields(m.body)
        if let e = f["encrypt"], !e.isEmpty {
            throw AdapterError(.payload, "encrypted pushes are not supported; turn encryption off", field: "encrypt")
        }
        struct Body: Decodable { var order_id: Literal; var status: Literal? }
        guard let bodyText = f["body"] else { throw AdapterError(.payload, "body is missing", field: "body") }
        let b: Body
        do { b = try AdapterSupport.decode(Body.self, Array(bodyText.utf8)) } catch {
            throw AdapterError(.payload, error.message, field: "body" + (error.field.map { "." + $0 } ?? ""))
        }
        let cmd = f["cmd"] ?? ""
        switch cmd {
        case "order.create": return .needsDetail(platformOrderID: b.order_id.text, topic: cmd)
        case "order.status.push" where ["10", "15"].contains(b.status?.text ?? ""):
            return .event(
                CanonicalOrder(
                    platform: "eleme", channel: "eleme_retail", event: "order.cancelled", platform_order_id: b.order_id.text,
                    idempotency_key: "eleme:\(b.order_id.text):\(cmd):\(b.status?.text ?? "")", shipping: .init(), lines: []))
        default: return .ignored(reason: "cmd \(cmd) is not routed")
        }
    }

    struct Answer: Decodable {
        struct Body: Decodable { var errno: Int?; var error: String?; var data: Data? }
        struct Data: Decodable {
            struct Shop: Decodable { var id: String? }
            struct Order: Decodable {
                var order_id: Literal
                var create_time: Literal?
                var total_fee: Literal?
                var user_fee: Literal?
                /// The buyer's note, and the day's order number.
                var remark: String?
                var order_index: Literal?
                var send_fee: Literal?
            }
            struct Coord: Decodable { var longitude: Literal?; var latitude: Literal? }
            struct User: Decodable {
                var name: String?
                var phone: String?
                var province: String?
                var city: String?
                var district: String?
                var address: String?
                var coord: Coord?
                var coord_amap: Coord?
            }
            struct Product: Decodable {
                var baidu_product_id: Literal?
                var custom_sku_id: String?
                var product_amount: Int
                var product_price: Literal?
                var product_name: String?
            }
            var shop: Shop?
            var order: Order
            var user: User?
            var products: [[Product]]?
        }
        var body: Body
    }

    static func order(fromAnswer body: [UInt8]) throws(AdapterError) -> AdapterOutcome {
        let a = try AdapterSupport.decode(Answer.self, body)
        guard a.body.errno == 0, let d = a.body.data else { throw AdapterError(.payload, "order.get failed: \(a.body.error ?? "no data")") }
        let id = d.order.order_id.text
        let lines = (d.products ?? []).flatMap { $0 }.map { p in
            CanonicalOrder.Line(
                sku: p.custom_sku_id?.nonEmpty, platform_sku_id: p.baidu_product_id?.text, quantity: p.product_amount,
                unit_price_minor: p.product_price.flatMap { Int64($0.text) }, title: p.product_name?.nonEmpty)  // fen already
        }
        func point(_ c: Answer.Data.Coord?, _ crs: String) -> CanonicalOrder.Coordinates? {
            guard let lon = c?.longitude.flatMap({ Double($0.text) }), let lat = c?.latitude.flatMap({ Double($0.text) }), lon != 0 || lat != 0 else {
                return nil
            }
            return .init(lat: lat, lon: lon, crs: crs)
        }
        let u = d.user
        var order =
            CanonicalOrder(
                platform: "eleme", channel: "eleme_retail", event: "order.paid", platform_order_id: id, idempotency_key: "eleme:\(id):order.create",
                buyer: .init(name: u?.name?.nonEmpty, phone: AdapterSupport.isMasked(u?.phone) ? nil : u?.phone?.nonEmpty),
                shipping: .init(
                    country: "CN", province: Provinces.normalised(u?.province), city: u?.city?.nonEmpty, district: u?.district?.nonEmpty,
                    detail: u?.address?.nonEmpty,
                    text: [Provinces.normalised(u?.province), u?.city?.nonEmpty, u?.district?.nonEmpty, u?.address?.nonEmpty].compactMap { $0 }
                        .joined().nonEmpty,
                    coordinates: point(u?.coord_amap, "GCJ-02") ?? point(u?.coord, "BD-09")),
                platform_store_id: d.shop?.id?.nonEmpty, lines: lines, currency: "CNY",
                total_minor: (d.order.user_fee ?? d.order.total_fee).flatMap { Int64($0.text) },
                shipping_fee_minor: d.order.send_fee.flatMap { Int64($0.text) },
                created_at: try Timestamps.epoch(d.order.create_time?.text, field: "body.data.order.create_time"))
        order.remark = d.order.remark?.nonEmpty
        order.pickup_no = d.order.order_index?.text.nonEmpty
        order.delivery_by = "platform_rider"
        return .event(order)
    }

    /// The signed `order.get`.
    static func detailRequest(
        orderID: String, credentials c: PlatformCredentials, at: Double, ticket: String
    ) throws(StatusCallError) -> OutboundRequest {
        var p: [String: String] = [
            "cmd": "order.get", "timestamp": String(Int64(at)), "version": "3", "ticket": ticket,
            "source": try StatusCalls.need(c.app_key, "app_key"), "encrypt": "", "body": #"{"order_id":"\#(orderID)"}"#,
        ]
        p["sign"] = sign(p, secret: try StatusCalls.need(c.app_secret, "app_secret"))
        return OutboundRequest(
            method: "POST", url: c.base_url + "/api/", headers: ["Content-Type": "application/x-www-form-urlencoded"],
            body: Array(formEncode(p.sorted { $0.key < $1.key }).utf8))
    }
}
