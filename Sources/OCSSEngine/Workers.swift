package import Dispatch
import Synchronization

/// Background work the service runs beside the requests: the outbox sender, the retention clean-up, the SLA and retry
/// ticker, a supervisor's parent watch. Started once, stopped once; `stop` returns when the worker's current step is
/// done, so nothing runs after the writer has been drained.
package protocol BackgroundWorker: Sendable {
    /// For logs.
    var name: String { get }
    func start()
    func stop()
}

/// The one place background work is started and stopped: in the order given, and stopped in reverse, each once (the
/// shape of swift-service-lifecycle's ServiceGroup, written here without the package).
package final class WorkerGroup: Sendable {
    private let workers = Mutex<[any BackgroundWorker]>([])
    private let stopped = Atomic<Bool>(false)
    private let log: Logger

    package init(log: Logger) { self.log = log }

    /// Starts `worker` and keeps it for `stop`; after `stop`, a worker added is not started.
    package func run(_ worker: any BackgroundWorker) {
        guard !stopped.load(ordering: .acquiring) else { return }
        workers.withLock { $0.append(worker) }
        worker.start()
        log.info("worker started", [("worker", .string(worker.name))])
    }

    /// Stops every worker, the last started first.
    package func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for w in workers.withLock({ $0 }).reversed() {
            w.stop()
            log.info("worker stopped", [("worker", .string(w.name))])
        }
    }

    /// The workers running, in start order (for tests and diagnostics).
    package var names: [String] { workers.withLock { $0.map(\.name) } }
}

/// Runs `work` every `interval` seconds on a utility queue until stopped.
package final class PeriodicWorker: BackgroundWorker {
    package let name: String
    package let interval: Double
    package let work: @Sendable () -> Void
    private let queue: DispatchQueue
    private let timer = Mutex<TimerHandle?>(nil)

    package init(name: String, every interval: Double, _ work: @escaping @Sendable () -> Void) {
        self.name = name
        self.interval = interval
        self.work = work
        queue = DispatchQueue(label: "ocss.\(name)", qos: .utility)
    }

    package func start() {
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + interval, repeating: interval)
        t.setEventHandler(handler: work)
        t.resume()
        let handle = TimerHandle(t)
        timer.withLock { $0 }?.timer.cancel()
        timer.withLock { $0 = handle }
    }

    package func stop() {
        guard let handle = timer.withLock({ $0 }) else { return }
        timer.withLock { $0 = nil }
        handle.timer.cancel()
        // A step already running finishes first: the serial queue runs this only after it.
        queue.sync {}
    }
}

/// A dispatch timer, created and then only cancelled, shared between threads.
package final class TimerHandle: @unchecked Sendable {
    package let timer: any DispatchSourceTimer
    package init(_ timer: any DispatchSourceTimer) { self.timer = timer }
}
