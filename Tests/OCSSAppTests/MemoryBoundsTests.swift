// What a service running for months keeps in memory stays bounded: idempotency keys, failed code guesses.
import Dispatch
import Foundation
@testable import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSStore
import OCSSCore
import OCSSTestSupport
import Synchronization
import Testing

/// Memory for idempotency keys is bounded: the newest keys are answered from memory, older ones from the
/// database, and either way a retry gets the original answer and creates nothing.
@Suite(.serialized, .ownThreads) struct IdempotencyWindowTests {
    @Test func evictsTheOldestKeyOnceFull() {
        func d(_ hex: String) -> IdempotencyWindow.Digest { IdempotencyWindow.digest(hex: hex) }
        var w = IdempotencyWindow(capacity: 2)
        w.insert("a", hash: "1")
        w.insert("b", hash: "2")
        w.insert("a", hash: "1")  // already held: nothing moves
        #expect(w.complete && w.count == 2 && w["a"] == d("1"))
        w.insert("c", hash: "3")
        #expect(w["a"] == nil && w["b"] == d("2") && w["c"] == d("3"))
        #expect(!w.complete)
        w.insert("d", hash: "4")
        w.insert("e", hash: "5")
        #expect(w.count == 2 && w["c"] == nil && w["d"] == d("4") && w["e"] == d("5"))
        var one = IdempotencyWindow(capacity: 1, complete: false)
        one.insert("x", hash: "9")
        #expect(one["x"] == d("9") && !one.complete)
        // Real body hashes are 64 hex digits; the first 128 bits tell them apart.
        let h1 = String(repeating: "ab", count: 32), h2 = "ac" + String(repeating: "ab", count: 31)
        #expect(d(h1) != d(h2) && IdempotencyWindow.digest(key: "k1") != IdempotencyWindow.digest(key: "k2"))
    }

    @Test func retriesOfKeysOlderThanTheWindowAreAnsweredFromTheDatabase() throws {
        let live = try Live { $0.idempotencyWindow = 2 }
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        let bodies = (0..<5).map { orderBody(id: "w\($0)", lat: 30, lon: 120, lines: [("A", 1)]) }
        let first = try bodies.map { try live.http.send("POST", "/v1/orders", headers: admin + json, body: $0) }
        #expect(first.map(\.status) == Array(repeating: 201, count: 5))

        func check(_ when: String) throws {
            #expect(live.service.engine.state.withLock { $0.committed.count } == 2, "\(when): memory holds the window only")
            for (i, body) in bodies.enumerated() {
                let again = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body)
                #expect(again.status == 201 && again.headers["idempotent-replay"] == "true", "\(when): w\(i) \(again.status) \(again.body)")
                #expect(again.body == first[i].body, "\(when): w\(i)")
            }
            // An evicted key with another body is still a conflict.
            let other = orderBody(id: "w0", lat: 30, lon: 120, lines: [("A", 2)], key: "direct:w0:order.paid")
            #expect(try live.http.send("POST", "/v1/orders", headers: admin + json, body: other).status == 409, "\(when)")
            #expect(live.service.engine.available(storeID: "s", sku: "A") == 95, "\(when)")
            let db = try live.database()
            #expect(try db.query("SELECT COUNT(*) FROM orders") { $0.int(0) } == [5], "\(when)")
        }
        try check("running")
        let metrics = try live.http.send("GET", "/metrics").body
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        #expect(value("ocss_idempotency_keys_in_memory") == 2)
        #expect((value("ocss_idempotency_lookups_total") ?? 0) >= 6, "five retries and a conflict went to the database")
        #expect(metrics.contains("# TYPE ocss_idempotency_lookups_total counter") && metrics.contains("# TYPE ocss_writer_jobs_total counter"))
        #expect(metrics.contains("# TYPE ocss_idempotency_keys_in_memory gauge"))
        try live.restart()  // start-up loads the newest two keys only
        try check("after a restart")
        let next = try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "w5", lat: 30, lon: 120, lines: [("A", 1)]))
        #expect(next.status == 201 && next.headers["idempotent-replay"] == nil)
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 94)
    }
}

