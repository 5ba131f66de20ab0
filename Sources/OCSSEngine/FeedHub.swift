import Synchronization

/// Long-poll waiters per store slot. A waiter is a closure that re-reads the feed and answers;
/// it runs once, either when a change to its store's assignments commits or when its wait runs out.
package final class FeedHub: Sendable {
    package final class Waiter: Sendable {
        let fire: @Sendable () -> Void
        let fired = Atomic<Bool>(false)
        package init(_ fire: @escaping @Sendable () -> Void) { self.fire = fire }
        package func run() {
            if !fired.exchange(true, ordering: .acquiringAndReleasing) { fire() }
        }
    }

    private let waiters = Mutex<[Int32: [Waiter]]>([:])
    /// Newest committed feed position per store: a poll whose cursor is at or past it has nothing
    /// new, and is answered without touching the database.
    private let newest = Mutex<[Int32: Int64]>([:])

    package init(newest: [Int32: Int64] = [:]) {
        self.newest.withLock { $0 = newest }
    }

    /// Newest committed feed position of `slot` (0 when none).
    package func newestPosition(slot: Int32) -> Int64 { newest.withLock { $0[slot] ?? 0 } }

    /// Registers `w` for `slot`.
    package func add(_ w: Waiter, slot: Int32) { waiters.withLock { $0[slot, default: []].append(w) } }

    /// Drops `w` (after its timeout fired).
    package func remove(_ w: Waiter, slot: Int32) {
        waiters.withLock { $0[slot]?.removeAll { $0 === w } }
    }

    /// Records a committed change at feed position `position` and wakes every waiter of its store.
    package func notify(slot: Int32, position: Int64) {
        newest.withLock { $0[slot] = max($0[slot] ?? 0, position) }
        let ws = waiters.withLock { $0.removeValue(forKey: slot) ?? [] }
        for w in ws { w.run() }
    }

    /// Wakes every waiter (a node handing over to a new engine: each poll answers, and its client polls again).
    package func wakeAll() {
        let ws = waiters.withLock { w in
            defer { w.removeAll() }
            return w.values.flatMap { $0 }
        }
        for w in ws { w.run() }
    }

    package var count: Int { waiters.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
