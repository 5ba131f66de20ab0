import Foundation
import OCSSApp
import OCSSEngine
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

/// Issue 21: a store marks a SKU out of stock from its list, as an action of its own.
@Suite(.ownThreads) struct StockoutActionTests {
    @Test func aStoresEmptyShelfStopsRoutingThereAndKeepsWhatOrdersHold() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("near", lat: 30, lon: 120)
        try live.putStore("far", lat: 30, lon: 120.2)
        try live.putInventory("near", [("A", 10)])
        try live.putInventory("far", [("A", 10)])
        let first = parse(
            try live.api.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "so1", lat: 30, lon: 120, lines: [("A", 2)])).body)
        #expect((first["assignment"] as? [String: Any])?["store_id"] as? String == "near")
        let near = try live.token(for: "near"), far = try live.token(for: "far")
        let r = try live.api.send("POST", "/v1/stores/near/stockouts", headers: [("Authorization", "Bearer \(near)")] + json, body: #"{"sku":"A"}"#)
        #expect(r.status == 200 && parse(r.body)["on_hand"] as? Int == 2 && parse(r.body)["available"] as? Int == 0, "\(r.body)")
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 0)
        // The next order goes to the far store; the first keeps its two.
        let second = parse(
            try live.api.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "so2", lat: 30, lon: 120, lines: [("A", 1)])).body)
        #expect((second["assignment"] as? [String: Any])?["store_id"] as? String == "far")
        // Survives a restart (it is on disk), and another store's token cannot do it.
        try live.restart()
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 0)
        #expect(
            try live.api.send("POST", "/v1/stores/near/stockouts", headers: [("Authorization", "Bearer \(far)")] + json, body: #"{"sku":"A"}"#).status
                == 403)
        let unknown = try live.api.send("POST", "/v1/stores/near/stockouts", headers: admin + json, body: #"{"sku":"NOPE"}"#)
        #expect(unknown.status == 404)
        #expect(try live.api.send("POST", "/v1/stores/near/stockouts", headers: admin + json, body: #"{"sku":""}"#).status == 400)
    }
}