/// Failed promotion-code guesses are remembered for their window only, however many phones are tried.
@Suite(.serialized, .ownThreads) struct PlatformOrderWindowTests {
    @Test func aPlatformOrderOlderThanTheWindowIsStillOneOrder() throws {
        let live = try Live { $0.idempotencyWindow = 1 }
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        let created = try (0..<3).map { i in
            try live.http.send(
                "POST", "/v1/orders", headers: admin + json,
                body: orderBody(id: "p\(i)", lat: 30, lon: 120, lines: [("A", 1)], key: "direct:p\(i):order.created"))
        }
        func check(_ when: String) throws {
            for i in 0..<3 {
                let paid = try live.http.send(
                    "POST", "/v1/orders", headers: admin + json,
                    body: orderBody(id: "p\(i)", lat: 30, lon: 120, lines: [("A", 1)], key: "direct:p\(i):order.paid"))
                #expect(paid.status == 201 && paid.body == created[i].body, "\(when): p\(i) \(paid.body)")
            }
            #expect(live.service.engine.available(storeID: "s", sku: "A") == 97, "\(when)")
        }
        try check("running")
        try live.restart()
        try check("after a restart")
        // Memory keeps a 64-bit hash of each platform order: one that matches another platform order's is checked
        // against the order itself, and the new order is routed after all.
        let first = Int64(parse(created[0].body)["order_id"] as? Int ?? 0)
        live.service.engine.state.withLock { $0.platformOrders.insert(Engine.platformHash("direct", "clash"), value: first) }
        let clash = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "clash", lat: 30, lon: 120, lines: [("A", 1)], key: "direct:clash"))
        #expect(clash.status == 201 && clash.headers["idempotent-replay"] == nil, "\(clash.body)")
        #expect(parse(clash.body)["order_id"] as? Int != Int(first))
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 96)
        // The same for a cancellation: a hash matching another platform order is recorded, not looked up forever.
        live.service.engine.state.withLock { $0.platformOrders.insert(Engine.platformHash("direct", "ghost"), value: first) }
        let outcome = Mutex<ActionOutcome?>(nil), done = DispatchSemaphore(value: 0)
        live.service.engine.cancelPlatformOrder(platform: "direct", platformOrderID: "ghost", event: "order.cancelled") { o in
            outcome.withLock { $0 = o }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
        guard case .done(let state)? = outcome.withLock({ $0 }) else {
            Issue.record("not done: \(String(describing: outcome.withLock { $0 }))")
            return
        }
        #expect(state.contains("cancelled_before_received"))
        #expect(live.service.engine.cancelledBeforeReceipt(platform: "direct", platformOrderID: "ghost"))
    }
}

@Suite(.ownThreads) struct RedemptionThrottleMemoryTests {
    @Test func staleFailuresAndEndedLockoutsAreDropped() {
        var t = RedemptionThrottle(pruneFloor: 1_002)
        for i in 0..<999 { t.fail(key: "phone:\(i)", now: 0) }
        for _ in 0..<RedemptionThrottle.maxFailures { t.fail(key: "store:S", now: 0) }
        #expect(t.lockedUntil(key: "store:S", now: 1) != nil)
        // Past the window and the lockout: the next failure finds the tables over the bound and prunes them.
        let later = RedemptionThrottle.window + RedemptionThrottle.lockout + 1
        t.fail(key: "phone:new", now: later)
        t.fail(key: "phone:new2", now: later)
        #expect(t.failures.count == 2 && t.locked.isEmpty)
        #expect(t.lockedUntil(key: "store:S", now: later) == nil)
        // A guess still inside its window survives a prune.
        t.fail(key: "phone:new", now: later + 1)
        t.prune(now: later + 2)
        #expect(t.failures["phone:new"]?.count == 2)
    }
}

/// The SLA timer looks at what is due, not at every active order, and acts on a bounded number per tick.
@Suite(.serialized, .ownThreads) struct SLATimerTests {
    static func row(_ id: Int64, _ status: OrderStatus = .assigned, at: Double = 0, shipBy: Double? = nil) -> ActiveOrderRow {
        ActiveOrderRow(
            id: id, status: status, storeSlot: 0, assignmentID: id, point: nil, statusAt: at, shipBy: shipBy,
            platform: "direct", platformOrderID: "\(id)", reserved: [], distanceMetres: 0)
    }

