import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSTestSupport
import Testing

/// Issue 6 end to end: policy versions, store rules, fallbacks, safety stock, multi-part
/// snapshots, shortfalls, and the stock invariants under random traffic. Real server, real SQLite.
@Suite(.serialized, .ownThreads) struct RoutingPolicyTests {
    func order(_ live: Live, _ id: String, lat: Double = 30, lon: Double = 120, _ lines: [(String, Int)]) throws -> [String: Any] {
        let r = try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: id, lat: lat, lon: lon, lines: lines))
        #expect(r.status == 201, "\(r.body)")
        return parse(r.body)
    }

    func storeOf(_ o: [String: Any]) -> String? { (o["assignment"] as? [String: Any])?["store_id"] as? String }
    func explanation(_ o: [String: Any]) -> [String: Any] { o["explanation"] as? [String: Any] ?? [:] }

    @discardableResult
    func putStore(_ live: Live, _ id: String, lat: Double, lon: Double, extra: String) throws -> RawHTTP.Reply {
        try live.http.send("PUT", "/v1/stores/\(id)", headers: admin + json, body: #"{"name":"\#(id)","lat":\#(lat),"lon":\#(lon),\#(extra)}"#)
    }

    @Test func policyVersionsAreStoredUsedAndRecorded() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("near", lat: 30, lon: 120.01)
        try live.putStore("far", lat: 30, lon: 120.05)
        try live.putInventory("near", [("A", 5)])
        try live.putInventory("far", [("A", 5)])
        let before = parse(try live.http.send("GET", "/v1/policy", headers: admin).body)
        #expect(before["version"] as? Int == 0)
        #expect(explanation(try order(live, "o1", [("A", 1)]))["policy_version"] as? Int == 0)
        // A reach of 500 m: "near" (~960 m) is out of reach; no location covers the customer, so intake refuses.
        let put = try live.http.send("PUT", "/v1/policy", headers: admin + json, body: #"{"reach_m":500,"warehouse_fallback":false}"#)
        #expect(put.status == 201)
        #expect(parse(put.body)["version"] as? Int == 1)
        let refused = try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "o2", lat: 30, lon: 120, lines: [("A", 1)]))
        #expect(refused.status == 422 && refused.body.contains("outside_service_area"))
        // Version 2 widens it again; the decision says which version decided.
        #expect(try live.http.send("PUT", "/v1/policy", headers: admin + json, body: #"{"reach_m":20000}"#).status == 201)
        let o3 = try order(live, "o3", [("A", 1)])
        #expect(storeOf(o3) == "near")
        #expect(explanation(o3)["policy_version"] as? Int == 2)
        // Bad documents name their field; the policy in force is unchanged.
        let bad = try live.http.send("PUT", "/v1/policy", headers: admin + json, body: #"{"split":{"max_parts":1}}"#)
        #expect(bad.status == 400 && bad.body.contains(#""field":"split.max_parts""#))
        let badType = try live.http.send("PUT", "/v1/policy", headers: admin + json, body: #"{"ranking":{"mode":"cheapest"}}"#)
        #expect(badType.status == 400 && badType.body.contains("ranking"))
        #expect(try live.http.send("PUT", "/v1/policy", headers: [("Authorization", "Bearer nope")] + json, body: "{}").status == 401)
        // The version and document survive a restart.
        try live.restart()
        let after = parse(try live.http.send("GET", "/v1/policy", headers: admin).body)
        #expect(after["version"] as? Int == 2)
        #expect((after["policy"] as? [String: Any])?["reach_m"] as? Double == 20_000)
    }

    @Test func storeRulesCapacityHoursAreaAndWarehouseFallback() throws {
        let live = try Live()
        defer { live.stop() }
        // "cap" next door takes one order a day; "shut" is closed by its hours all day every day but Sunday
        // (and never within the window); "wh" is a warehouse 30 km away; "open" 2 km away.
        #expect(try putStore(live, "cap", lat: 30, lon: 120.001, extra: #""rules":{"daily_capacity":1}"#).status == 201)
        let shut = try putStore(live, "shut", lat: 30, lon: 120.002, extra: #""rules":{"hours":{"sun":["10:00-10:01"]},"timezone":"Asia/Shanghai"}"#)
        #expect(shut.status == 201)
        #expect((parse(shut.body)["rules"] as? [String: Any])?["hours"] != nil)
        try putStore(live, "wh", lat: 30, lon: 120.3, extra: #""kind":"warehouse""#)
        try live.putStore("open", lat: 30, lon: 120.02)
        for s in ["cap", "shut", "wh"] { try live.putInventory(s, [("A", 10), ("W", 10)]) }
        try live.putInventory("open", [("A", 10)])
        #expect(storeOf(try order(live, "c1", [("A", 1)])) == "cap")
        let c2 = try order(live, "c2", [("A", 1)])
        #expect(storeOf(c2) == "open")
        let reasons = (explanation(c2)["skipped"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons.contains("capacity_full"))
        #expect(reasons.contains("closed_hours") || Calendar.current.component(.weekday, from: Date()) == 1)
        // W is only at the warehouse (and at "cap", which is full, and "shut", which is closed): the warehouse serves.
        let w = try order(live, "w1", [("W", 1)])
        #expect(storeOf(w) == "wh")
        #expect(explanation(w)["fallback"] as? String == "warehouse")
        // A service area that does not contain the customer: "open" no longer delivers there.
        let square = #""rules":{"service_area":{"type":"Polygon","coordinates":[[[121,31],[121.1,31],[121.1,31.1],[121,31.1],[121,31]]]}}"#
        #expect(try putStore(live, "open", lat: 30, lon: 120.02, extra: square).status == 200)
        let o = try order(live, "a2", [("A", 1)])
        #expect(storeOf(o) == "wh")
        // Bad rules name the field.
        let tz = try putStore(live, "x", lat: 30, lon: 120, extra: #""rules":{"timezone":"Mars/Olympus"}"#)
        #expect(tz.status == 400 && tz.body.contains(#""field":"rules.timezone""#))
        let hours = try putStore(live, "x", lat: 30, lon: 120, extra: #""rules":{"hours":{"mon":["9-5"]}}"#)
        #expect(hours.status == 400 && hours.body.contains("rules"))
        // ... and say what they expect.
        #expect(hours.body.contains(#""field":"rules.hours.mon""#) && hours.body.contains("HH:MM-HH:MM"), "\(hours.body)")
        let area = try putStore(live, "x", lat: 30, lon: 120, extra: #""rules":{"service_area":{"type":"Point","coordinates":[1,2]}}"#)
        #expect(area.status == 400 && area.body.contains("rules"))
        #expect(area.body.contains("GeoJSON"), "\(area.body)")
        // Capacity counts survive a restart (they come from today's assignments).
        try live.restart()
        #expect(storeOf(try order(live, "c3", [("A", 1)])) != "cap")
    }

    @Test func splitShipmentAtIntakeMakesOneOrderAndAssignmentPerLocation() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("x", lat: 30, lon: 120.01)
        try live.putStore("y", lat: 30, lon: 120.02)
        try live.putInventory("x", [("X", 2)])
        try live.putInventory("y", [("Y", 2)])
        let o = try order(live, "s1", [("X", 1), ("Y", 2)])
        #expect(o["status"] as? String == "assigned")
        #expect(storeOf(o) == "x")
        let e = explanation(o)
        #expect(e["fallback"] as? String == "split")
        #expect((e["summary"] as? String)?.contains("split over 2 locations") == true)
        let parts = e["parts"] as? [[String: Any]] ?? []
        #expect(parts.map { $0["store_id"] as? String } == ["x", "y"])
        let child = try #require(parts.last?["order_id"] as? Int)
        let got = parse(try live.http.send("GET", "/v1/orders/\(child)", headers: admin).body)
        #expect(got["status"] as? String == "assigned")
        #expect(live.service.engine.available(storeID: "x", sku: "X") == 1)
        #expect(live.service.engine.available(storeID: "y", sku: "Y") == 0)
        // Store y sees its part in its feed.
        let token = try live.token(for: "y")
        let feed = try live.http.send("GET", "/v1/stores/y/assignments", headers: [("Authorization", "Bearer \(token)")])
        #expect(feed.body.contains(#""order_id":\#(child)"#))
        // A retry answers the same, and creates nothing new.
        let again = try live.http.send(
            "POST", "/v1/orders", headers: admin + json, body: orderBody(id: "s1", lat: 30, lon: 120, lines: [("X", 1), ("Y", 2)]))
        #expect(again.status == 201 && again.headers["idempotent-replay"] == "true")
        #expect(live.service.engine.available(storeID: "x", sku: "X") == 1)
        #expect(try live.service.engine.stockViolation() == nil)
        try live.restart()
        #expect(try live.service.engine.stockViolation() == nil)
    }

    @Test func safetyStockIsHeldBack() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 3), ("B", 3)])
        let put = try live.http.send(
            "PUT", "/v1/inventory/safety-stock", headers: admin + json,
            body: #"{"default":1,"per_sku":{"A":2},"per_store":{"s":0}}"#)
        #expect(put.status == 200)
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 1)
        #expect(live.service.engine.available(storeID: "s", sku: "B") == 3)  // per store 0 beats the default
        #expect(try order(live, "a2", [("A", 2)])["status"] as? String == "unroutable")
        #expect(try order(live, "a1", [("A", 1)])["status"] as? String == "assigned")
        let unknown = try live.http.send("PUT", "/v1/inventory/safety-stock", headers: admin + json, body: #"{"per_store":{"nope":1}}"#)
        #expect(unknown.status == 400 && unknown.body.contains(#""field":"per_store.nope""#))
        try live.restart()
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 0)
        let got = parse(try live.http.send("GET", "/v1/inventory/safety-stock", headers: admin).body)
        #expect((got["per_sku"] as? [String: Any])?["A"] as? Int == 2)
    }

    /// Setting a store's stock by hand below what it has promised moves orders as a snapshot does, instead of
    /// leaving more reserved than on hand.
    @Test func storeInventoryBelowReservedReroutes() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putStore("t", lat: 30, lon: 120.05)
        try live.putInventory("s", [("A", 3)])
        try live.putInventory("t", [("A", 5)])
        let older = try order(live, "o1", [("A", 1)])
        let newer = try order(live, "o2", [("A", 2)])
        #expect(storeOf(older) == "s" && storeOf(newer) == "s")
        #expect(try live.putInventory("s", [("A", 1)]).status == 200)
        // The newest order moves; the older one still fits.
        #expect(eventually { live.service.engine.available(storeID: "t", sku: "A") == 3 })
        #expect(try eventually { try live.service.engine.stockViolation() == nil })
        let at = { (o: [String: Any]) throws -> String? in
            let state = parse(try live.http.send("GET", "/v1/orders/\(o["order_id"] as? Int ?? 0)", headers: admin).body)
            return (state["assignment"] as? [String: Any])?["store_id"] as? String
        }
        #expect(try at(newer) == "t")
        #expect(try at(older) == "s")
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 0)
    }

    @Test func multiPartSnapshotsAndShortfallsReroute() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putStore("t", lat: 30, lon: 120.05)
        try live.putInventory("s", [("A", 2), ("B", 5)])
        try live.putInventory("t", [("A", 5)])
        let o = try order(live, "r", [("A", 2)])
        #expect(storeOf(o) == "s")
        func part(_ n: Int, final: Bool, _ rows: String, version: Int = 10) throws -> RawHTTP.Reply {
            try live.http.send(
                "PUT", "/v1/inventory/snapshot", headers: admin + json,
                body: #"{"version":\#(version),"store_id":"s","part":\#(n),"final":\#(final),"rows":\#(rows)}"#)
        }
        // Part 1 before part 0: out of order.
        #expect(try part(1, final: true, "[]").status == 409)
        let p0 = parse(try part(0, final: false, #"[{"sku":"A","qty":1}]"#).body)
        #expect(p0["complete"] as? Bool == false && p0["next_part"] as? Int == 1)
        // B is not zeroed until the final part, and not at all because part 1 lists it.
        #expect(live.service.engine.available(storeID: "s", sku: "B") == 5)
        let p1 = parse(try part(1, final: true, #"[{"sku":"B","qty":4}]"#).body)
        #expect(p1["complete"] as? Bool == true)
        // A: on hand 1 < reserved 2: the order moves to t.
        #expect(p1["rerouted_orders"] as? Int == 1)
        #expect(eventually { live.service.engine.available(storeID: "t", sku: "A") == 3 })
        #expect(live.service.engine.available(storeID: "s", sku: "B") == 4)
        #expect(try eventually { try live.service.engine.stockViolation() == nil })
        let id = try #require(o["order_id"] as? Int)
        let state = parse(try live.http.send("GET", "/v1/orders/\(id)", headers: admin).body)
        #expect((state["assignment"] as? [String: Any])?["store_id"] as? String == "t")
        // The same version again: stale.
        #expect(parse(try part(0, final: true, "[]").body)["applied"] as? Bool == false)
    }

    /// Property: random orders, cancels, snapshots and deltas never leave reserved stock negative,
    /// above on hand, different from what active orders hold, or different between memory and disk.
    @Test(arguments: [UInt64(7), 8])
    func noSequenceBreaksTheStockInvariants(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let live = try Live()
        defer { live.stop() }
        let stores = ["a", "b", "c"]
        for (i, s) in stores.enumerated() { try live.putStore(s, lat: 30, lon: 120 + Double(i) * 0.01) }
        for s in stores { try live.putInventory(s, [("A", 3), ("B", 2)]) }
        var orders: [Int] = []
        var version = 1
        for step in 0..<60 {
            let r = Int.random(in: 0..<10, using: &rng)
            if r < 5 {
                let lines = [("A", Int.random(in: 1...2, using: &rng))] + (Bool.random(using: &rng) ? [("B", 1)] : [])
                let o = try order(live, "p\(seed)-\(step)", lat: 30, lon: 120 + Double.random(in: 0...0.02, using: &rng), lines)
                if let id = o["order_id"] as? Int { orders.append(id) }
            } else if r < 7, let id = orders.randomElement(using: &rng) {
                _ = try live.http.send("POST", "/v1/orders/\(id)/cancel", headers: admin + json, body: "{}")
            } else if r < 9 {
                version += 1
                let s = stores.randomElement(using: &rng)!
                let rows = #"[{"sku":"A","qty":\#(Int.random(in: 0...4, using: &rng))},{"sku":"B","qty":\#(Int.random(in: 0...3, using: &rng))}]"#
                _ = try live.http.send(
                    "PUT", "/v1/inventory/snapshot", headers: admin + json,
                    body: #"{"version":\#(version),"store_id":"\#(s)","rows":\#(rows)}"#)
            } else {
                let s = stores.randomElement(using: &rng)!
                _ = try live.http.send(
                    "POST", "/v1/inventory/deltas", headers: admin + json,
                    body: #"{"deltas":[{"id":"d\#(seed)-\#(step)","store_id":"\#(s)","sku":"A","change":\#(Int.random(in: -3...3, using: &rng))}]}"#)
            }
            var last: String?
            let ok = try eventually(5) {
                last = try live.service.engine.stockViolation()
                return last == nil
            }
            #expect(ok, "step \(step): \(last ?? "")")
            if !ok { return }
        }
    }
}
