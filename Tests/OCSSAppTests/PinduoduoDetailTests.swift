import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// Pinduoduo's POP router: checks type and sign, answers the order (ciphertext phone while unshipped).
final class FakePDD: Responder, @unchecked Sendable {
    static let secret = "pdd-secret-456"
    var server: HTTPServer!
    init() throws { server = try HTTPServer(config: ServerConfig(bindAddress: "127.0.0.1", port: 0), responder: self) }
    var base: String { "http://127.0.0.1:\(server.port)" }

    func respond(to r: Request, reply: Reply) {
        let p = FakePlatforms.form(r.body)
        let ok =
            r.path == "/api/router" && p["type"] == "pdd.order.information.get" && p["access_token"] == "pdd-token"
            && p["sign"] == Signatures.top(p, secret: Self.secret, method: "md5")
        guard ok, let sn = p["order_sn"] else {
            return reply.send(Response(status: 200, body: Array(#"{"error_response":{"error_code":10019,"error_msg":"sign error"}}"#.utf8)))
        }
        let body =
            #"{"order_info_get_response":{"order_info":{"order_sn":"\#(sn)","order_status":1,"refund_status":1,"#
            + #""province":"广东","city":"广州市","town":"海珠区","receiver_address":"新港中路397号","receiver_name":"钱八","#
            + #""receiver_phone":"~AgAAAAFhbWVuZGVk~","item_list":[{"goods_id":1,"sku_id":1234567890123,"outer_id":"A","goods_count":3,"goods_price":11.01}],"#
            + #""pay_amount":33.03,"postage":0,"created_time":"2026-11-26 10:13:00","pay_time":"2026-11-26 10:13:05"}}}"#
        reply.send(Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(body.utf8)))
    }
}

@Suite(.serialized, .ownThreads) struct PinduoduoDetailTests {
    @Test func confirmedTradeIsFetchedSignedAndStored() throws {
        let pdd = try FakePDD()
        defer { pdd.server.stop() }
        let live = try Live()
        defer { live.stop() }
        try live.http.send(
            "PUT", "/v1/platforms/pinduoduo/credentials", headers: admin + json,
            body: #"{"base_url":"\#(pdd.base)","app_key":"pdd-client","app_secret":"\#(FakePDD.secret)","access_token":"pdd-token"}"#)
        let frame =
            #"{"id":9007199254740993,"commandType":"Common","sendTime":1800000000123,"message":{"type":"pdd_trade_TradeConfirmed","mallID":1,"content":"{\"mall_id\":1,\"tid\":\"261126-123456789012345\"}"}}"#
        let r = try live.http.send("POST", "/v1/platforms/pinduoduo/webhook", headers: admin + json, body: frame)
        #expect(r.status == 200, "\(r.body)")
        let o = parse(try live.http.send("GET", "/v1/platforms/pinduoduo/orders/261126-123456789012345", headers: admin).body)
        // No coordinates: the address is geocoded (广东省 ...), and with no store anywhere the order is unroutable.
        #expect(o["status"] as? String == "unroutable")
        let order = o["order"] as? [String: Any]
        let shipping = order?["shipping"] as? [String: Any]
        #expect(shipping?["province"] as? String == "广东省")
        #expect(shipping?["district"] as? String == "海珠区")
        #expect((order?["buyer"] as? [String: Any])?["phone"] == nil)  // ciphertext, never stored as a number
        #expect((order?["lines"] as? [[String: Any]])?.first?["unit_price_minor"] as? Int == 1101)
        #expect(order?["total_minor"] as? Int == 3303)
    }
}
