import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// A TOP gateway: checks the request's sign and method, answers the trade like Taobao does
/// (an error_response with HTTP 200 when the sign is wrong).
final class FakeTOP: Responder, @unchecked Sendable {
    static let secret = "top-secret-123"
    private let lock = NSLock()
    private var n = 0
    var server: HTTPServer!
    init() throws { server = try HTTPServer(config: ServerConfig(bindAddress: "127.0.0.1", port: 0), responder: self) }
    var base: String { "http://127.0.0.1:\(server.port)" }
    var calls: Int { lock.withLock { n } }

    func respond(to r: Request, reply: Reply) {
        lock.withLock { n += 1 }
        let p = FakePlatforms.form(r.body)
        let ok =
            r.path == "/router/rest" && p["method"] == "taobao.trade.fullinfo.get" && p["session"] == "sess"
            && p["sign"] == Signatures.top(p, secret: Self.secret, method: p["sign_method"] ?? "md5")
        guard ok, let tid = p["tid"] else {
            return reply.send(Response(status: 200, body: Array(#"{"error_response":{"code":25,"msg":"Invalid signature"}}"#.utf8)))
        }
        let body =
            #"{"trade_fullinfo_get_response":{"trade":{"tid":\#(tid),"tid_str":"\#(tid)","status":"WAIT_SELLER_SEND_GOODS","#
            + #""receiver_name":"王*","receiver_mobile":"138****8000","receiver_state":"河南省","receiver_city":"","receiver_district":"济源市","#
            + #""receiver_address":"天坛路88号","payment":"59.80","post_fee":"0.00","created":"2026-11-26 10:13:00","pay_time":"2026-11-26 10:13:05","#
            + #""orders":{"order":[{"oid":1,"sku_id":4567890,"outer_sku_id":"A","num":2,"price":"29.90"}]}}}}"#
        reply.send(Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(body.utf8)))
    }
}

@Suite(.serialized, .ownThreads) struct TaobaoDetailTests {
    @Test func tmcMessageIsCompletedWithTheSignedDetailCall() throws {
        let top = try FakeTOP()
        defer { top.server.stop() }
        let live = try Live()
        defer { live.stop() }
        try live.http.send(
            "PUT", "/v1/platforms/taobao/credentials", headers: admin + json,
            body: #"{"base_url":"\#(top.base)","app_key":"12345678","app_secret":"\#(FakeTOP.secret)","session":"sess","sign_method":"hmac-sha256"}"#)
        let tmc = #"{"id":7001,"topic":"taobao_trade_TradeBuyerPay","content":"{\"tid\":2411234567890123456,\"payment\":\"59.80\"}"}"#
        #expect(try live.http.send("POST", "/v1/platforms/taobao/webhook", headers: json, body: tmc).status == 401)  // no admin token
        let r = try live.http.send("POST", "/v1/platforms/taobao/webhook", headers: admin + json, body: tmc)
        #expect(r.status == 200, "\(r.body)")
        #expect(r.body == #"{"success":true}"#)
        #expect(top.calls == 1)
        let o = parse(try live.http.send("GET", "/v1/platforms/taobao/orders/2411234567890123456", headers: admin).body)
        // No coordinates from Taobao: the address is geocoded, and with no store anywhere the order is unroutable.
        #expect(o["status"] as? String == "unroutable")
        let order = o["order"] as? [String: Any]
        let shipping = order?["shipping"] as? [String: Any]
        #expect(shipping?["city"] as? String == "济源市")  // county-level city from receiver_district
        #expect(shipping?["address_precision"] as? String == "masked")
        #expect((order?["buyer"] as? [String: Any])?["phone"] == nil)  // masked phone not stored as if real
        #expect((order?["lines"] as? [[String: Any]])?.first?["unit_price_minor"] as? Int == 2990)
        // Redelivery: the same TMC message again changes nothing.
        #expect(try live.http.send("POST", "/v1/platforms/taobao/webhook", headers: admin + json, body: tmc).status == 200)
        // A wrong secret: the gateway refuses, ocss answers 502 so the connector retries.
        try live.http.send(
            "PUT", "/v1/platforms/taobao/credentials", headers: admin + json,
            body: #"{"base_url":"\#(top.base)","app_key":"12345678","app_secret":"wrong","session":"sess"}"#)
        let other = tmc.replacingOccurrences(of: "2411234567890123456", with: "2411234567890123457")
        #expect(try live.http.send("POST", "/v1/platforms/taobao/webhook", headers: admin + json, body: other).status == 502)
    }
}
