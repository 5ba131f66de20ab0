import Foundation
import OCSSPostgres
import OCSSTestSupport
import Testing

/// The PostgreSQL adapter against a real PostgreSQL 15 (a throwaway cluster per test): statements with parameters,
/// errors by SQLSTATE, transactions, the session advisory lock the leader will hold, and LISTEN/NOTIFY for feed
/// wake-ups across nodes (issue 20, first step).
@Suite(.ownThreads) struct PGConnectionTests {
    func cluster() throws -> PostgresCluster {
        try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
    }

    @Test func parametersRoundTripAndErrorsCarrySQLSTATE() throws {
        let pg = try cluster()
        defer { pg.stop() }
        let db = try PGConnection(pg.conninfo)
        try db.execute("CREATE TABLE t(id BIGINT PRIMARY KEY, name TEXT, qty INTEGER, price DOUBLE PRECISION, ok BOOLEAN)")
        let odd = "O'Brien; DROP TABLE t; -- 矿泉水 😀"
        let inserted = try db.query(
            "INSERT INTO t VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)",
            [.int(1), .text(odd), .int(2), .double(29.9), .bool(true), .int(9_007_199_254_740_993), .null, .null, .null, .bool(false)])
        #expect(inserted.changed == 2)
        let rows = try db.query("SELECT id, name, qty, price, ok FROM t ORDER BY id")
        #expect(rows.columns == ["id", "name", "qty", "price", "ok"])
        #expect(rows.text(0, 1) == odd && rows.int(0, 2) == 2 && rows.text(0, 3) == "29.9" && rows.bool(0, 4) == true)
        #expect(rows.int(1, 0) == 9_007_199_254_740_993 && rows.text(1, 1) == nil && rows.bool(1, 4) == false)
        #expect {
            try db.query("INSERT INTO t(id) VALUES ($1)", [.int(1)])
        } throws: { ($0 as? PGError)?.isUniqueViolation == true }
        #expect { try db.execute("SELEKT 1") } throws: { ($0 as? PGError)?.sqlState == "42601" }
        // A transaction that throws leaves nothing.
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.transaction {
                try db.query("INSERT INTO t(id) VALUES ($1)", [.int(3)])
                throw Boom()
            }
        }
        #expect(try db.query("SELECT count(*) FROM t").int(0, 0) == 2)
        #expect(throws: PGError.self) { try PGConnection(pg.conninfo.replacingOccurrences(of: "/ocss?", with: "/nope?")) }
    }

    /// The leader's lease: one session holds the advisory lock; when that session dies (its server process killed, as
    /// when the leader's machine dies), PostgreSQL releases it and the next node takes it.
    @Test func theAdvisoryLockPassesWhenItsHoldersSessionDies() throws {
        let pg = try cluster()
        defer { pg.stop() }
        let leader = try PGConnection(pg.conninfo), follower = try PGConnection(pg.conninfo)
        #expect(try leader.tryAdvisoryLock(0x0C55))
        #expect(try !follower.tryAdvisoryLock(0x0C55))
        #expect(try leader.tryAdvisoryLock(0x0C55))  // re-entrant for its holder
        try follower.query("SELECT pg_terminate_backend($1)", [.int(Int64(leader.backendPID))])
        var taken = false
        for _ in 0..<100 where !taken {
            taken = (try? follower.tryAdvisoryLock(0x0C55)) == true
            if !taken { usleep(50_000) }
        }
        #expect(taken, "the lock was not released within 5 s of its session's end")
        #expect { try leader.query("SELECT 1") } throws: { ($0 as? PGError)?.isConnectionLost == true }
        #expect(!leader.isConnected)
    }

    /// Feed wake-ups between nodes: a session listening hears a notification sent by another, and only once the
    /// sender's transaction commits.
    @Test func notificationsArriveAcrossSessionsOnCommit() throws {
        let pg = try cluster()
        defer { pg.stop() }
        let reader = try PGConnection(pg.conninfo), writer = try PGConnection(pg.conninfo)
        try reader.listen("ocss_feed")
        #expect(try reader.notifications(timeout: 0.1).isEmpty)
        try writer.execute("BEGIN")
        try writer.notify("ocss_feed", payload: "17:42")
        #expect(try reader.notifications(timeout: 0.3).isEmpty)  // not before the commit
        try writer.execute("COMMIT")
        let got = try reader.notifications(timeout: 2)
        #expect(got == [PGNotification(channel: "ocss_feed", payload: "17:42")])
        #expect(throws: PGError.self) { try reader.listen("bad; channel") }
    }
}
