import Foundation
import OCSSPostgres
import OCSSTestSupport
import Synchronization
import Testing

/// Feed wake-ups between nodes over LISTEN/NOTIFY (issue 20): what the leader commits reaches every listener, nothing
/// before the commit, however many stores changed; a listener that lost PostgreSQL comes back and resynchronises.
@Suite(.ownThreads) struct FeedRelayTests {
    final class Heard: Sendable {
        let changes = Mutex<[String]>([])
        let resyncs = Mutex(0)
    }

    func listener(_ pg: PostgresCluster, _ heard: Heard) -> FeedListener {
        FeedListener(
            conninfo: pg.conninfo, deliver: { slot, position in heard.changes.withLock { $0.append("\(slot):\(position)") } },
            resync: { heard.resyncs.withLock { $0 += 1 } })
    }

    @Test func committedChangesReachEveryListenerAndOnlyOnceCommitted() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let heardB = Heard(), heardC = Heard()
        let b = listener(pg, heardB), c = listener(pg, heardC)
        b.step(timeout: 0)
        c.step(timeout: 0)
        #expect(heardB.resyncs.withLock { $0 } == 1 && b.status.listening)
        let leader = try PGConnection(pg.conninfo)
        try leader.execute("BEGIN")
        try FeedRelay.publish([(slot: 3, position: 17), (slot: 5, position: 2)], on: leader)
        #expect(b.step(timeout: 0.3) == 0)  // not before the commit
        try leader.execute("COMMIT")
        #expect(b.step(timeout: 2) == 2 && c.step(timeout: 2) == 2)
        #expect(heardB.changes.withLock { $0 } == ["3:17", "5:2"] && heardC.changes.withLock { $0 } == ["3:17", "5:2"])
        // A commit that touched thousands of stores goes in several notifications; every change arrives.
        let many = (0..<3000).map { (slot: Int32($0), position: Int64(100_000 + $0)) }
        try leader.transaction { try FeedRelay.publish(many, on: leader) }
        var got = 0
        for _ in 0..<20 where got < 3000 { got += b.step(timeout: 0.5) }
        #expect(got == 3000 && heardB.changes.withLock { $0.suffix(3000) } == many.map { "\($0.slot):\($0.position)" })
    }

    @Test func aListenerThatLostPostgreSQLComesBackAndResynchronises() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let heard = Heard()
        let l = listener(pg, heard)
        l.step(timeout: 0)
        pg.halt()
        for _ in 0..<10 where l.status.listening { l.step(timeout: 0.2) }
        #expect(!l.status.listening && l.status.error != nil)
        pg.resume()
        for _ in 0..<50 where !l.status.listening { l.step(timeout: 0.1) }
        #expect(l.status.listening && heard.resyncs.withLock { $0 } == 2)
        let leader = try PGConnection(pg.conninfo)
        try FeedRelay.publish([(slot: 1, position: 99)], on: leader)
        #expect(l.step(timeout: 2) == 1 && heard.changes.withLock { $0 } == ["1:99"])
    }
}
