import Dispatch
import Foundation
import OCSSCore
@testable import OCSSStore
import OCSSTestSupport
import Synchronization
import Testing

@Suite(.ownThreads) struct StoreTests {
    @Test func migrationsApplyOnceAndSetWAL() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let db = try Connection(path: dir.file("a.sqlite"))
        #expect(try Migrations.apply(to: db) == Migrations.all.count)
        #expect(try Migrations.apply(to: db) == Migrations.all.count)
        #expect(try db.query("PRAGMA journal_mode") { $0.text(0) } == ["wal"])
        #expect(try db.query("PRAGMA synchronous") { $0.int(0) } == [2])  // FULL
    }

    @Test func aPooledReaderLeftMidQuerySeesLaterCommits() throws {
        // A walk that stopped part-way left its statement holding a read transaction; the pooled connection then
        // read that snapshot for good (the outbox dispatcher re-sent messages it had marked sent).
        let dir = TempDir()
        defer { dir.remove() }
        let db = try Connection(path: dir.file("a.sqlite"))
        try db.execute("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2), (3)")
        let pool = ReaderPool(path: dir.file("a.sqlite"))
        let first = try pool.read { c -> Int64 in
            let s = try c.prepare("SELECT x FROM t ORDER BY x")
            _ = try s.step()
            return s.int(0)  // and walk away mid-query
        }
        #expect(first == 1)
        try db.execute("INSERT INTO t VALUES (4)")
        #expect(try pool.read { try $0.query("SELECT COUNT(*) FROM t") { $0.int(0) } } == [4])
    }

    @Test func errorsCarrySQLitesMessage() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let db = try Connection(path: dir.file("a.sqlite"))
        #expect {
            try db.execute("SELECT * FROM nowhere")
        } throws: { e in
            (e as? SQLiteError)?.message.contains("no such table: nowhere") == true
        }
    }

    @Test func storesAndLedgerRoundTrip() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let db = try Connection(database: TestDatabase.fresh(dir, file: "a.sqlite"))
        try Migrations.apply(to: db)
        let s0 = Store(id: "A", code: "a", name: "Alpha", location: GeoPoint(lon: 120.1, lat: 30.2))
        let s1 = Store(id: "B", code: "b", name: "Beta", location: GeoPoint(lon: 121.4, lat: 31.2), kind: .warehouse, status: .paused)
        try db.transaction {
            try Repository.upsertStore(db, slot: 0, store: s0, at: "t")
            try Repository.upsertStore(db, slot: 1, store: s1, at: "t")
            try Repository.ensureSKU(db, index: 0, name: "X")
            try Repository.ensureSKU(db, index: 1, name: "Y")
            try Repository.setOnHand(db, slot: 1, sku: 1, quantity: 7)
            try Repository.setOnHand(db, slot: 1, sku: 0, quantity: 3)
            try Repository.setOnHand(db, slot: 0, sku: 1, quantity: 2)
        }
        #expect(try Repository.loadStores(db) == [s0, s1])
        let ledger = try Repository.loadLedger(db, storeCount: 2)
        #expect(ledger.invariantViolation() == nil)
        #expect(ledger.available(store: 1, sku: 1) == 7)
        #expect(ledger.available(store: 1, sku: 0) == 3)
        #expect(ledger.available(store: 0, sku: 1) == 2)
        #expect(ledger.available(store: 0, sku: 0) == 0)
    }

    /// A migrated database in `dir` and a group-commit writer on it, draining on its own serial queue.
    func migratedWriter(in dir: TempDir) throws -> (path: String, db: Connection, writer: GroupCommitWriter) {
        let path = TestDatabase.fresh(dir, file: "w.sqlite")
        let db = try Connection(database: path)
        try Migrations.apply(to: db)
        let queue = DispatchQueue(label: "w")
        return (path, db, GroupCommitWriter(connection: db) { queue.async(execute: $0) })
    }

    @Test func groupCommitBatchesConcurrentJobsAndIsolatesFailures() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (path, db, writer) = try migratedWriter(in: dir)
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY)")
        let results = Mutex<[Int: Bool]>([:])
        let group = DispatchGroup()
        let n = 400
        DispatchQueue.concurrentPerform(iterations: n) { i in
            group.enter()
            // Every 10th job inserts a duplicate key and must fail alone.
            let key = i % 10 == 9 ? 0 : i
            writer.submit({ db in try db.run("INSERT INTO t(k) VALUES(?)", .int(Int64(key))) }) { r in
                results.withLock { $0[i] = (try? r.get()) != nil }
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 30) == .success)
        let ok = results.withLock { $0 }
        #expect(ok.count == n)
        #expect(ok.filter { $0.value }.count == n - n / 10)
        for (i, good) in ok { #expect(good == (i % 10 != 9)) }
        let stats = writer.stats
        #expect(stats.jobs == n - n / 10)
        #expect(stats.batches < n)  // shared commits
        // What the completions reported is what a fresh reader sees.
        let reader = try Connection(database: path, readOnly: true)
        #expect(try reader.query("SELECT COUNT(*) FROM t") { $0.int(0) } == [Int64(n - n / 10)])
    }

    /// Rollups summed per batch: a job that fails takes its share with it; the rest is written once, before COMMIT.
    @Test func batchedRollupsDropAFailedJobsShare() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (path, db, writer) = try migratedWriter(in: dir)
        // Events without orders: only the rollups are under test.
        try db.execute(db.isPostgres ? "SET session_replication_role = replica" : "PRAGMA foreign_keys=OFF")
        let group = DispatchGroup()
        struct Boom: Error {}
        let n = 300
        DispatchQueue.concurrentPerform(iterations: n) { i in
            group.enter()
            writer.submit({ db in
                try Repository.insertEvent(
                    db, orderID: Int64(i),
                    NewEvent(
                        at: "2026-11-26T10:00:00.000Z", actor: "store:\(i % 3)",
                        type: "rejected", from: "assigned", to: "rejected", reason: "out_of_stock"))
                if i % 10 == 0 { throw Boom() }
            }) { _ in group.leave() }
        }
        #expect(group.wait(timeout: .now() + 30) == .success)
        let reader = try Connection(database: path, readOnly: true)
        let total = try reader.query("SELECT sum(n) FROM daily_events WHERE type = 'rejected'") { $0.int(0) }.first
        #expect(total == Int64(n - n / 10))
        #expect(try reader.query("SELECT count(*) FROM order_events") { $0.int(0) }.first == Int64(n - n / 10))
        #expect(try reader.query("SELECT count(*) FROM daily_events") { $0.int(0) }.first == 3)  // one row per store key
        // Outside a batch (an offline tool's own transaction) rollups are written at once.
        try db.transaction {
            try Repository.insertEvent(
                db, orderID: 1,
                NewEvent(
                    at: "2026-11-26T11:00:00.000Z", actor: "system:sla", type: "ship_by_missed",
                    from: "accepted", to: "accepted", reason: nil))
        }
        #expect(try reader.query("SELECT n FROM daily_events WHERE type = 'ship_by_missed'") { $0.int(0) }.first == 1)
    }

    /// Records what the writer tells its observers, and how many jobs had been answered at that moment.
    final class Recorder: CommitObserver {
        /// Jobs answered so far (the test's completions count them).
        let answered = Mutex(0)
        let seen = Mutex<[(feed: [FeedChange], answeredBefore: Int)]>([])
        let failBeforeCommit: Bool
        init(failBeforeCommit: Bool = false) { self.failBeforeCommit = failBeforeCommit }
        struct Refused: Error {}
        func willCommit(_ changes: WriteChanges, _ db: Connection) throws { if failBeforeCommit { throw Refused() } }
        func didCommit(_ changes: WriteChanges) {
            let n = answered.withLock { $0 }
            seen.withLock { $0.append((changes.feed, n)) }
        }
    }

    /// One batch of three jobs, the middle one failing: the observer hears once, after the commit and before any
    /// answer, of the two good jobs' feed changes only; each good job's completion carries the job's value.
    @Test func observersHearOnlyCommittedChangesBeforeAnyJobIsAnswered() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let db = try Connection(database: TestDatabase.fresh(dir, file: "o.sqlite"))
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY)")
        let queue = DispatchQueue(label: "w")
        let writer = GroupCommitWriter(connection: db) { queue.async(execute: $0) }
        let recorder = Recorder()
        writer.add(observer: recorder)
        let group = DispatchGroup()
        let values = Mutex<[String]>([])
        queue.suspend()  // the three jobs land in one batch
        for (k, slot) in [(1, Int32(1)), (1, 2), (3, 3)] {
            group.enter()
            writer.submit({ db -> String in
                db.journal?.feed.append(FeedChange(slot: slot, position: Int64(slot)))
                try db.run("INSERT INTO t(k) VALUES(?)", .int(Int64(k)))  // the second is a duplicate key
                return "job \(slot)"
            }) { r in
                recorder.answered.withLock { $0 += 1 }
                values.withLock { $0.append((try? r.get()) ?? "failed \(slot)") }
                group.leave()
            }
        }
        queue.resume()
        #expect(group.wait(timeout: .now() + 30) == .success)
        #expect(values.withLock { $0 } == ["job 1", "failed 2", "job 3"])
        let seen = recorder.seen.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.feed == [FeedChange(slot: 1, position: 1), FeedChange(slot: 3, position: 3)])
        #expect(seen.first?.answeredBefore == 0)
        #expect(writer.stats.batches == 1)
    }

    /// An observer that throws before the commit fails the whole batch: nothing is kept, nobody hears of it.
    @Test func anObserverThatThrowsBeforeCommitFailsTheBatch() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (path, db, writer) = try migratedWriter(in: dir)
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY)")
        let refuser = Recorder(failBeforeCommit: true)
        writer.add(observer: refuser)
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Bool?>(nil)
        writer.submit({ db in try db.run("INSERT INTO t(k) VALUES(1)") }) { r in
            outcome.withLock { $0 = (try? r.get()) != nil }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(outcome.withLock { $0 } == false)
        #expect(refuser.seen.withLock { $0.isEmpty })
        let reader = try Connection(database: path, readOnly: true)
        #expect(try reader.query("SELECT COUNT(*) FROM t") { $0.int(0) } == [0])
    }

    @Test func insertOrderWritesEverythingOrNothing() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let db = try Connection(database: TestDatabase.fresh(dir, file: "a.sqlite"))
        try Migrations.apply(to: db)
        try Repository.upsertStore(db, slot: 0, store: Store(id: "A", code: "a", name: "A", location: GeoPoint(lon: 1, lat: 1)), at: "t")
        try Repository.ensureSKU(db, index: 0, name: "X")
        try Repository.setOnHand(db, slot: 0, sku: 0, quantity: 5)
        func order(_ id: Int64, sku: Int32) -> NewOrder {
            NewOrder(
                id: id, idempotencyKey: "k\(id)", bodyHash: "h", platform: "direct", platformOrderID: "p\(id)", status: .assigned,
                storeSlot: 0, distanceMetres: 10, payload: "{}", explanation: "{}", response: "{}", createdAt: "t",
                lines: [CanonicalOrder.Line(sku: "X", platform_sku_id: nil, quantity: 2, unit_price_minor: nil)],
                reservations: [Demand(sku: sku, quantity: 2)], assignmentID: id,
                events: [NewEvent(at: "t", actor: "test", type: "routed", from: "received", to: "assigned", reason: nil)])
        }
        try db.transaction { try Repository.insertOrder(db, order(1, sku: 0)) }
        // A reservation against a row that does not exist must abort the whole order.
        #expect(throws: (any Error).self) { try db.transaction { try Repository.insertOrder(db, order(2, sku: 9)) } }
        #expect(try Repository.order(db, id: 2) == nil)
        #expect(try db.query("SELECT COUNT(*) FROM order_lines WHERE order_id = 2") { $0.int(0) } == [0])
        let o = try #require(try Repository.order(db, id: 1))
        #expect(o.events.map(\.type) == ["routed"])
        #expect(try db.query("SELECT reserved FROM inventory") { $0.int(0) } == [2])
        #expect(try Repository.assignments(db, slot: 0, after: 0, limit: 10).map(\.orderID) == [1])
        #expect(try Repository.assignments(db, slot: 0, after: 1, limit: 10).isEmpty)
    }
}

