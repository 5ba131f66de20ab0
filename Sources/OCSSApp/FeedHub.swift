import Synchronization

/// Long-poll waiters per store slot. A waiter is a closure that re-reads the feed and answers;
/// it runs once, either when an assignment for its store commits or when its wait runs out.
final class FeedHub: Sendable {
    final class Waiter: Sendable {
        let fire: @Sendable () -> Void
        let fired = Atomic<Bool>(false)
        init(_ fire: @escaping @Sendable () -> Void) { self.fire = fire }
        func run() {
            if !fired.exchange(true, ordering: .acquiringAndReleasing) { fire() }
        }
    }

    private let waiters = Mutex<[Int32: [Waiter]]>([:])

    /// Registers `w` for `slot`.
    func add(_ w: Waiter, slot: Int32) { waiters.withLock { $0[slot, default: []].append(w) } }

    /// Drops `w` (after its timeout fired).
    func remove(_ w: Waiter, slot: Int32) {
        waiters.withLock { $0[slot]?.removeAll { $0 === w } }
    }

    /// Wakes every waiter of `slot`.
    func notify(slot: Int32) {
        let ws = waiters.withLock { $0.removeValue(forKey: slot) ?? [] }
        for w in ws { w.run() }
    }

    var count: Int { waiters.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
