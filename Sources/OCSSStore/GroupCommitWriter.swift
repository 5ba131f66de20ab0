import Synchronization

/// The single writer. Jobs submitted from any thread are queued; one drain runs every queued job in
/// one transaction (each inside its own savepoint, so one failing job does not sink the others),
/// commits once, and only then calls each job's completion. Concurrent requests therefore share
/// one fsync (group commit), and nobody hears "done" before their data is durable.
///
/// The writer does not own a thread: `schedule` runs a drain on a serial executor the app provides
/// (a serial dispatch queue), which keeps this module free of threading imports.
public final class GroupCommitWriter: Sendable {
    public typealias Job = (Connection) throws -> Void
    public typealias Completion = @Sendable (Result<Void, any Error>) -> Void

    private struct Pending: @unchecked Sendable {
        var jobs: [(Job, Completion)] = []
        var drainScheduled = false
    }

    private let connection: UnsafeTransfer<Connection>
    private let state = Mutex(Pending())
    private let schedule: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let batchLimit: Int
    /// Refuses a batch while the `-shm` cannot be written safely.
    private let shm: SharedMemoryGuard?
    /// Transactions committed, jobs in them, and writes that failed on storage errors (for metrics); the storage
    /// failure that made the latest writes fail, until a later write commits (health checks).
    private let counters = Mutex((batches: 0, jobs: 0, storageFailures: 0, failure: (message: String, writes: Int)?.none))

    /// - Parameters:
    ///   - connection: the only connection that writes; used only from drains.
    ///   - schedule: runs a closure on a serial executor (never concurrently with itself).
    public init(
        connection: Connection, batchLimit: Int = 512, guard shm: SharedMemoryGuard? = nil,
        schedule: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void
    ) {
        self.shm = shm
        self.connection = UnsafeTransfer(connection)
        self.schedule = schedule
        self.batchLimit = batchLimit
    }

    /// Called after each commit, before any completion of it, with the assignment-feed positions it made visible
    /// (so a store that polls right after an answer sees what the answer promised).
    private let afterCommit = Mutex<(@Sendable ([FeedChange]) -> Void)?>(nil)

    /// Sets the after-commit hook (see `afterCommit`).
    public func onCommit(_ hook: @escaping @Sendable ([FeedChange]) -> Void) { afterCommit.withLock { $0 = hook } }

    /// Queues `job`; `completion` runs after the commit that contains it (or with its error).
    public func submit(_ job: @escaping Job, completion: @escaping Completion) {
        let needsDrain = state.withLock { s -> Bool in
            s.jobs.append((job, completion))
            if s.drainScheduled { return false }
            s.drainScheduled = true
            return true
        }
        if needsDrain { schedule { [self] in drain() } }
    }

    /// Batches committed and jobs committed so far.
    public var stats: (batches: Int, jobs: Int) { counters.withLock { ($0.batches, $0.jobs) } }

    /// Why writes are failing (disk full, I/O error, read-only file) and how many failed since the last one that
    /// committed; nil while writes commit.
    public var storageFailure: (message: String, writes: Int)? { counters.withLock { $0.failure } }

    /// Writes that failed on storage errors so far (for metrics).
    public var storageFailures: Int { counters.withLock { $0.storageFailures } }

    private func drain() {
        while true {
            let batch: [(Job, Completion)] = state.withLock { s in
                let take = Array(s.jobs.prefix(batchLimit))
                s.jobs.removeFirst(take.count)
                if take.isEmpty { s.drainScheduled = false }
                return take
            }
            if batch.isEmpty { return }
            run(batch)
        }
    }

    private func run(_ batch: [(Job, Completion)]) {
        let db = connection.value
        var results: [Result<Void, any Error>] = []
        results.reserveCapacity(batch.count)
        // Rollup counters touched by many jobs are summed in memory and written once, just before the commit;
        // a job that fails takes its own share with it.
        db.batchRollups = RollupDelta()
        db.batchFeed = []
        defer {
            db.batchRollups = nil
            db.jobRollups = nil
            db.batchFeed = nil
            db.jobFeed = nil
        }
        var committedFeed: [FeedChange] = []
        do {
            // Looked at anew for every batch: a batch is where the process would die.
            if let p = shm?.problemNow() { throw SQLiteError(code: 10 /* SQLITE_IOERR */, message: p, sql: nil) }
            try db.run("BEGIN IMMEDIATE")
            // Jobs from here on share the open transaction.
            var transactionStart = 0
            for (i, (job, _)) in batch.enumerated() {
                db.jobRollups = RollupDelta()
                db.jobFeed = []
                do {
                    try db.run("SAVEPOINT job")
                    try job(db)
                    try db.run("RELEASE job")
                    db.batchRollups?.merge(db.jobRollups!)
                    db.batchFeed?.append(contentsOf: db.jobFeed!)
                    results.append(.success(()))
                } catch {
                    try? db.run("ROLLBACK TO job")
                    try? db.run("RELEASE job")
                    results.append(.failure(error))
                    // After some errors (a full disk or database, an I/O error) SQLite has already rolled the whole
                    // transaction back: the jobs before this one in it are gone too. Say so, and give the rest of
                    // the batch a transaction of their own (a SAVEPOINT outside one would commit on its own).
                    if db.isAutocommit {
                        for j in transactionStart..<i { results[j] = .failure(error) }
                        db.batchRollups = RollupDelta()
                        db.batchFeed = []
                        try db.run("BEGIN IMMEDIATE")
                        transactionStart = i + 1
                    }
                }
            }
            db.jobRollups = nil
            db.jobFeed = nil
            if let pending = db.batchRollups, !pending.isEmpty { try Rollups.write(db, pending) }
            try db.run("COMMIT")
            committedFeed = db.batchFeed ?? []
        } catch {
            try? db.execute("ROLLBACK")
            results = batch.map { _ in .failure(error) }
        }
        let ok = results.count(where: { if case .success = $0 { true } else { false } })
        let storage = results.compactMap { r -> SQLiteError? in
            if case .failure(let e as SQLiteError) = r, e.isStorageFailure { return e }
            return nil
        }
        counters.withLock { c in
            c.batches += 1
            c.jobs += ok
            c.storageFailures += storage.count
            if ok > 0 {
                c.failure = nil
            } else if let last = storage.last {
                c.failure = (last.description, (c.failure?.writes ?? 0) + storage.count)
            }
        }
        if !committedFeed.isEmpty, let hook = afterCommit.withLock({ $0 }) { hook(committedFeed) }
        for ((_, completion), r) in zip(batch, results) { completion(r) }
    }
}

/// A change in a store's assignment feed: the store and the feed position the changed assignment now has.
public struct FeedChange: Sendable, Equatable {
    public var slot: Int32
    public var position: Int64
    public init(slot: Int32, position: Int64) {
        self.slot = slot
        self.position = position
    }
}

/// Moves a non-Sendable value into a Sendable owner whose access discipline makes it safe
/// (here: the writer connection is touched only by serial drains).
struct UnsafeTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
