import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSStore
import OCSSTestSupport
import Synchronization
import Testing

/// The merchant's endpoint: records each delivery with a verified signature, fails the first
/// `failFirst` requests with 500.
final class FakeWebhook: Responder, @unchecked Sendable {
    struct Delivery { var eventID: String; var body: [String: Any]; var signatureOK: Bool }
    let secret: String
    let failFirst: Int
    private let lock = NSLock()
    private var seen = 0
    private var ok: [Delivery] = []
    var server: HTTPServer!

    init(secret: String, failFirst: Int = 0) throws {
        self.secret = secret
        self.failFirst = failFirst
        server = try HTTPServer(config: ServerConfig(bindAddress: "127.0.0.1", port: 0), responder: self)
    }

    var url: String { "http://127.0.0.1:\(server.port)/hooks/ocss" }
    var deliveries: [Delivery] { lock.withLock { ok } }
    var attempts: Int { lock.withLock { seen } }

    func respond(to request: Request, reply: Reply) {
        let n = lock.withLock {
            seen += 1; return seen
        }
        if n <= failFirst {
            reply.send(Response(status: 500))
            return
        }
        let ts = request.header("x-ocss-timestamp") ?? ""
        let want = "sha256=" + OutboxDispatcher.signature(secret: secret, timestamp: ts, body: request.body)
        let d = Delivery(
            eventID: request.header("x-ocss-event-id") ?? "", body: parse(String(decoding: request.body, as: UTF8.self)),
            signatureOK: request.header("x-ocss-signature") == want)
        lock.withLock { ok.append(d) }
        reply.send(Response(status: 200))
    }
}

/// A world with three stores in a row east of the customer and a store token each.
struct Shop {
    let live: Live
    var tokens: [String: String] = [:]

    init(live: Live) throws {
        self.live = live
        try live.putStore("near", lat: 30.00, lon: 120.00)
        try live.putStore("mid", lat: 30.00, lon: 120.05)
        try live.putStore("far", lat: 30.00, lon: 120.10)
        for id in ["near", "mid", "far"] {
            try live.putInventory(id, [("A", 5), ("B", 5)])
            tokens[id] = try live.token(for: id)
        }
    }

    func order(_ id: String, lines: [(String, Int)] = [("A", 1)]) throws -> (order: Int, assignment: Int, store: String) {
        let r = try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: id, lat: 30, lon: 119.99, lines: lines))
        let o = parse(r.body)
        let a = o["assignment"] as? [String: Any] ?? [:]
        return (o["order_id"] as? Int ?? -1, a["assignment_id"] as? Int ?? -1, a["store_id"] as? String ?? "")
    }

    @discardableResult
    func act(_ assignment: Int, _ action: String, as store: String, body: String? = nil) throws -> RawHTTP.Reply {
        try live.http.send(
            "POST", "/v1/assignments/\(assignment)/\(action)",
            headers: [("Authorization", "Bearer \(tokens[store]!)")] + (body == nil ? [] : json), body: body)
    }

    func status(_ order: Int) throws -> [String: Any] {
        parse(try live.http.send("GET", "/v1/orders/\(order)", headers: admin).body)
    }
}

@Suite(.serialized, .ownThreads) struct WorkflowTests {
    /// Three stores in a row, a merchant webhook that records what it hears, and an outbox that sends at once.
    static func shopWithWebhook() throws -> (hook: FakeWebhook, live: Live, shop: Shop) {
        let hook = try FakeWebhook(secret: "s3cret-s3cret-s3cret")
        let live = try Live {
            $0.outbox.baseDelay = 0.05; $0.outbox.pollInterval = 0.05
        }
        let shop = try Shop(live: live)
        #expect(
            try live.api.send("PUT", "/v1/webhook", headers: admin + json, body: #"{"url":"\#(hook.url)","secret":"\#(hook.secret)"}"#).status == 200
        )
        return (hook, live, shop)
    }