    @Test func dueOrdersComeOutEarliestFirstAndSupersededEntriesAreDropped() {
        var a = ActiveOrders([Self.row(3), Self.row(1), Self.row(2)])
        // New and changed orders are looked at on the next tick, by id.
        #expect(a.takeDue(now: 0, limit: 10) == [1, 2, 3])
        #expect(a.takeDue(now: 0, limit: 10).isEmpty)
        a.schedule(1, at: 50)
        a.schedule(2, at: 20)
        a.schedule(3, at: 20)
        a.schedule(2, at: 70)  // superseded: 2 counts at 70 only
        #expect(a.takeDue(now: 10, limit: 10).isEmpty)
        #expect(a.takeDue(now: 60, limit: 1) == [3])
        #expect(a.takeDue(now: 60, limit: 10) == [1])
        a.removeValue(forKey: 2)
        #expect(a.takeDue(now: 100, limit: 10).isEmpty, "a removed order never comes due")
        #expect(a.queued == 0, "superseded entries do not pile up")
        a[1] = Self.row(1, .accepted, shipBy: 500)
        #expect(a.takeDue(now: 100, limit: 10) == [1])
        #expect(a.count == 2 && a[2] == nil)
    }

    @Test func afterDowntimeOverdueOrdersAreReroutedAThousandATick() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock) { $0.timers = false }
        defer { live.stop() }
        try live.putStore("near", lat: 30, lon: 120)
        try live.putStore("far", lat: 30.05, lon: 120)
        try live.putInventory("near", [("A", 2_000)])
        try live.putInventory("far", [("A", 2_000)])
        let n = Engine.tickActsAtMost + 150
        let http = live.http
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { w in
            for i in stride(from: w, to: n, by: 8) {
                let r = try? http.send(
                    "POST", "/v1/orders", headers: admin + json, body: orderBody(id: "d\(i)", lat: 30, lon: 120, lines: [("A", 1)]))
                if r?.status != 201 { failures.withLock { $0 += 1 } }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(live.service.engine.tick() == 0, "nothing is due yet")
        clock.advance(601)  // every order is past its accept SLA at once
        #expect(live.service.engine.tick() == Engine.tickActsAtMost)
        #expect(live.service.engine.tick() == 150)
        #expect(live.service.engine.tick() == 0, "rerouted orders have a fresh accept deadline")
        #expect(eventually { live.service.engine.available(storeID: "far", sku: "A") == Int32(2_000 - n) })
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 2_000)
    }
}

@Suite(.ownThreads) struct ReloadKeysTests {
    @Test func everyConfigKeyIsEitherAppliedOnReloadOrNamedAsNeedingARestart() {
        // A key missing from the reload's list would be changed in the file, SIGHUP sent, and nothing said.
        #expect(Set(Service.restartOnly.map(\.key)).union(["log_level"]) == ConfigFile.known)
        #expect(Service.restartOnly.count == Set(Service.restartOnly.map(\.key)).count)
    }
}

