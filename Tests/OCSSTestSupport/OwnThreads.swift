import Dispatch
public import Testing

/// Runs each test of a suite on a thread of its own instead of the Swift concurrency pool's.
///
/// swift-testing runs a synchronous test on a pool thread, and that pool has one thread per core: on a 2-core machine
/// two tests that wait (for a child process, a socket, a semaphore) stop every other test. These tests wait by
/// design (they drive real servers and processes), so they take threads that may block, as the service's own
/// request threads do.
public struct OwnThreads: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(BlockingThreads.shared) { try await function() }
    }
}

extension Trait where Self == OwnThreads {
    /// See `OwnThreads`.
    public static var ownThreads: Self { OwnThreads() }
}

/// A task executor whose jobs run on Dispatch's global queue, which adds threads while others block.
final class BlockingThreads: TaskExecutor {
    static let shared = BlockingThreads()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        DispatchQueue.global().async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
