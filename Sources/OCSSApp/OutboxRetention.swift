import Dispatch
import OCSSStore
import Synchronization

/// Deletes outbox messages that were sent more than `days` ago. Each message is a copy of an event already
/// delivered; kept forever they grow the database by several rows per order (millions a year for a busy chain)
/// while the orders and their event history stay. Pending and dead messages are never deleted.
///
/// It walks the outbox along its primary key, a bounded step at a time, and deletes through the writer in small
/// batches so order commits never wait long behind it. Once the walk reaches messages too new to delete, it starts
/// again from the oldest on the next pass (messages sent late, after long retries, are found then).
public final class OutboxRetention: Sendable {
    let engine: Engine
    let days: Int
    /// Messages examined per step, and deleted per writer job at most.
    let step: Int
    private let cursor = Mutex<Int64>(0)
    /// Messages deleted so far (`/metrics`).
    let deleted = Atomic<Int>(0)
    private let timer = Mutex<TimerBox?>(nil)

    public init(engine: Engine, days: Int, step: Int = 500) {
        self.engine = engine
        self.days = days
        self.step = step
    }

    /// One step: the next `step` messages of the walk, and the sent ones among them older than the retention
    /// deleted. Returns how many were deleted and whether the walk reached its end (nothing more to do for now).
    @discardableResult
    public func runOnce() throws -> (deleted: Int, reachedEnd: Bool) {
        guard days > 0 else { return (0, true) }  // kept forever
        let cutoff = rfc3339(engine.clock.now() - Double(days) * 86_400)
        let after = cursor.withLock { $0 }
        let found = try engine.readers.read { try Repository.sentOutbox($0, before: cutoff, after: after, limit: step) }
        var n = 0
        if !found.ids.isEmpty {
            let done = DispatchSemaphore(value: 0)
            let result = Mutex<Result<Int, any Error>>(.success(0))
            let ids = found.ids
            engine.writer.submit({ db in
                let gone = try Repository.deleteSentOutbox(db, ids: ids)
                result.withLock { $0 = .success(gone) }
            }) { r in
                if case .failure(let e) = r { result.withLock { $0 = .failure(e) } }
                done.signal()
            }
            done.wait()
            n = try result.withLock { try $0.get() }
            deleted.add(n, ordering: .relaxed)
        }
        cursor.withLock { $0 = found.reachedEnd ? 0 : found.last }
        return (n, found.reachedEnd)
    }

    /// Runs a step every second while there is a backlog to delete, otherwise once every `idleSeconds`.
    public func start(idleSeconds: Double = 60) {
        guard days > 0 else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "ocss.outbox-retention", qos: .utility))
        let lastEnd = Mutex<Double>(-.infinity)
        t.schedule(deadline: .now() + 1, repeating: 1)
        t.setEventHandler { [self] in
            let now = monotonicSeconds()
            guard now - lastEnd.withLock({ $0 }) >= idleSeconds else { return }
            do {
                if try runOnce().reachedEnd { lastEnd.withLock { $0 = now } }
            } catch {
                engine.log.warn("outbox retention step failed", [("error", .string("\(error)"))])
                lastEnd.withLock { $0 = now }
            }
        }
        t.resume()
        timer.withLock { $0 = TimerBox(t) }
    }

    public func stop() { timer.withLock { $0?.timer.cancel() } }
}