@Suite(.serialized, .ownThreads) struct RetentionTests {
    @Test func sentMessagesOlderThanTheRetentionGoAndNothingElseDoes() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock) {
            $0.timers = false
            $0.outboxEnabled = false
            $0.outboxRetentionDays = 30
        }
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 10)])
        #expect(
            try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "r1", lat: 30, lon: 120, lines: [("A", 1)])).status
                == 201)
        let day = 86_400.0
        let now = clock.now()
        let at = { (daysAgo: Double) in OCSSEngine.rfc3339(now - daysAgo * day) }
        // (status, created days ago, sent days ago, how many)
        let rows: [(String, Double, Double?, Int)] = [
            ("sent", 40, 40, 1_200), ("pending", 40, nil, 1), ("dead", 40, nil, 1),
            ("sent", 40, 10, 1), ("sent", 1, 1, 10),
        ]
        let done = DispatchSemaphore(value: 0)
        live.service.engine.writer.submit({ db in
            for (status, created, sent, n) in rows {
                for _ in 0..<n {
                    try db.run(
                        "INSERT INTO outbox(order_id, event, target, payload, status, next_attempt_at, created_at, sent_at) VALUES(1,'x','webhook','{}',?,0,?,?)",
                        .text(status), .text(at(created)), SQLValue(sent.map(at)))
                }
            }
        }) { _ in done.signal() }
        done.wait()
        let db = try live.database()
        func count(_ status: String) throws -> Int64 {
            try db.query("SELECT COUNT(*) FROM outbox WHERE status = ? AND event = 'x'", [.text(status)]) { $0.int(0) }.first ?? -1
        }
        func pass() throws -> Int {
            var gone = 0
            for _ in 0..<100 {
                let r = try live.service.retention.runOnce()
                gone += r.outbox
                if r.reachedEnd { break }
            }
            return gone
        }
        #expect(try pass() == 1_200)
        #expect(try count("sent") == 11 && count("pending") == 1 && count("dead") == 1)
        #expect(try live.http.send("GET", "/metrics").body.contains("ocss_outbox_pruned_total 1200"))
        #expect(try pass() == 0)
        // A month on: the late-sent message and the recent ones are old enough; pending and dead still stay.
        clock.advance(30 * day)
        #expect(try pass() == 11)
        #expect(try count("sent") == 0 && count("pending") == 1 && count("dead") == 1)
    }

    @Test func zeroDaysKeepsEverything() throws {
        let live = try Live {
            $0.timers = false; $0.outboxEnabled = false; $0.outboxRetentionDays = 0; $0.redemptionAuditRetentionDays = 0
        }
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 10)])
        #expect(
            try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "r1", lat: 30, lon: 120, lines: [("A", 1)])).status
                == 201)
        let done = DispatchSemaphore(value: 0)
        live.service.engine.writer.submit({ db in
            try db.run(
                "INSERT INTO outbox(order_id, event, target, payload, status, next_attempt_at, created_at, sent_at) VALUES(1,'x','webhook','{}','sent',0,?,?)",
                .text("2020-01-01T00:00:00.000Z"), .text("2020-01-01T00:00:01.000Z"))
            try db.run("INSERT INTO redemption_attempts(at, result) VALUES('2020-01-01T00:00:00.000Z', 'unknown_code')")
        }) { _ in done.signal() }
        done.wait()
        #expect(try live.service.retention.runOnce() == Retention.Step())
        let db = try live.database()
        #expect(try db.query("SELECT COUNT(*) FROM outbox WHERE event = 'x'") { $0.int(0) } == [1])
        #expect(try db.query("SELECT COUNT(*) FROM redemption_attempts") { $0.int(0) } == [1])
    }

    @Test func redemptionAttemptsOlderThanTheirRetentionGo() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock) {
            $0.timers = false; $0.outboxEnabled = false; $0.redemptionAuditRetentionDays = 180
        }
        defer { live.stop() }
        let now = clock.now()
        let done = DispatchSemaphore(value: 0)
        live.service.engine.writer.submit({ db in
            for (daysAgo, n) in [(400.0, 700), (181.0, 3), (179.0, 5), (0.0, 2)] {
                for _ in 0..<n {
                    try db.run(
                        "INSERT INTO redemption_attempts(at, result) VALUES(?, 'wrong_phone')", .text(OCSSEngine.rfc3339(now - daysAgo * 86_400)))
                }
            }
        }) { _ in done.signal() }
        done.wait()
        var gone = 0
        for _ in 0..<10 {
            let r = try live.service.retention.runOnce()
            gone += r.attempts
            if r.reachedEnd { break }
        }
        #expect(gone == 703)
        let db = try live.database()
        #expect(try db.query("SELECT COUNT(*) FROM redemption_attempts") { $0.int(0) } == [7])
        #expect(try live.http.send("GET", "/metrics").body.contains("ocss_redemption_attempts_pruned_total 703"))
    }
}

@Suite(.ownThreads) struct WorkerGroupTests {
    /// Issue 19: background work runs on one mechanism, started in order and stopped in reverse by one group, and
    /// a stop waits for the step in progress (nothing runs after the writer is drained).
    @Test func workersStartInOrderStopInReverseAndFinishTheirStep() throws {
        let events = Mutex<[String]>([])
        let inStep = Atomic<Bool>(false)
        let a = PeriodicWorker(name: "a", every: 0.005) {
            inStep.store(true, ordering: .releasing)
            usleep(20_000)
            events.withLock { $0.append("a") }
            inStep.store(false, ordering: .releasing)
        }
        let b = PeriodicWorker(name: "b", every: 0.005) { events.withLock { $0.append("b") } }
        let group = WorkerGroup(log: Logger(minimum: .error))
        group.run(a)
        group.run(b)
        #expect(group.names == ["a", "b"])
        #expect(eventually(5) { events.withLock { $0.contains("a") && $0.contains("b") } })
        while !inStep.load(ordering: .acquiring) { usleep(1_000) }
        group.stop()
        let midStep = inStep.load(ordering: .acquiring)
        #expect(!midStep, "stop returned in the middle of a step")
        let after = events.withLock { $0.count }
        usleep(50_000)
        #expect(events.withLock { $0.count } == after)
        group.run(PeriodicWorker(name: "late", every: 0.005) {})
        #expect(group.names == ["a", "b"])  // nothing starts after the stop
    }

    @Test func theServiceRunsItsWorkersInOneGroup() throws {
        let live = try Live()
        defer { live.stop() }
        #expect(live.service.workers.names == ["outbox", "retention", "ticker"])
    }
}
