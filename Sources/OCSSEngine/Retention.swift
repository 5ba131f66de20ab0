import Dispatch
import OCSSStore
package import Synchronization

/// Deletes what a service accumulates without end and nobody reads after a while:
/// - outbox messages sent more than `outboxDays` ago. Each is a copy of an event already delivered, several per
///   order: kept forever they grow the database by millions of rows a year for a busy chain, while the orders and
///   their event history stay. Pending and dead messages are never deleted.
/// - promotion-code redemption attempts (the audit of who tried which code where, masked) older than
///   `attemptDays`: an audit kept no longer than it is useful.
///
/// Each pass walks a table along its primary key, a bounded step at a time, and deletes through the writer in
/// small batches, so order commits never wait long behind it. Once the outbox walk reaches messages too new to
/// delete, it starts again from the oldest on the next pass (messages sent late, after long retries, are found then).
package final class Retention: BackgroundWorker {
    package let name = "retention"
    package let engine: Engine
    package let outboxDays: Int
    package let attemptDays: Int
    /// Rows examined per step, and deleted per writer job at most.
    package let step: Int
    private let cursor = Mutex<Int64>(0)
    /// Rows deleted so far (`/metrics`).
    package let outboxDeleted = Atomic<Int>(0)
    package let attemptsDeleted = Atomic<Int>(0)
    private let ticker = Mutex<PeriodicWorker?>(nil)

    package init(engine: Engine, outboxDays: Int, attemptDays: Int, step: Int = 500) {
        self.engine = engine
        self.outboxDays = outboxDays
        self.attemptDays = attemptDays
        self.step = step
    }

    package struct Step: Sendable, Equatable {
        package var outbox = 0
        package var attempts = 0
        /// Nothing more to delete for now.
        package var reachedEnd = true
    }

    /// One step of each walk: the next `step` rows, and those older than their retention deleted.
    @discardableResult
    package func runOnce() throws -> Step {
        var r = Step()
        let now = engine.clock.now()
        if outboxDays > 0 {
            let cutoff = rfc3339(now - Double(outboxDays) * 86_400)
            let after = cursor.withLock { $0 }
            let found = try engine.readers.read { try Repository.sentOutbox($0, before: cutoff, after: after, limit: step) }
            r.outbox = try delete(found.ids, Repository.deleteSentOutbox)
            outboxDeleted.add(r.outbox, ordering: .relaxed)
            cursor.withLock { $0 = found.reachedEnd ? 0 : found.last }
            r.reachedEnd = found.reachedEnd
        }
        if attemptDays > 0 {
            let cutoff = rfc3339(now - Double(attemptDays) * 86_400)
            let ids = try engine.readers.read { try Repository.redemptionAttempts($0, before: cutoff, limit: step) }
            r.attempts = try delete(ids, Repository.deleteRedemptionAttempts)
            attemptsDeleted.add(r.attempts, ordering: .relaxed)
            if ids.count == step { r.reachedEnd = false }
        }
        return r
    }

    /// Runs `job` on `ids` on the writer and waits for its commit; the rows it deleted.
    private func delete(_ ids: [Int64], _ job: @escaping @Sendable (Connection, [Int64]) throws -> Int) throws -> Int {
        if ids.isEmpty { return 0 }  // no empty transaction every minute
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<Int, any Error>>(.success(0))
        engine.writer.submit({ db in
            let gone = try job(db, ids)
            result.withLock { $0 = .success(gone) }
        }) { r in
            if case .failure(let e) = r { result.withLock { $0 = .failure(e) } }
            done.signal()
        }
        done.wait()
        return try result.withLock { try $0.get() }
    }

    package func start() { start(idleSeconds: 60) }

    /// Runs a step every second while there is a backlog to delete, otherwise once every `idleSeconds`.
    package func start(idleSeconds: Double) {
        guard outboxDays > 0 || attemptDays > 0 else { return }
        let lastEnd = Mutex<Double>(-.infinity)
        let worker = PeriodicWorker(name: "retention", every: 1) { [self] in
            let now = monotonicSeconds()
            guard now - lastEnd.withLock({ $0 }) >= idleSeconds else { return }
            do {
                if try runOnce().reachedEnd { lastEnd.withLock { $0 = now } }
            } catch {
                engine.log.warn("retention step failed", [("error", .string("\(error)"))])
                lastEnd.withLock { $0 = now }
            }
        }
        ticker.withLock { $0 = worker }
        worker.start()
    }

    package func stop() { ticker.withLock { $0 }?.stop() }
}