/// After SQLite rolls a whole batch back on its own (a full disk or database), completions report exactly what
/// was kept: no job hears "done" for a row that is gone, and none hears "failed" for a row that was committed.
@Suite(.ownThreads) struct WriterStorageFailureTests {
    @Test func aTransactionLostMidBatchIsReportedAsLostAndTheRestStillCommit() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("w.sqlite")
        let db = try Connection(path: path)
        try Migrations.apply(to: db)
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, pad BLOB)")
        // One queue, held until every job is queued, so the jobs share batches.
        let queue = DispatchQueue(label: "w")
        let gate = DispatchSemaphore(value: 0)
        queue.async { gate.wait() }
        let writer = GroupCommitWriter(connection: db) { queue.async(execute: $0) }
        let pages = try db.query("PRAGMA page_count") { $0.int(0) }.first ?? 0
        let results = Mutex<[Int: Bool]>([:])
        let done = DispatchGroup()
        for i in 0..<12 {
            done.enter()
            writer.submit({ db in
                if i == 4 { try db.execute("PRAGMA max_page_count = \(pages + 2)") }  // the file may barely grow from here
                if i == 8 { try db.execute("PRAGMA max_page_count = 1073741823") }
                // Large rows: job 4 or a later one runs out of room, and SQLite drops the whole transaction.
                try db.run("INSERT INTO t(k, pad) VALUES(?, zeroblob(20000))", .int(Int64(i)))
            }) { r in
                results.withLock { $0[i] = (try? r.get()) != nil }
                done.leave()
            }
        }
        gate.signal()
        #expect(done.wait(timeout: .now() + 30) == .success)
        let reported = results.withLock { $0 }
        let kept = Set(try Connection(database: path, readOnly: true).query("SELECT k FROM t") { Int($0.int(0)) })
        for i in 0..<12 { #expect(reported[i] == kept.contains(i), "job \(i): reported \(reported[i] ?? false), kept \(kept.contains(i))") }
        #expect(reported.values.contains(false), "some job ran out of room")
        #expect(reported[11] == true, "jobs after the lost transaction still commit")
        #expect(writer.storageFailures > 0)
    }
}

