import Synchronization

/// Who decides, among nodes sharing one PostgreSQL (ARCHITECTURE.md, "More than one node"): the node whose session
/// holds the advisory lock `key` leads and runs the engine; the others serve reads and forward writes to the leader's
/// advertised address, which the leader keeps in `ocss_leader`. PostgreSQL ends the lease when the leader's session
/// ends, however its process died, and the next node to try takes it.
///
/// Driven by `step()` (a periodic worker calls it, every half second in the service): each step reconnects if
/// needed, renews or tries the lease, and says the node's role. A lost connection is a lost lease: a leader that
/// cannot reach PostgreSQL stops leading at once (it could not commit anyway), so two nodes never both believe they
/// lead with a live session each.
public final class LeaderLease: Sendable {
    public enum Role: Sendable, Equatable {
        case leader
        /// Another node leads; its advertised address when it has written one.
        case follower(leader: String?)
        /// PostgreSQL cannot be reached: neither leading nor knowing who does.
        case disconnected(reason: String)
    }

    /// The advisory lock's key: "OCSS" in ASCII.
    public static let defaultKey: Int64 = 0x4F43_5353

    private let conninfo: String
    private let key: Int64
    private let advertise: String
    private let state = Mutex<(connection: PGConnectionBox?, role: Role, epoch: Int64)>((nil, .disconnected(reason: "not started"), 0))

    /// - Parameter advertise: where other nodes reach this one (`--advertise URL`).
    public init(conninfo: String, advertise: String, key: Int64 = LeaderLease.defaultKey) {
        self.conninfo = conninfo
        self.advertise = advertise
        self.key = key
    }

    /// The role decided by the latest step.
    public var role: Role { state.withLock { $0.role } }

    /// The leadership's number while this node leads: one more at every change of leader. The leader's writes check
    /// it in `ocss_leader` inside each transaction (see `fenceSQL`), so a leader that lost its lease cannot commit
    /// once another has taken over.
    public var epoch: Int64 { state.withLock { $0.epoch } }

    /// The statement a leader's transaction runs to hold its leadership for the transaction: it locks the one row a
    /// new leader must update to take over, and gives the current epoch.
    public static let fenceSQL = "SELECT epoch FROM ocss_leader WHERE singleton FOR SHARE"

    /// One round: connect if needed, then renew (leader) or try (follower) the lease.
    @discardableResult
    public func step() -> Role {
        state.withLock { s in
            do {
                let box = try s.connection ?? PGConnectionBox(try PGConnection(conninfo))
                s.connection = box
                let db = box.connection
                if s.role != .leader {
                    try db.execute(
                        "CREATE TABLE IF NOT EXISTS ocss_leader(singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton), "
                            + "url TEXT NOT NULL, since TIMESTAMPTZ NOT NULL, renewed_at TIMESTAMPTZ NOT NULL, epoch BIGINT NOT NULL DEFAULT 1)")
                }
                if try db.tryAdvisoryLock(key) {
                    if s.role != .leader {
                        s.epoch =
                            try db.query(
                                "INSERT INTO ocss_leader(singleton, url, since, renewed_at) VALUES (TRUE, $1, now(), now()) "
                                    + "ON CONFLICT (singleton) DO UPDATE SET url = EXCLUDED.url, since = now(), renewed_at = now(), "
                                    + "epoch = ocss_leader.epoch + 1 RETURNING epoch",
                                [.text(advertise)]
                            ).int(0, 0) ?? 0
                        // The lock is re-entrant for its session: take it once only.
                    } else {
                        try db.advisoryUnlock(key)
                        try db.query("UPDATE ocss_leader SET renewed_at = now()")
                    }
                    s.role = .leader
                } else {
                    let url = try db.query("SELECT url FROM ocss_leader").rows.first?.first ?? nil
                    s.role = .follower(leader: url)
                }
            } catch {
                // The session, and with it any lease, is gone: start afresh next step.
                s.connection = nil
                s.role = .disconnected(reason: "\(error)")
            }
            return s.role
        }
    }

    /// Gives the lease up (a clean stop): the next node takes it at its next step instead of after a timeout.
    public func resign() {
        state.withLock { s in
            if s.role == .leader, let db = s.connection?.connection { try? db.advisoryUnlock(key) }
            s.connection = nil
            s.role = .disconnected(reason: "resigned")
        }
    }
}

/// The lease's one connection, used only under the lease's lock.
final class PGConnectionBox: @unchecked Sendable {
    let connection: PGConnection
    init(_ c: PGConnection) { connection = c }
}
