import Foundation
import OCSSApp
import OCSSTestSupport
import Testing

/// Issue 21: what staff need to pick (line titles and specs, the buyer's remark, the pickup number) reaches the store's
/// feed, and never makes a retry a different request.
@Suite(.ownThreads) struct StaffFieldsAPITests {
    @Test func titlesAndRemarkReachTheStoreFeedAndStayOutOfTheBodyHash() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 10)])
        let plain = orderBody(id: "st1", lat: 30, lon: 120, lines: [("A", 1)])
        let withStaffFields =
            plain
            .replacingOccurrences(of: #""quantity":1}"#, with: #""quantity":1,"title":"矿泉水","spec":"550ml"}"#)
            .replacingOccurrences(of: #""lines":"#, with: #""remark":"少冰，放前台","pickup_no":"18","delivery_by":"platform_rider","lines":"#)
        let first = try live.api.send("POST", "/v1/orders", headers: admin + json, body: withStaffFields)
        #expect(first.status == 201, "\(first.body)")
        // The same key without them (a platform's retry from before its adapter copied them) is the same request.
        let again = try live.api.send("POST", "/v1/orders", headers: admin + json, body: plain)
        #expect(again.status == 201 && again.headers["idempotent-replay"] == "true" && again.body == first.body)
        // A different order under the key is still a conflict.
        let other = try live.api.send(
            "POST", "/v1/orders", headers: admin + json, body: plain.replacingOccurrences(of: #""quantity":1"#, with: #""quantity":2"#))
        #expect(other.status == 409)
        let token = try live.token(for: "s")
        let feed = try live.api.send("GET", "/v1/stores/s/assignments", headers: [("Authorization", "Bearer \(token)")])
        #expect(feed.status == 200)
        #expect(feed.body.contains(#""title":"矿泉水""#) && feed.body.contains(#""spec":"550ml""#))
        #expect(feed.body.contains(#""remark":"少冰，放前台""#) && feed.body.contains(#""pickup_no":"18""#))
        let bad = try live.api.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "st2", lat: 30, lon: 120, lines: [("A", 1)]).replacingOccurrences(
                of: #""lines":"#, with: #""delivery_by":"drone","lines":"#))
        #expect(bad.status == 400 && bad.body.contains(#""field":"delivery_by""#))
    }
}
