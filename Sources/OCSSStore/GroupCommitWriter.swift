import Synchronization

/// The single writer. Jobs submitted from any thread are queued; one drain runs every queued job in
/// one transaction (each inside its own savepoint, so one failing job does not sink the others),
/// commits once, and only then calls each job's completion. Concurrent requests therefore share
/// one fsync (group commit), and nobody hears "done" before their data is durable.
///
/// The writer does not own a thread: `schedule` runs a drain on a serial executor the app provides
/// (a serial dispatch queue), which keeps this module free of threading imports.
public final class GroupCommitWriter: Sendable {
    /// A queued job, its type erased: `run` keeps the job's value for `finish`, which the drain calls after the
    /// commit (or with the error).
    private struct Entry: @unchecked Sendable {
        let run: (Connection) throws -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    private struct Pending: @unchecked Sendable {
        var jobs: [Entry] = []
        var drainScheduled = false
    }

    private let connection: UnsafeTransfer<Connection>
    private let state = Mutex(Pending())
    private let schedule: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let batchLimit: Int
    /// Refuses a batch while the `-shm` cannot be written safely.
    private let shm: SharedMemoryGuard?
    /// Told about every transaction, in the order added; the rollup writer is first.
    private let observers: Mutex<[any CommitObserver]> = Mutex([RollupCommitObserver()])
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

    /// Adds `observer` after those already there; it sees every transaction from the next one on.
    public func add(observer: any CommitObserver) { observers.withLock { $0.append(observer) } }

    /// Queues `job`; `completion` runs after the commit that contains it with the job's value (or with its error,
    /// or the batch's).
    public func submit<T>(_ job: @escaping (Connection) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void) {
        let value = UnsafeSlot<T>()
        // `run` and `finish` touch `value` one after the other, from the drain only: the slot needs no lock.
        let entry = Entry(
            run: { db in value.value = try job(db) },
            finish: { error in
                if let error { completion(.failure(error)) } else { completion(.success(value.value!)) }
            })
        let needsDrain = state.withLock { s -> Bool in
            s.jobs.append(entry)
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

    /// Ends the connection's PostgreSQL session after the jobs queued so far (a stopped node); later jobs fail.
    public func disconnect() {
        let done = UnsafeTransfer(connection.value)
        submit({ _ in }) { [schedule] _ in schedule { done.value.disconnect() } }
    }

    /// Whether the connection itself was found broken after a failed batch (a PostgreSQL session that ended): every
    /// later batch would fail too, and the owner must replace the writer.
    public var connectionLost: Bool { lost.load(ordering: .acquiring) }
    private let lost = Atomic<Bool>(false)

    /// Writes that failed on storage errors so far (for metrics).
    public var storageFailures: Int { counters.withLock { $0.storageFailures } }

    private func drain() {
        while true {
            let batch: [Entry] = state.withLock { s in
                let take = Array(s.jobs.prefix(batchLimit))
                s.jobs.removeFirst(take.count)
                if take.isEmpty { s.drainScheduled = false }
                return take
            }
            if batch.isEmpty { return }
            run(batch)
        }
    }

    private func run(_ batch: [Entry]) {
        let db = connection.value
        let observers = observers.withLock { $0 }
        var errors: [(any Error)?] = []
        errors.reserveCapacity(batch.count)
        // What the batch's jobs changed; a job that fails takes its own share with it.
        var changes = WriteChanges()
        defer { db.journal = nil }
        var committed: WriteChanges?
        do {
            // Looked at anew for every batch: a batch is where the process would die.
            if let p = shm?.problemNow() { throw SQLiteError(code: 10 /* SQLITE_IOERR */, message: p, sql: nil) }
            try db.run("BEGIN IMMEDIATE")
            // Jobs from here on share the open transaction.
            var transactionStart = 0
            for (i, entry) in batch.enumerated() {
                db.journal = WriteChanges()
                do {
                    try db.run("SAVEPOINT job")
                    try entry.run(db)
                    try db.run("RELEASE job")
                    changes.merge(db.journal!)
                    errors.append(nil)
                } catch {
                    try? db.run("ROLLBACK TO job")
                    try? db.run("RELEASE job")
                    errors.append(error)
                    // After some errors (a full disk or database, an I/O error) SQLite has already rolled the whole
                    // transaction back: the jobs before this one in it are gone too. Say so, and give the rest of
                    // the batch a transaction of their own (a SAVEPOINT outside one would commit on its own).
                    if db.isAutocommit {
                        for j in transactionStart..<i { errors[j] = error }
                        changes = WriteChanges()
                        try db.run("BEGIN IMMEDIATE")
                        transactionStart = i + 1
                    }
                }
            }
            db.journal = nil
            for o in observers { try o.willCommit(changes, db) }
            try db.run("COMMIT")
            committed = changes
        } catch {
            try? db.execute("ROLLBACK")
            errors = batch.map { _ in error }
        }
        if committed == nil && db.isBroken { lost.store(true, ordering: .releasing) }
        let ok = errors.count(where: { $0 == nil })
        let storage = errors.compactMap { e -> SQLiteError? in
            if let e = e as? SQLiteError, e.isStorageFailure { return e }
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
        if let committed { for o in observers { o.didCommit(committed) } }
        for (entry, error) in zip(batch, errors) { entry.finish(error) }
    }
}

/// A job's value between the job (inside the batch) and its completion (after the commit), both on the drain.
private final class UnsafeSlot<T>: @unchecked Sendable {
    var value: T?
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