/// The outbox dispatcher's query stays a seek per candidate however large the backlog grows (an endpoint that was
/// down for an hour leaves hundreds of thousands of messages pending).
@Suite(.ownThreads) struct OutboxQueryPlanTests {
    @Test func anEarlierWaitingMessageIsFoundByIndexNotByWalkingThePendingOnes() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let db = try Connection(path: dir.file("o.sqlite"))
        try Migrations.apply(to: db)
        let plan = try db.query("EXPLAIN QUERY PLAN " + Repository.dueOutboxSQL, [.double(0), .int(100)]) { $0.text(3) }
        // Without outbox_order_target, SQLite answers the inner check from outbox_due (status=?): every pending
        // message for every candidate, 19.6 s a pass at 5,000 pending.
        #expect(plan.contains { $0.contains("SEARCH e USING") && $0.contains("outbox_order_target") }, "\(plan)")
    }
}

@Suite(.ownThreads) struct FilePermissionTests {
    /// Issue 22.6: the database (buyers' phones and addresses) was created 0644, world-readable, while admin.token
    /// was 0600. It and its WAL and SHM are now the owner's only; an older 0644 file is tightened on open.
    @Test func theDatabaseAndItsWALAndSHMAreOwnerOnly() throws {
        let dir = TempDir("ocss-perm")
        defer { dir.remove() }
        let path = dir.file("ocss.sqlite")
        let db = try Connection(path: path)
        try db.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        func mode(_ p: String) -> mode_t? {
            var st = stat()
            return stat(p, &st) == 0 ? st.st_mode & 0o777 : nil
        }
        #expect(mode(path) == 0o600 && mode(path + "-wal") == 0o600 && mode(path + "-shm") == 0o600)
        let old = dir.file("old.sqlite")
        _ = try Connection(path: old)
        chmod(old, 0o644)
        _ = try Connection(path: old)
        #expect(mode(old) == 0o600)
        try db.backup(to: dir.file("copy.sqlite"))
        #expect(mode(dir.file("copy.sqlite")) == 0o600)
    }
}
