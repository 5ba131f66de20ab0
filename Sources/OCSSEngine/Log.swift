import Glibc
package import Synchronization

/// Structured logs: one JSON object per line on stderr. Never log secrets, phone numbers or
/// addresses: callers pass ids and codes.
package struct Logger: Sendable {
    package enum Level: String, Sendable, Comparable, CaseIterable {
        case debug, info, warn, error
        var rank: Int {
            switch self {
            case .debug: 0;
            case .info: 1;
            case .warn: 2;
            case .error: 3
            }
        }
        package static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }

    /// The least level written. Every copy of a logger shares it, so a change (a reload on SIGHUP) reaches every
    /// part of the service at once.
    package var minimum: Level {
        get { Level.allCases[threshold.rank.load(ordering: .relaxed)] }
        nonmutating set { threshold.rank.store(newValue.rank, ordering: .relaxed) }
    }
    private let threshold: Threshold
    package let clock: any WallClock
    package static let lock = Mutex(())

    private final class Threshold: Sendable {
        let rank: Atomic<Int>
        init(_ level: Level) { rank = Atomic(level.rank) }
    }

    package init(minimum: Level = .info, clock: any WallClock = SystemClock()) {
        threshold = Threshold(minimum)
        self.clock = clock
    }

    /// Fields are built only when the level is enabled (request logs at `warn` cost nothing).
    package func log(_ level: Level, _ message: String, _ fields: @autoclosure () -> [(String, JSON)] = []) {
        guard level.rank >= threshold.rank.load(ordering: .relaxed) else { return }
        let line =
            JSON.object([("ts", .string(rfc3339(clock.now()))), ("level", .string(level.rawValue)), ("msg", .string(message))] + fields()).text + "\n"
        Logger.lock.withLock { _ in
            writeStderr(line)
        }
    }

    package func info(_ m: String, _ f: @autoclosure () -> [(String, JSON)] = []) { log(.info, m, f()) }
    package func warn(_ m: String, _ f: @autoclosure () -> [(String, JSON)] = []) { log(.warn, m, f()) }
    package func error(_ m: String, _ f: @autoclosure () -> [(String, JSON)] = []) { log(.error, m, f()) }
}

/// Writes to fd 2 directly (the C `stderr` global is not concurrency-safe in Swift 6).
package func writeStderr(_ s: String) {
    var bytes = Array(s.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { return }
        off += n
    }
}
