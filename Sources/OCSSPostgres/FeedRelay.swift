import Glibc
import Synchronization

/// Feed wake-ups between nodes (ARCHITECTURE.md, "More than one node"): the leader, which makes every assignment,
/// publishes each commit's feed changes on the `ocss_feed` channel in the same transaction (so a notification never
/// announces what is not committed); every node listens and wakes its own long polls for those stores.
public enum FeedRelay {
    public static let channel = "ocss_feed"
    /// PostgreSQL refuses payloads of 8,000 bytes or more: changes go in several notifications past this.
    static let payloadLimit = 7_000

    /// Queues notifications of `changes` (store slot, feed position) on `db`'s transaction.
    public static func publish(_ changes: [(slot: Int32, position: Int64)], on db: PGConnection) throws(PGError) {
        for payload in payloads(changes) { try db.notify(channel, payload: payload) }
    }

    /// The notification payloads that carry `changes`: `slot:position` items, comma-separated, each under the limit.
    public static func payloads(_ changes: [(slot: Int32, position: Int64)]) -> [String] {
        var out: [String] = []
        var payload = ""
        for c in changes {
            let item = "\(c.slot):\(c.position)"
            if !payload.isEmpty && payload.utf8.count + item.utf8.count + 1 > payloadLimit {
                out.append(payload)
                payload = ""
            }
            payload += (payload.isEmpty ? "" : ",") + item
        }
        if !payload.isEmpty { out.append(payload) }
        return out
    }

    /// The changes in one payload; malformed items are skipped.
    public static func parse(_ payload: String) -> [(slot: Int32, position: Int64)] {
        payload.split(separator: ",").compactMap { item in
            let parts = item.split(separator: ":")
            guard parts.count == 2, let slot = Int32(parts[0]), let position = Int64(parts[1]) else { return nil }
            return (slot, position)
        }
    }
}

/// A node's listener on the feed channel, driven by `step` (a background worker calls it in a loop). Each step
/// waits up to `timeout` for notifications and hands every change to `deliver`. A lost connection is reopened on a
/// later step, and `resync` is called once it is back: notifications sent meanwhile are gone, so the node re-reads the
/// feed positions from the tables.
public final class FeedListener: Sendable {
    private let conninfo: String
    private let deliver: @Sendable (Int32, Int64) -> Void
    private let resync: @Sendable () -> Void
    private let connection = Mutex<PGConnectionBox?>(nil)
    private let lastError = Mutex<String?>(nil)

    public init(conninfo: String, deliver: @escaping @Sendable (Int32, Int64) -> Void, resync: @escaping @Sendable () -> Void) {
        self.conninfo = conninfo
        self.deliver = deliver
        self.resync = resync
    }

    /// Whether the listener has a live connection (for `/healthz`), and why not when it has none.
    public var status: (listening: Bool, error: String?) {
        (connection.withLock { $0 != nil }, lastError.withLock { $0 })
    }

    /// Closes the connection (the node stops); a later step would open another.
    public func close() { connection.withLock { $0 = nil } }

    /// One round: (re)connect and listen if needed, then wait up to `timeout` seconds. Returns the changes delivered.
    @discardableResult
    public func step(timeout: Double) -> Int {
        var box = connection.withLock { $0 }
        if box == nil {
            do {
                let db = try PGConnection(conninfo)
                try db.listen(FeedRelay.channel)
                box = PGConnectionBox(db)
                connection.withLock { $0 = box }
                lastError.withLock { $0 = nil }
                resync()
            } catch {
                lastError.withLock { $0 = "\(error)" }
                usleep(UInt32(min(max(timeout, 0), 5) * 1_000_000))  // a step lasts about `timeout`, connected or not
                return 0
            }
        }
        guard let db = box?.connection else { return 0 }
        do {
            var n = 0
            for note in try db.notifications(timeout: timeout) where note.channel == FeedRelay.channel {
                for change in FeedRelay.parse(note.payload) {
                    deliver(change.slot, change.position)
                    n += 1
                }
            }
            return n
        } catch {
            connection.withLock { $0 = nil }
            lastError.withLock { $0 = "\(error)" }
            return 0
        }
    }
}
