import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// One fake for five platforms: checks each request's signature and fields the platform's way and
/// answers with the platform's own success body.
final class FakePlatforms: Responder, @unchecked Sendable {
    struct Call: Equatable { var platform: String; var name: String; var order: String; var verified: Bool }
    static let secret = "app-secret-123456"
    static let token = "access-token-xyz"
    private let lock = NSLock()
    private var log: [Call] = []
    var server: HTTPServer!

    init() throws { server = try HTTPServer(config: ServerConfig(bindAddress: "127.0.0.1", port: 0), responder: self) }
    var base: String { "http://127.0.0.1:\(server.port)" }
    var calls: [Call] { lock.withLock { log } }

    func record(_ c: Call) { lock.withLock { log.append(c) } }

    static func form(_ body: [UInt8]) -> [String: String] {
        var out: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if kv.count == 2 { out[kv[0]] = kv[1] }
        }
        return out
    }

    func respond(to r: Request, reply: Reply) {
        let ok = { (body: String) in reply.send(Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(body.utf8))) }
        switch r.path {
        case "/router/rest":  // Taobao TOP
            let p = Self.form(r.body)
            let verified =
                p["sign"] == Signatures.top(p, secret: Self.secret, method: p["sign_method"] ?? "md5")
                && p["method"] == "taobao.logistics.offline.send" && p["out_sid"] != nil && p["company_code"] != nil && p["session"] == "sess"
            record(Call(platform: "taobao", name: p["method"] ?? "", order: p["tid"] ?? "", verified: verified))
            ok(
                verified
                    ? #"{"logistics_offline_send_response":{"shipping":{"is_success":true}}}"#
                    : #"{"error_response":{"code":25,"msg":"Invalid signature"}}"#)
        case let path where path.hasPrefix("/api/v1/order/"):  // Meituan
            let verified = r.query["sig"] == Signatures.meituan(url: base + path, r.query, secret: Self.secret) && r.query["app_id"] == "mt-app"
            record(Call(platform: "meituan", name: String(path.dropFirst("/api/v1/".count)), order: r.query["order_id"] ?? "", verified: verified))
            ok(verified ? #"{"data":"ok"}"# : #"{"data":"ng","error":{"code":703,"msg":"签名错误"}}"#)
        case "/api/v1/":  // Ele.me
            let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
            let metas = o["metas"] as? [String: Any] ?? [:], params = o["params"] as? [String: Any] ?? [:]
            var pairs: [String: String] = [:]
            for (k, v) in metas.merging(params, uniquingKeysWith: { a, _ in a }) {
                pairs[k] = v is String ? "\"\(v)\"" : "\(v)"
            }
            let action = o["action"] as? String ?? ""
            let verified =
                o["signature"] as? String == Signatures.eleme(action: action, token: o["token"] as? String ?? "", pairs, secret: Self.secret)
            record(Call(platform: "eleme", name: action, order: params["orderId"] as? String ?? "", verified: verified))
            ok(verified ? #"{"id":"\#(o["id"] ?? "")","result":true,"error":null}"# : #"{"result":null,"error":{"code":"VALIDATION_FAILED"}}"#)
        case let path where path.hasPrefix("/api/youzan.logistics.online.confirm/3.0.0"):
            let b = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
            let verified = r.query["access_token"] == Self.token && b["out_sid"] != nil && b["out_stype"] != nil
            record(Call(platform: "youzan", name: "logistics.online.confirm", order: b["tid"] as? String ?? "", verified: verified))
            ok(verified ? #"{"success":true,"code":200}"# : #"{"success":false,"code":4001}"#)
        case let path where path.hasPrefix("/admin/api/2024-07/"):  // Shopify
            let verified = r.header("x-shopify-access-token") == Self.token
            if path.hasSuffix("/cancel.json") {
                record(Call(platform: "shopify", name: "cancel", order: String(path.split(separator: "/")[4]), verified: verified))
                ok(#"{"order":{"id":1}}"#)
            } else if path.hasSuffix("/fulfillment_orders.json") {
                let order = path.split(separator: "/")[4]
                record(Call(platform: "shopify", name: "fulfillment_orders", order: String(order), verified: verified))
                ok(#"{"fulfillment_orders":[{"id":1046000778,"status":"open"},{"id":1046000779,"status":"closed"}]}"#)
            } else {
                let b = String(decoding: r.body, as: UTF8.self)
                let fields = b.contains(#""fulfillment_order_id":1046000778"#) && !b.contains("1046000779") && b.contains(#""number":"SH-1""#)
                record(Call(platform: "shopify", name: "fulfillments", order: "", verified: verified && fields))
                reply.send(Response(status: verified && fields ? 201 : 422))
            }
        default:
            reply.send(Response(status: 404))
        }
    }
}

@Suite(.serialized, .ownThreads) struct PlatformStatusTests {
    func body(platform: String, id: String) -> String {
        #"{"platform":"\#(platform)","event":"order.paid","platform_order_id":"\#(id)","idempotency_key":"\#(platform):\#(id):paid","#
            + #""shipping":{"coordinates":{"lat":30,"lon":119.99,"crs":"WGS84"}},"lines":[{"sku":"A","quantity":1}]}"#
    }

    @Test func eachPlatformHearsItsStepsSigned() throws {
        let fake = try FakePlatforms()
        defer { fake.server.stop() }
        let live = try Live {
            $0.outbox.baseDelay = 0.05; $0.outbox.pollInterval = 0.05
        }
        defer { live.stop() }
        let shop = try Shop(live: live)
        let common = #""base_url":"\#(fake.base)","app_secret":"\#(FakePlatforms.secret)","access_token":"\#(FakePlatforms.token)""#
        for (p, extra) in [
            ("taobao", #","app_key":"tb-app","session":"sess","sign_method":"hmac-sha256""#), ("meituan", #","app_key":"mt-app""#),
            ("eleme", #","app_key":"el-app""#), ("youzan", ""), ("shopify", ""),
        ] {
            let r = try live.http.send("PUT", "/v1/platforms/\(p)/credentials", headers: admin + json, body: "{" + common + extra + "}")
            #expect(r.status == 200, "\(r.body)")
            #expect(!r.body.contains(FakePlatforms.secret) && !r.body.contains(FakePlatforms.token))
        }
        let orders = [
            ("taobao", "2411234567890123456"), ("meituan", "27061900338318740"), ("eleme", "3024712456123"),
            ("youzan", "E20261126"), ("shopify", "820982911946154508"),
        ]
        for (p, id) in orders {
            let r = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body(platform: p, id: id))
            let aid = try #require((parse(r.body)["assignment"] as? [String: Any])?["assignment_id"] as? Int)
            for a in ["accept", "pick"] { #expect(try shop.act(aid, a, as: "near").status == 200) }
            #expect(try shop.act(aid, "ship", as: "near", body: #"{"carrier":"SF","tracking_number":"SH-1"}"#).status == 200)
            #expect(try shop.act(aid, "deliver", as: "near").status == 200)
        }
        let expected: [FakePlatforms.Call] = [
            .init(platform: "taobao", name: "taobao.logistics.offline.send", order: "2411234567890123456", verified: true),
            .init(platform: "meituan", name: "order/confirm", order: "27061900338318740", verified: true),
            .init(platform: "meituan", name: "order/delivering", order: "27061900338318740", verified: true),
            .init(platform: "meituan", name: "order/arrived", order: "27061900338318740", verified: true),
            .init(platform: "eleme", name: "eleme.order.confirmOrderLite", order: "3024712456123", verified: true),
            .init(platform: "eleme", name: "eleme.order.deliveryBySelfLite", order: "3024712456123", verified: true),
            .init(platform: "eleme", name: "eleme.order.receivedOrderLite", order: "3024712456123", verified: true),
            .init(platform: "youzan", name: "logistics.online.confirm", order: "E20261126", verified: true),
            .init(platform: "shopify", name: "fulfillment_orders", order: "820982911946154508", verified: true),
            .init(platform: "shopify", name: "fulfillments", order: "", verified: true),
        ]
        let all = eventually(15) { fake.calls.count >= expected.count }
        #expect(all)
        for p in ["taobao", "meituan", "eleme", "youzan", "shopify"] {
            #expect(fake.calls.filter { $0.platform == p } == expected.filter { $0.platform == p })
        }
        // Nothing is pending or dead for the platform targets.
        let box = try live.http.send("GET", "/v1/outbox?status=dead", headers: admin)
        #expect((parse(box.body)["messages"] as? [[String: Any]])?.isEmpty == true)
    }

    @Test func aCancellationThePlatformMadeIsNotSentBackToIt() throws {
        let fake = try FakePlatforms()
        defer { fake.server.stop() }
        let live = try Live {
            $0.outbox.baseDelay = 0.05; $0.outbox.pollInterval = 0.05
        }
        defer { live.stop() }
        _ = try Shop(live: live)
        let creds = #"{"base_url":"\#(fake.base)","app_secret":"\#(FakePlatforms.secret)","access_token":"\#(FakePlatforms.token)"}"#
        #expect(try live.http.send("PUT", "/v1/platforms/shopify/credentials", headers: admin + json, body: creds).status == 200)
        func webhook(_ body: String, _ topic: String) throws -> Int {
            try live.http.send(
                "POST", "/v1/platforms/shopify/webhook",
                headers: [
                    ("Content-Type", "application/json"), ("X-Shopify-Topic", topic),
                    ("X-Shopify-Hmac-Sha256", Signatures.shopify(body: Array(body.utf8), secret: FakePlatforms.secret)),
                ], body: body
            ).status
        }
        // Shopify cancels its own order: ocss cancels it and does not call Shopify's cancel for it.
        #expect(try webhook(PlatformWebhookTests.body, "orders/create") == 200)
        #expect(try webhook(#"{"id":820982911946154508,"cancelled_at":"2024-05-19T08:00:00-04:00"}"#, "orders/cancelled") == 200)
        // An order cancelled in ocss (an admin) is: Shopify hears that one.
        let other = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body(platform: "shopify", id: "820982911946154999"))
        let id = try #require(parse(other.body)["order_id"] as? Int)
        #expect(try live.http.send("POST", "/v1/orders/\(id)/cancel", headers: admin).status == 200)
        #expect(eventually(10) { fake.calls.count >= 1 })
        usleep(300_000)
        #expect(fake.calls == [.init(platform: "shopify", name: "cancel", order: "820982911946154999", verified: true)], "\(fake.calls)")
        let dead = parse(try live.http.send("GET", "/v1/outbox?status=dead", headers: admin).body)["messages"] as? [[String: Any]]
        #expect(dead?.isEmpty == true)
    }

    @Test func aRejectedSignatureIsRetriedThenParked() throws {
        let fake = try FakePlatforms()
        defer { fake.server.stop() }
        let live = try Live { c in
            c.outbox.baseDelay = 0.02
            c.outbox.maxDelay = 0.05
            c.outbox.pollInterval = 0.02
            c.outbox.maxAttempts = 3
        }
        defer { live.stop() }
        let shop = try Shop(live: live)
        try live.http.send(
            "PUT", "/v1/platforms/meituan/credentials", headers: admin + json,
            body: #"{"base_url":"\#(fake.base)","app_key":"mt-app","app_secret":"wrong-secret"}"#)
        let r = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body(platform: "meituan", id: "1"))
        let aid = try #require((parse(r.body)["assignment"] as? [String: Any])?["assignment_id"] as? Int)
        try shop.act(aid, "accept", as: "near")
        let parked = eventually {
            let b = try? live.http.send("GET", "/v1/outbox?status=dead", headers: admin)
            return (parse(b?.body ?? "")["messages"] as? [[String: Any]])?.first?["target"] as? String == "meituan"
        }
        #expect(parked)
        #expect(fake.calls.count == 3)
        #expect(fake.calls.allSatisfy { !$0.verified })
    }
}
