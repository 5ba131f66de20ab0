/// What the jobs of one transaction changed that matters outside it: assignment-feed positions handed out (for the
/// stores' long polls) and rollup counters to add (summed, so a batch writes each counter once). Repository
/// functions record into the job's `WriteChanges` (`Connection.journal`); the writer keeps a job's share only if the
/// job succeeds, and hands the batch's sum to its observers.
public struct WriteChanges: Sendable {
    /// Assignments whose feed position moved, in the order they moved.
    public internal(set) var feed: [FeedChange] = []
    var rollups = RollupDelta()

    public var isEmpty: Bool { feed.isEmpty && rollups.isEmpty }

    mutating func merge(_ other: WriteChanges) {
        feed.append(contentsOf: other.feed)
        rollups.merge(other.rollups)
    }
}

/// Watches the writer's transactions (the shape of GRDB's `TransactionObserver`): `willCommit` runs inside the
/// transaction after its last job, and may still write (a throw fails every job of the batch); `didCommit` runs
/// after the commit, before any job of it is answered.
public protocol CommitObserver: AnyObject, Sendable {
    func willCommit(_ changes: WriteChanges, _ db: Connection) throws
    func didCommit(_ changes: WriteChanges)
}

extension CommitObserver {
    public func willCommit(_ changes: WriteChanges, _ db: Connection) throws {}
    public func didCommit(_ changes: WriteChanges) {}
}

/// Writes the batch's summed rollup counters just before it commits: the rollups are exactly as durable as the
/// orders and events they count. Every writer has one, first.
final class RollupCommitObserver: CommitObserver {
    func willCommit(_ changes: WriteChanges, _ db: Connection) throws {
        if !changes.rollups.isEmpty { try Rollups.write(db, changes.rollups) }
    }
}

/// A `CommitObserver` made of a closure called after each commit that moved a feed position.
public final class FeedCommitObserver: CommitObserver {
    private let notify: @Sendable ([FeedChange]) -> Void
    public init(_ notify: @escaping @Sendable ([FeedChange]) -> Void) { self.notify = notify }
    public func didCommit(_ changes: WriteChanges) { if !changes.feed.isEmpty { notify(changes.feed) } }
}
