import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// JD's JOS router and JD Daojia's API: check the sign, answer the order (Daojia's `data` is a JSON
/// string whose `result` is another JSON string).
final class FakeJD: Responder, @unchecked Sendable {
    static let popSecret = "jos-secret", djSecret = "dj-secret"
    var server: HTTPServer!
    init() throws { server = try HTTPServer(config: ServerConfig(bindAddress: "127.0.0.1", port: 0), responder: self) }
    var base: String { "http://127.0.0.1:\(server.port)" }

    func respond(to r: Request, reply: Reply) {
        let p = FakePlatforms.form(r.body)
        func send(_ s: String) { reply.send(Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(s.utf8))) }
        if r.path == "/routerjson", p["method"] == "jingdong.pop.order.get", p["sign"] == Signatures.top(p, secret: Self.popSecret, method: "md5") {
            return send(
                #"{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"orderInfo":{"orderId":"281234567890","orderState":"WAIT_SELLER_STOCK_OUT","#
                    + #""consigneeInfo":{"fullname":"AAS/xyz==","mobile":"136*******5","fullAddress":"AAS/abc==","province":"广东","city":"广州市","county":"海珠区","town":"赤岗街道"},"#
                    + #""itemInfoList":[{"skuId":"100012345678","outerSkuId":"A","itemTotal":"1","jdPrice":"29.90"}],"orderPayment":"29.90","freightPrice":"0.00","#
                    + #""orderStartTime":"2026-11-26 10:13:00","paymentConfirmTime":"2026-11-26 10:13:05"}}}}"#)
        }
        if r.path == "/djapi/order/es/query", p["sign"] == Signatures.top(p, secret: Self.djSecret, method: "md5") {
            let order =
                #"{"resultList":[{"orderId":2212345678901234,"orderStatus":41000,"buyerFullName":"周九","buyerMobile":"13400134000","#
                + #""buyerFullAddress":"浙江省杭州市西湖区文三路398号","buyerProvinceName":"浙江","buyerCityName":"杭州市","buyerCountryName":"西湖区","#
                + #""buyerCoordType":2,"buyerLng":120.0,"buyerLat":30.0,"deliveryStationNoIsv":"near","#
                + #""product":[{"skuId":2001,"skuIdIsv":"A","skuCount":2,"skuStorePrice":2990}],"orderBuyerPayableMoney":5980,"orderFreightMoney":0,"#
                + #""orderStartTime":"2026-11-26 10:13:00"}]}"#
            let inner = #"{"code":"0","result":\#(jsonString(order))}"#
            return send(#"{"code":"0","msg":"操作成功","data":\#(jsonString(inner))}"#)
        }
        send(#"{"code":"10013","msg":"sign error"}"#)
    }

    func jsonString(_ s: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [s], options: []), as: UTF8.self).dropFirst().dropLast().description
    }
}

@Suite(.serialized, .ownThreads) struct JDTests {
    @Test func popIdIsFetchedAndDaojiaPushIsVerifiedFetchedAndRouted() throws {
        let jd = try FakeJD()
        defer { jd.server.stop() }
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        _ = shop
        // The POP order's address (广州 海珠区) is geocoded now: a Guangzhou store keeps it inside a service area.
        try live.putStore("GZ", lat: 23.10, lon: 113.32)
        try live.http.send(
            "PUT", "/v1/platforms/jd/credentials", headers: admin + json,
            body: #"{"base_url":"\#(jd.base)","app_key":"jos-key","app_secret":"\#(FakeJD.popSecret)","access_token":"jos-token"}"#)
        try live.http.send(
            "PUT", "/v1/platforms/jd_daojia/credentials", headers: admin + json,
            body: #"{"base_url":"\#(jd.base)","app_key":"dj-key","app_secret":"\#(FakeJD.djSecret)","access_token":"dj-token"}"#)
        // POP: the connector forwards the id with the admin token.
        #expect(try live.http.send("POST", "/v1/platforms/jd/webhook", headers: json, body: #"{"orderId":"281234567890"}"#).status == 401)
        #expect(try live.http.send("POST", "/v1/platforms/jd/webhook", headers: admin + json, body: #"{"orderId":"281234567890"}"#).status == 200)
        let pop = parse(try live.http.send("GET", "/v1/platforms/jd/orders/281234567890", headers: admin).body)
        let popOrder = pop["order"] as? [String: Any]
        #expect((popOrder?["shipping"] as? [String: Any])?["text"] as? String == "广东省广州市海珠区赤岗街道")  // ciphertext replaced by admin fields
        #expect((popOrder?["buyer"] as? [String: Any])?["phone"] == nil && (popOrder?["buyer"] as? [String: Any])?["name"] == nil)
        #expect(popOrder?["channel"] as? String == "jd_pop")
        // Daojia: a signed form push carrying only the id; ocss fetches and routes (GCJ-02 point given).
        // The signed timestamp is now, in Beijing time: further than 10 minutes off is refused as a replay.
        let beijing = DateFormatter()
        beijing.dateFormat = "yyyy-MM-dd HH:mm:ss"
        beijing.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        var form: [String: String] = [
            "token": "dj-token", "app_key": "dj-key", "timestamp": beijing.string(from: Date()), "format": "json", "v": "1.0",
            "jd_param_json": #"{"billId":"2212345678901234","statusId":"32000","timestamp":"2026-11-26 10:13:00"}"#,
        ]
        form["sign"] = Signatures.top(form, secret: FakeJD.djSecret, method: "md5")
        let body = form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        let r = try live.http.send(
            "POST", "/v1/platforms/jd_daojia/webhook", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: body)
        #expect(r.status == 200, "\(r.body)")
        #expect(r.body == #"{"code":"0","msg":"success","data":""}"#)
        let dj = parse(try live.http.send("GET", "/v1/platforms/jd/orders/2212345678901234", headers: admin).body)
        #expect(dj["status"] as? String == "assigned")
        #expect(((dj["order"] as? [String: Any])?["lines"] as? [[String: Any]])?.first?["unit_price_minor"] as? Int == 2990)
        // The connector may deliver the order.es.query answer itself, with the admin token.
        let order =
            #"{"resultList":[{"orderId":2212345678901235,"orderStatus":32000,"buyerProvinceName":"浙江","buyerCityName":"杭州市","#
            + #""buyerCoordType":1,"buyerLng":120.0,"buyerLat":30.0,"product":[{"skuId":2001,"skuIdIsv":"A","skuCount":1,"skuStorePrice":2990}]}]}"#
        let answer = #"{"code":"0","data":\#(jd.jsonString(#"{"code":"0","result":\#(jd.jsonString(order))}"#))}"#
        #expect(try live.http.send("POST", "/v1/platforms/jd_daojia/webhook", headers: json, body: answer).status == 401)
        #expect(try live.http.send("POST", "/v1/platforms/jd_daojia/webhook", headers: admin + json, body: answer).status == 200)
        #expect(parse(try live.http.send("GET", "/v1/platforms/jd/orders/2212345678901235", headers: admin).body)["status"] as? String == "assigned")
        // A forged push: 401.
        let forged = body.replacingOccurrences(of: "32000", with: "41000")
        #expect(
            try live.http.send(
                "POST", "/v1/platforms/jd_daojia/webhook", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: forged
            ).status == 401)
    }
}
