import Foundation
import OCSSPostgres
import OCSSTestSupport
import Testing

/// Issue 20's leader election, on a real PostgreSQL: one node leads; when its session dies another takes over and
/// advertises itself; losing PostgreSQL loses the lease, and nodes come back by themselves.
@Suite(.ownThreads) struct LeaderLeaseTests {
    /// Steps every lease until `done` holds (at most `steps` rounds, 50 ms apart).
    func settle(_ leases: [LeaderLease], steps: Int = 100, until done: () -> Bool) -> Bool {
        for _ in 0..<steps {
            for l in leases { l.step() }
            if done() { return true }
            usleep(50_000)
        }
        return false
    }

    @Test func oneLeadsAnotherTakesOverWhenItsSessionDies() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let a = LeaderLease(conninfo: pg.conninfo, advertise: "http://10.0.0.1:8080")
        let b = LeaderLease(conninfo: pg.conninfo, advertise: "http://10.0.0.2:8080")
        #expect(a.step() == .leader)
        #expect(b.step() == .follower(leader: "http://10.0.0.1:8080"))
        for _ in 0..<5 { #expect(a.step() == .leader && b.step() == .follower(leader: "http://10.0.0.1:8080")) }
        // The leader's process dies (its backend is killed, as PostgreSQL would end the session of a dead machine).
        let admin = try PGConnection(pg.conninfo)
        try admin.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        #expect(settle([b]) { b.role == .leader }, "the follower did not take over")
        // The old leader finds itself a follower of the new one, never a second leader.
        #expect(settle([a]) { a.role == .follower(leader: "http://10.0.0.2:8080") }, "\(a.role)")
        // A clean stop hands over at once.
        b.resign()
        #expect(a.step() == .leader)
    }

    @Test func losingPostgreSQLLosesTheLeaseAndNodesComeBackByThemselves() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let a = LeaderLease(conninfo: pg.conninfo, advertise: "http://10.0.0.1:8080")
        let b = LeaderLease(conninfo: pg.conninfo, advertise: "http://10.0.0.2:8080")
        #expect(a.step() == .leader && b.step() == .follower(leader: "http://10.0.0.1:8080"))
        pg.halt()
        let bothDown = settle([a, b], steps: 40) {
            if case .disconnected = a.role, case .disconnected = b.role { return true }
            return false
        }
        #expect(bothDown, "\(a.role) \(b.role)")
        pg.resume()
        // Exactly one leads again, and the other follows it.
        let back = settle([a, b]) {
            (a.role == .leader && b.role == .follower(leader: "http://10.0.0.1:8080"))
                || (b.role == .leader && a.role == .follower(leader: "http://10.0.0.2:8080"))
        }
        #expect(back, "\(a.role) \(b.role)")
    }
}
