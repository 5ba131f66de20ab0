import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// ebai's API: checks the cmd and sign of order.get and answers the order (fen, coord_amap in GCJ-02).
final class FakeEbai: Responder, @unchecked Sendable {
    static let secret = "ebai-secret"
    var server: HTTPServer!
    init() throws { server = try HTTPServer(config: ServerConfig(bindAddress: "127.0.0.1", port: 0), responder: self) }
    var base: String { "http://127.0.0.1:\(server.port)" }

    /// The ebai sign, written out here from FORMATS.md (not through the adapter).
    static func sign(_ p: [String: String]) -> String {
        var q = p.filter { $0.key != "sign" }
        q["secret"] = secret
        let joined = q.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        return Crypto.hex(Crypto.md5(Array(joined.utf8))).uppercased()
    }

    func respond(to r: Request, reply: Reply) {
        let p = FakePlatforms.form(r.body)
        guard r.path == "/api/", p["cmd"] == "order.get", p["sign"] == Self.sign(p) else {
            return reply.send(Response(status: 200, body: Array(#"{"body":{"errno":20253,"error":"sign error"}}"#.utf8)))
        }
        let body =
            #"{"cmd":"resp.order.get","body":{"errno":0,"error":"success","data":{"shop":{"id":"near","baidu_shop_id":"3200"},"#
            + #""order":{"order_id":"15800000000000000001","status":1,"create_time":1800000000,"total_fee":6480,"user_fee":5980,"send_fee":500},"#
            + #""user":{"name":"吴十","phone":"13300133000","province":"浙江","city":"杭州市","district":"西湖区","address":"文三路398号","#
            + #""coord":{"longitude":120.0065,"latitude":30.006},"coord_amap":{"longitude":120.0046,"latitude":29.9976}},"#
            + #""products":[[{"baidu_product_id":"9001","custom_sku_id":"B","product_amount":1,"product_price":2990}],[{"baidu_product_id":"9002","custom_sku_id":"A","product_amount":1,"product_price":2990}]]}}}"#
        reply.send(Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(body.utf8)))
    }
}

@Suite(.serialized, .ownThreads) struct ElemeRetailTests {
    @Test func signedPushFetchesRoutesAndTheStoreSeesIt() throws {
        let ebai = try FakeEbai()
        defer { ebai.server.stop() }
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        try live.http.send(
            "PUT", "/v1/platforms/eleme_retail/credentials", headers: admin + json,
            body: #"{"base_url":"\#(ebai.base)","app_key":"ebai-src","app_secret":"\#(FakeEbai.secret)"}"#)
        var form: [String: String] = [
            "cmd": "order.create", "timestamp": String(Int(Date().timeIntervalSince1970)), "version": "3", "ticket": "T-1", "source": "ebai-src",
            "body": #"{"order_id":"15800000000000000001"}"#,
        ]
        form["sign"] = FakeEbai.sign(form)
        // Keys sorted: a Dictionary's order changes from run to run, and the truncation below must cut the same bytes.
        let body = form.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        let r = try live.http.send(
            "POST", "/v1/platforms/eleme_retail/webhook", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: body)
        #expect(r.status == 200, "\(r.body)")
        // The reply is ebai's signed envelope.
        let env = parse(r.body).mapValues { "\($0)" }
        #expect(env["cmd"] == "resp.order.create" && env["sign"] == FakeEbai.sign(env))
        // Routed from the GCJ-02 point (coord_amap), fen kept; the store's feed shows it.
        let o = parse(try live.http.send("GET", "/v1/platforms/eleme/orders/15800000000000000001", headers: admin).body)
        #expect(o["status"] as? String == "assigned")
        #expect(
            ((o["order"] as? [String: Any])?["shipping"] as? [String: Any])?["coordinates"].flatMap { ($0 as? [String: Any])?["crs"] as? String }
                == "GCJ-02")
        let store = try #require((o["assignment"] as? [String: Any])?["store_id"] as? String)
        let feed = parse(
            try live.http.send("GET", "/v1/stores/\(store)/assignments?after=0", headers: [("Authorization", "Bearer \(shop.tokens[store]!)")]).body)
        #expect((feed["assignments"] as? [[String: Any]])?.contains { $0["order_id"] as? Int == o["order_id"] as? Int } == true)
        // A truncated or wrongly typed delivery.
        let cut = try live.http.send(
            "POST", "/v1/platforms/eleme_retail/webhook", headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: String(body.prefix(40)))
        #expect(cut.status == 401 || cut.status == 400, "\(cut.status) \(cut.body)")
    }
}