    @Test func fullLifeIsVisibleToThePlatformInOrderAndSigned() throws {
        let (hook, live, shop) = try Self.shopWithWebhook()
        defer {
            hook.server.stop()
            live.stop()
        }
        let o = try shop.order("life")
        #expect(o.store == "near")
        for a in ["accept", "pick", "pack"] { #expect(try shop.act(o.assignment, a, as: "near").status == 200) }
        let shipped = try shop.act(o.assignment, "ship", as: "near", body: #"{"carrier":"SF","tracking_number":"SF1234567890"}"#)
        #expect(shipped.status == 200)
        #expect((parse(shipped.body)["tracking"] as? [String: Any])?["number"] as? String == "SF1234567890")
        // Goods left the store: on-hand and reservation both dropped.
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 4)
        #expect(try shop.act(o.assignment, "deliver", as: "near").status == 200)
        let three = eventually { hook.deliveries.count == 3 }
        #expect(three)
        let got = hook.deliveries
        #expect(got.map { $0.body["status"] as? String } == ["accepted", "shipped", "delivered"])
        #expect(got.allSatisfy { $0.signatureOK })
        #expect(got[1].body["tracking_number"] as? String == "SF1234567890")
        #expect(got.map(\.eventID) == ["ocss-\(o.order)-accepted", "ocss-\(o.order)-shipped", "ocss-\(o.order)-delivered"])
        // The platform can poll too.
        let polled = try live.http.send("GET", "/v1/platforms/direct/orders/life", headers: admin)
        #expect(parse(polled.body)["status"] as? String == "delivered")
        let events = (parse(polled.body)["events"] as? [[String: Any]])?.map { $0["type"] as? String } ?? []
        #expect(events == ["received", "routed", "accepted", "picking", "packed", "shipped", "delivered"])
    }

    /// Issue 21: a rider's order and an in-store pickup leave the store without a tracking number; `ready` keeps the
    /// stock reserved, the way out turns it into a sale, and the webhook hears each step.
    @Test func riderHandOverAndInStorePickup() throws {
        let (hook, live, shop) = try Self.shopWithWebhook()
        defer {
            hook.server.stop()
            live.stop()
        }
        let rider = try shop.order("rider")
        for a in ["accept", "ready"] { #expect(try shop.act(rider.assignment, a, as: "near").status == 200) }
        #expect(try shop.act(rider.assignment, "ready", as: "near").status == 200)  // a repeat changes nothing
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 4)  // still reserved
        #expect(try shop.act(rider.assignment, "pickup", as: "mid").status == 403)
        #expect(parse(try shop.act(rider.assignment, "hand_over", as: "near").body)["status"] as? String == "handed_over")
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 4)  // sold, not given back
        #expect(try shop.act(rider.assignment, "cancel", as: "near").status != 200)
        #expect(try shop.act(rider.assignment, "deliver", as: "near").status == 200)
        let pickup = try shop.order("pickup")
        #expect(try shop.act(pickup.assignment, "ready", as: "near").status == 409)  // not accepted yet
        #expect(try shop.act(pickup.assignment, "accept", as: "near").status == 200)
        #expect(parse(try shop.act(pickup.assignment, "pickup", as: "near").body)["status"] as? String == "picked_up")
        #expect(try shop.act(pickup.assignment, "deliver", as: "near").status == 409)  // collected is final
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 3)
        let all = eventually { hook.deliveries.count == 6 }
        #expect(all, "\(hook.deliveries.map { $0.body["status"] as? String ?? "" })")
        // In order for each order (the two orders' messages may interleave).
        let ids = hook.deliveries.map(\.eventID)
        #expect(
            ids.filter { $0.hasPrefix("ocss-\(rider.order)-") }
                == ["accepted", "ready", "handed_over", "delivered"].map { "ocss-\(rider.order)-\($0)" })
        #expect(ids.filter { $0.hasPrefix("ocss-\(pickup.order)-") } == ["accepted", "picked_up"].map { "ocss-\(pickup.order)-\($0)" })
    }

    @Test func rejectionReroutesToTheNextStoreAndOutOfStockSticks() throws {
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        let o = try shop.order("rej")
        #expect(o.store == "near")
        let r = try shop.act(o.assignment, "reject", as: "near", body: #"{"reason":"out_of_stock","skus":["A"]}"#)
        #expect(r.status == 200)
        let a = parse(r.body)["assignment"] as? [String: Any]
        #expect(a?["store_id"] as? String == "mid")
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 0)  // zeroed until the next inventory update
        #expect(live.service.engine.available(storeID: "near", sku: "B") == 5)
        #expect(live.service.engine.available(storeID: "mid", sku: "A") == 4)
        // The next order for A skips "near" without asking it.
        #expect(try shop.order("rej2").store == "mid")
        // The new store sees it in its feed; the old assignment is dead for the old store.
        let feed = try live.http.send("GET", "/v1/stores/mid/assignments", headers: [("Authorization", "Bearer \(shop.tokens["mid"]!)")])
        #expect((parse(feed.body)["assignments"] as? [[String: Any]])?.first?["order_id"] as? Int == o.order)
        #expect(try shop.act(o.assignment, "accept", as: "near").status == 409)
        // Rejected by every store: unroutable, nothing reserved.
        let midAssignment = a?["assignment_id"] as? Int ?? -1
        let r2 = try shop.act(midAssignment, "reject", as: "mid", body: #"{"reason":"too_busy"}"#)
        let farAssignment = (parse(r2.body)["assignment"] as? [String: Any])?["assignment_id"] as? Int ?? -1
        let r3 = try shop.act(farAssignment, "reject", as: "far", body: #"{"reason":"closed"}"#)
        #expect(parse(r3.body)["status"] as? String == "unroutable")
        // Issue 22.8: the queue said "nearest eligible store with every line in stock: near" with no reason. The
        // order's explanation is its latest decision, in the queue and on the order.
        let queue = parse(try live.http.send("GET", "/v1/orders?status=unroutable", headers: admin).body)["orders"] as? [[String: Any]]
        let row = queue?.first { $0["order_id"] as? Int == o.order }
        #expect(row?["unroutable_reason"] as? String == "no_eligible_store_in_reach", "\(String(describing: row))")
        #expect((row?["summary"] as? String)?.hasPrefix("unroutable: no_eligible_store_in_reach") == true, "\(String(describing: row))")
        let explanation = try shop.status(o.order)["explanation"] as? [String: Any]
        #expect((explanation?["coordinates"] as? String)?.contains("far gave it back (closed)") == true, "\(String(describing: explanation))")
        #expect(live.service.engine.available(storeID: "far", sku: "A") == 5)
        #expect(live.service.engine.available(storeID: "mid", sku: "A") == 4)  // only rej2 holds one
    }

    @Test func illegalAndRepeatedActionsAndAuth() throws {
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        let o = try shop.order("ill")
        let pick = try shop.act(o.assignment, "pick", as: "near")
        #expect(pick.status == 409)
        #expect(parse(pick.body)["current_status"] as? String == "assigned")
        #expect(try shop.act(o.assignment, "accept", as: "near").status == 200)
        let again = try shop.act(o.assignment, "accept", as: "near")
        #expect(again.status == 200)
        #expect(parse(again.body)["status"] as? String == "accepted")
        #expect(try shop.act(o.assignment, "accept", as: "mid").status == 403)
        #expect(try shop.act(o.assignment, "fly", as: "near").status == 404)
        #expect(try shop.act(o.assignment, "ship", as: "near", body: #"{"carrier":"SF"}"#).status == 400)
        #expect(try shop.act(o.assignment, "reject", as: "near", body: #"{"reason":"bored"}"#).status == 400)
        #expect(try shop.act(999, "accept", as: "near").status == 404)
        #expect(try live.http.send("POST", "/v1/assignments/\(o.assignment)/accept").status == 401)
    }

    @Test func cancelAfterAcceptanceReleasesStockAndShippedCannotBeCancelled() throws {
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        let o = try shop.order("can", lines: [("A", 2), ("B", 1)])
        #expect(try shop.act(o.assignment, "accept", as: "near").status == 200)
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 3)
        let c = try live.http.send("POST", "/v1/orders/\(o.order)/cancel", headers: admin + json, body: #"{"note":"buyer asked"}"#)
        #expect(c.status == 200)
        #expect(parse(c.body)["status"] as? String == "cancelled")
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 5)
        #expect(live.service.engine.available(storeID: "near", sku: "B") == 5)
        #expect(try live.http.send("POST", "/v1/orders/\(o.order)/cancel", headers: admin).status == 200)  // idempotent
        let s = try shop.order("shp")
        try shop.act(s.assignment, "accept", as: "near")
        let shipped = try shop.act(s.assignment, "ship", as: "near", body: #"{"carrier":"SF","tracking_number":"X1"}"#)
        #expect(shipped.status == 409, "\(shipped.body)")  // accepted -> ship skips picking: illegal
        try shop.act(s.assignment, "pick", as: "near")
        #expect(try shop.act(s.assignment, "ship", as: "near", body: #"{"carrier":"SF","tracking_number":"X1"}"#).status == 200)
        let late = try live.http.send("POST", "/v1/orders/\(s.order)/cancel", headers: admin)
        #expect(late.status == 409)
        #expect(parse(late.body)["current_status"] as? String == "shipped")
    }

    /// A store learns from its feed that an order it holds was taken away or cancelled, not only that one arrived:
    /// otherwise staff go on picking an order nobody will collect.
    @Test func storeFeedCarriesReroutesAndCancellations() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock) { $0.timers = false }
        defer { live.stop() }
        let shop = try Shop(live: live)
        func feed(_ store: String, after: String, wait: Int = 0) throws -> (items: [(Int, String, String?)], cursor: String) {
            let r = try live.http.send(
                "GET", "/v1/stores/\(store)/assignments?after=\(after)&wait=\(wait)",
                headers: [("Authorization", "Bearer \(shop.tokens[store]!)")])
            #expect(r.status == 200)
            let items = (parse(r.body)["assignments"] as? [[String: Any]] ?? []).map {
                ($0["assignment_id"] as? Int ?? -1, $0["status"] as? String ?? "", $0["reason"] as? String)
            }
            return (items, parse(r.body)["next_cursor"] as? String ?? "")
        }
        let first = try shop.order("f1")
        #expect(first.store == "near")
        let near = try feed("near", after: "0")
        #expect(near.items.map(\.0) == [first.assignment])
        // Not accepted in time: the order moves to mid, and near's feed says it is gone.
        clock.advance(601)
        #expect(live.service.engine.tick() == 1)
        #expect(eventually { ((try? feed("near", after: near.cursor))?.items.count ?? 0) > 0 })
        let away = try feed("near", after: near.cursor)
        #expect(away.items.count == 1)
        #expect(away.items.first?.0 == first.assignment && away.items.first?.1 == "rejected")
        #expect(away.items.first?.2 != nil)
        #expect(try feed("near", after: away.cursor).items.isEmpty)
        // Mid accepts it; a later cancellation reaches mid's feed and wakes a poll parked on it.
        let mid = try feed("mid", after: "0")
        let midAssignment = try #require(mid.items.first?.0)
        #expect(try shop.act(midAssignment, "accept", as: "mid").status == 200)
        let accepted = try feed("mid", after: mid.cursor)
        #expect(accepted.items.map(\.1) == ["accepted"])
        let parked = Mutex<RawHTTP.Reply?>(nil)
        let done = DispatchSemaphore(value: 0)
        let (http, midToken, cursor) = (live.http, shop.tokens["mid"]!, accepted.cursor)
        DispatchQueue.global().async {
            let r = try? http.send("GET", "/v1/stores/mid/assignments?after=\(cursor)&wait=20", headers: [("Authorization", "Bearer \(midToken)")])
            parked.withLock { $0 = r }
            done.signal()
        }
        for _ in 0..<200 where live.service.server.suspendedCount == 0 { usleep(10_000) }
        #expect(live.service.server.suspendedCount == 1)
        #expect(try live.http.send("POST", "/v1/orders/\(first.order)/cancel", headers: admin).status == 200)
        #expect(done.wait(timeout: .now() + 25) == .success)
        let woke = parse(try #require(parked.withLock { $0 }).body)
        let items = woke["assignments"] as? [[String: Any]] ?? []
        #expect(items.map { $0["assignment_id"] as? Int } == [midAssignment])
        #expect(items.map { $0["status"] as? String } == ["cancelled"])
        let cancelled = (items: items, cursor: woke["next_cursor"] as? String ?? "")
        // Positions keep growing across a restart, so cursors held by store apps stay good.
        try live.restart()
        let second = try shop.order("f2")
        let after = try feed(second.store, after: second.store == "mid" ? cancelled.cursor : away.cursor)
        #expect(after.items.map(\.0) == [second.assignment])
        #expect((Int(after.cursor) ?? 0) > (Int(cancelled.cursor) ?? .max))
    }

    /// An order no store could take is routed again once stock arrives, never to a store that rejected it; while
    /// nothing can take it, asking writes nothing.
    @Test func unroutableOrderIsRoutedAgainAfterRestock() throws {
        let live = try Live { $0.timers = false }  // no retries by the timer: each route here is the request's own
        defer { live.stop() }
        let shop = try Shop(live: live)
        func route(_ order: Int) throws -> RawHTTP.Reply { try live.http.send("POST", "/v1/orders/\(order)/route", headers: admin) }
        func events(_ order: Int) throws -> [String] {
            (try shop.status(order)["events"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        }
        // Six of A: no store holds more than five.
        let big = try shop.order("big", lines: [("A", 6)])
        #expect(try shop.status(big.order)["status"] as? String == "unroutable")
        let before = try events(big.order)
        let still = try route(big.order)
        #expect(still.status == 409)
        #expect((parse(still.body)["error"] as? [String: Any])?["code"] as? String == "still_unroutable")
        #expect(((parse(still.body)["explanation"] as? [String: Any])?["skipped"] as? [Any])?.count == 3)
        #expect(try events(big.order) == before)
        // Mid gets stock: the order goes there, with its reservation and a feed entry.
        try live.putInventory("mid", [("A", 10)])
        let routed = try route(big.order)
        #expect(routed.status == 200, "\(routed.body)")
        #expect((parse(routed.body)["assignment"] as? [String: Any])?["store_id"] as? String == "mid")
        #expect(live.service.engine.available(storeID: "mid", sku: "A") == 4)
        #expect(try events(big.order).suffix(2) == ["route_requested", "assigned"])
        let feed = parse(
            try live.http.send("GET", "/v1/stores/mid/assignments?after=0", headers: [("Authorization", "Bearer \(shop.tokens["mid"]!)")]).body)
        #expect(
            (feed["assignments"] as? [[String: Any]])?.contains { $0["order_id"] as? Int == big.order && $0["status"] as? String == "assigned" }
                == true)
        // Now assigned: routing it again is refused.
        #expect(try route(big.order).status == 409)
        // Rejected by near, then nobody has B: unroutable. Restocked everywhere, it avoids near.
        let b = try shop.order("b", lines: [("B", 5)])
        #expect(b.store == "near")
        try live.putInventory("mid", [("B", 0)])
        try live.putInventory("far", [("B", 0)])
        #expect(try shop.act(b.assignment, "reject", as: "near", body: #"{"reason":"too_busy"}"#).status == 200)
        #expect(try shop.status(b.order)["status"] as? String == "unroutable")
        for store in ["near", "mid", "far"] { try live.putInventory(store, [("B", 9)]) }
        let rerouted = try route(b.order)
        #expect(rerouted.status == 200, "\(rerouted.body)")
        #expect((parse(rerouted.body)["assignment"] as? [String: Any])?["store_id"] as? String == "mid")
        // A cancelled order stays cancelled; unknown ids are 404.
        let c = try shop.order("c", lines: [("A", 50)])
        #expect(try live.http.send("POST", "/v1/orders/\(c.order)/cancel", headers: admin).status == 200)
        try live.putInventory("far", [("A", 60)])
        #expect(try route(c.order).status == 409)
        #expect(try shop.status(c.order)["status"] as? String == "cancelled")
        #expect(try route(99_999).status == 404)
    }

    /// A device starting afresh lists what is open, then follows the feed from there: no history to page through,
    /// and no change missed.
    @Test func openListingThenFollowTheFeed() throws {
        let live = try Live { $0.timers = false }
        defer { live.stop() }
        let shop = try Shop(live: live)
        let auth = [("Authorization", "Bearer \(shop.tokens["near"]!)")]
        func get(_ query: String) throws -> (ids: [Int], statuses: [String], cursor: String, status: Int, body: String) {
            let r = try live.http.send("GET", "/v1/stores/near/assignments" + query, headers: auth)
            let items = parse(r.body)["assignments"] as? [[String: Any]] ?? []
            return (
                items.compactMap { $0["assignment_id"] as? Int }, items.compactMap { $0["status"] as? String },
                parse(r.body)["next_cursor"] as? String ?? "", r.status, r.body
            )
        }
        let o1 = try shop.order("o1"), o2 = try shop.order("o2"), o3 = try shop.order("o3")
        #expect([o1, o2, o3].allSatisfy { $0.store == "near" })
        #expect(try shop.act(o1.assignment, "accept", as: "near").status == 200)
        #expect(try live.http.send("POST", "/v1/orders/\(o2.order)/cancel", headers: admin).status == 200)
        let open = try get("?after=0&open=true")
        #expect(open.ids == [o3.assignment, o1.assignment])
        #expect(open.statuses == ["assigned", "accepted"])
        // The cursor is the feed's end, not the last open row: the cancelled o2 is not replayed.
        #expect(try get("?after=\(open.cursor)").ids == [])
        let page = try get("?after=0&open=true&limit=1")
        #expect(page.ids == [o3.assignment])
        #expect(try get("?after=\(page.cursor)&open=true&limit=1").ids == [o1.assignment])
        // Following from the listing sees the next change.
        #expect(try live.http.send("POST", "/v1/orders/\(o3.order)/cancel", headers: admin).status == 200)
        let next = try get("?after=\(open.cursor)")
        #expect(next.ids == [o3.assignment] && next.statuses == ["cancelled"])
        for (query, field) in [("?open=true&wait=5", "wait"), ("?open=yes", "open")] {
            let bad = try get(query)
            #expect(bad.status == 400 && bad.body.contains(#""field":"\#(field)""#))
        }
    }

    /// After stock arrives, the timer routes waiting unroutable orders by itself; a week-old one waits for ops.
    @Test func restockRoutesWaitingOrdersByItself() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock) { $0.timers = false }
        defer { live.stop() }
        let shop = try Shop(live: live)
        _ = live.service.engine.retryUnroutable()  // the set-up's own stock changes
        let old = try shop.order("old", lines: [("A", 7)])
        clock.advance(8 * 86_400)
        let waiting = try shop.order("waiting", lines: [("A", 6)])
        for o in [old, waiting] { #expect(try shop.status(o.order)["status"] as? String == "unroutable") }
        // Nothing changed: nothing to try.
        #expect(live.service.engine.retryUnroutable() == 0)
        try live.putInventory("far", [("A", 20)])
        #expect(live.service.engine.retryUnroutable() == 1)
        #expect(eventually { (try? shop.status(waiting.order))?["status"] as? String == "assigned" })
        #expect(((try shop.status(waiting.order))["assignment"] as? [String: Any])?["store_id"] as? String == "far")
        let actors = (try shop.status(waiting.order)["events"] as? [[String: Any]] ?? []).compactMap { $0["actor"] as? String }
        #expect(actors.contains("system:restock"))
        #expect(try shop.status(old.order)["status"] as? String == "unroutable")
        #expect(live.service.engine.available(storeID: "far", sku: "A") == 14)
        #expect(try live.http.send("GET", "/metrics").body.contains(#"ocss_unroutable_retries_total{result="routed"} 1"#))
        // The change is used up; the old order is still there for an explicit request.
        #expect(live.service.engine.retryUnroutable() == 0)
        #expect(try live.http.send("POST", "/v1/orders/\(old.order)/route", headers: admin).status == 200)
    }

    @Test func acceptanceSLAReroutesAndShipByEscalates() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock) { $0.timers = false }
        defer { live.stop() }
        let shop = try Shop(live: live)
        let o = try shop.order("sla")
        clock.advance(599)
        #expect(live.service.engine.tick() == 0)
        clock.advance(2)
        #expect(live.service.engine.tick() == 1)
        let moved = eventually { ((try? shop.status(o.order))?["assignment"] as? [String: Any])?["store_id"] as? String == "mid" }
        #expect(moved)
        let events = (try shop.status(o.order)["events"] as? [[String: Any]])?.map { $0["actor"] as? String } ?? []
        #expect(events.contains("system:sla"))
        // Accepted at mid; 24 h later without shipping: escalated once.
        let mid = try #require((try shop.status(o.order)["assignment"] as? [String: Any]))
        _ = mid
        let feed = try live.http.send("GET", "/v1/stores/mid/assignments", headers: [("Authorization", "Bearer \(shop.tokens["mid"]!)")])
        let aid = try #require((parse(feed.body)["assignments"] as? [[String: Any]])?.first?["assignment_id"] as? Int)
        #expect(try shop.act(aid, "accept", as: "mid").status == 200)
        clock.advance(86_401)
        #expect(live.service.engine.tick() == 1)
        #expect(live.service.engine.tick() == 0)
        let escalated = eventually {
            ((try? shop.status(o.order))?["events"] as? [[String: Any]])?.contains { $0["type"] as? String == "ship_by_missed" } == true
        }
        #expect(escalated)
        let metrics = try live.http.send("GET", "/metrics").body
        #expect(metrics.contains(#"ocss_sla_breaches_total{kind="accept"} 1"#))
        #expect(metrics.contains(#"ocss_sla_breaches_total{kind="ship_by"} 1"#))
    }

    @Test func flakyPlatformGetsExactlyOneSuccessAndDeadMessagesCanBeRetried() throws {
        let flaky = try FakeWebhook(secret: "0123456789abcdef", failFirst: 3)
        defer { flaky.server.stop() }
        let live = try Live { c in
            c.outbox.baseDelay = 0.02
            c.outbox.maxDelay = 0.1
            c.outbox.pollInterval = 0.02
            c.outbox.maxAttempts = 4
        }
        defer { live.stop() }
        let shop = try Shop(live: live)
        try live.http.send("PUT", "/v1/webhook", headers: admin + json, body: #"{"url":"\#(flaky.url)","secret":"\#(flaky.secret)"}"#)
        let o = try shop.order("flaky")
        try shop.act(o.assignment, "accept", as: "near")
        #expect(eventually { flaky.deliveries.count == 1 })
        usleep(300_000)  // further passes must not send it again
        #expect(flaky.deliveries.count == 1)
        #expect(flaky.attempts == 4)

        // A dead endpoint: parked after maxAttempts, visible, retryable.
        try live.http.send("PUT", "/v1/webhook", headers: admin + json, body: #"{"url":"http://127.0.0.1:1/nothing","secret":"0123456789abcdef"}"#)
        try shop.act(o.assignment, "pick", as: "near")
        try shop.act(o.assignment, "ship", as: "near", body: #"{"carrier":"SF","tracking_number":"T9"}"#)
        let parked = eventually {
            let r = try? live.http.send("GET", "/v1/outbox?status=dead", headers: admin)
            return (parse(r?.body ?? "")["messages"] as? [[String: Any]])?.count == 1
        }
        #expect(parked)
        let dead = try live.http.send("GET", "/v1/outbox?status=dead", headers: admin)
        let id = try #require((parse(dead.body)["messages"] as? [[String: Any]])?.first?["id"] as? Int)
        #expect(try live.http.send("GET", "/metrics").body.contains("ocss_outbox_dead 1"))
        try live.http.send("PUT", "/v1/webhook", headers: admin + json, body: #"{"url":"\#(flaky.url)","secret":"\#(flaky.secret)"}"#)
        #expect(try live.http.send("POST", "/v1/outbox/\(id)/retry", headers: admin).status == 200)
        #expect(eventually { flaky.deliveries.count == 2 })
        #expect(flaky.deliveries.last?.body["status"] as? String == "shipped")
        #expect(try live.http.send("POST", "/v1/outbox/\(id)/retry", headers: admin).status == 409)

        // The whole outbox, a message a page, is the same as one big page (history past the first page is reachable).
        let all = try #require(
            (parse(try live.http.send("GET", "/v1/outbox?limit=1000", headers: admin).body)["messages"] as? [[String: Any]])?
                .compactMap { $0["id"] as? Int })
        #expect(all.count >= 2)
        var paged: [Int] = []
        var cursor = "0"
        while paged.count <= all.count {
            let page = parse(try live.http.send("GET", "/v1/outbox?limit=1&after=\(cursor)", headers: admin).body)
            let ids = (page["messages"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } ?? []
            #expect(ids.count <= 1)
            guard let next = page["next_cursor"] as? String, !ids.isEmpty else { break }
            paged += ids
            cursor = next
        }
        #expect(paged == all)
    }

    @Test func activeOrdersAndPendingOutboxSurviveARestart() throws {
        let hook = try FakeWebhook(secret: "0123456789abcdef")
        defer { hook.server.stop() }
        let live = try Live { $0.outboxEnabled = false }
        defer { live.stop() }
        let shop = try Shop(live: live)
        try live.http.send("PUT", "/v1/webhook", headers: admin + json, body: #"{"url":"\#(hook.url)","secret":"\#(hook.secret)"}"#)
        let o = try shop.order("rs")
        try shop.act(o.assignment, "accept", as: "near")
        #expect(hook.deliveries.isEmpty)
        try live.restart()
        live.service.dispatcher.start()
        #expect(eventually { hook.deliveries.count == 1 })
        #expect(try shop.act(o.assignment, "pick", as: "near").status == 200)
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 4)
    }
}

@Suite(.serialized, .ownThreads) struct SplitTests {
    @Test func partialRejectionMovesOnlyTheNamedLines() throws {
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        let o = try shop.order("split", lines: [("A", 2), ("B", 1)])
        #expect(o.store == "near")
        let r = try shop.act(o.assignment, "reject", as: "near", body: #"{"reason":"out_of_stock","skus":["B"],"partial":true}"#)
        #expect(r.status == 200, "\(r.body)")
        let body = parse(r.body)
        #expect(body["status"] as? String == "assigned")  // the parent stays with "near" for A
        let part = try #require(body["split"] as? [String: Any])
        #expect(part["skus"] as? [String] == ["B"])
        #expect((part["assignment"] as? [String: Any])?["store_id"] as? String == "mid")
        let childID = try #require(part["order_id"] as? Int)
        // Stock: A stays reserved at near; B left near (and is unavailable there now), reserved at mid.
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 3)
        #expect(live.service.engine.available(storeID: "near", sku: "B") == 0)
        #expect(live.service.engine.available(storeID: "mid", sku: "B") == 4)
        #expect(live.service.engine.available(storeID: "mid", sku: "A") == 5)
        // The part is an order of its own in mid's feed, carrying only line B.
        let feed = try live.http.send("GET", "/v1/stores/mid/assignments", headers: [("Authorization", "Bearer \(shop.tokens["mid"]!)")])
        let item = try #require((parse(feed.body)["assignments"] as? [[String: Any]])?.first)
        #expect(item["order_id"] as? Int == childID)
        #expect(((item["order"] as? [String: Any])?["lines"] as? [[String: Any]])?.map { $0["sku"] as? String } == ["B"])
        // The parent lists its part; the platform lookup finds the parent.
        let parent = try shop.status(o.order)
        #expect((parent["parts"] as? [[String: Any]])?.first?["order_id"] as? Int == childID)
        let polled = try live.http.send("GET", "/v1/platforms/direct/orders/split", headers: admin)
        #expect(parse(polled.body)["order_id"] as? Int == o.order)
        // Both parts go on independently.
        #expect(try shop.act(o.assignment, "accept", as: "near").status == 200)
        let childAssignment = try #require(item["assignment_id"] as? Int)
        #expect(try shop.act(childAssignment, "accept", as: "mid").status == 200)
        // Naming every line, or none, is not a partial rejection.
        let other = try shop.order("split2", lines: [("A", 1)])
        #expect(try shop.act(other.assignment, "reject", as: "near", body: #"{"skus":["A"],"partial":true}"#).status == 400)
        #expect(try shop.act(other.assignment, "reject", as: "near", body: #"{"partial":true}"#).status == 400)
    }
}
