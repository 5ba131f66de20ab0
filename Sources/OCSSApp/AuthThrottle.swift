import Synchronization
import OCSSEngine

/// Failed credentials per client address. Past `limit` failures within a minute the address is refused (429) for a
/// time that doubles with each further failure, up to five minutes, without its credentials being checked, right ones
/// included: a guesser on one connection tried about 11,000 admin tokens a second before this. Behind a local proxy
/// every client shares the proxy's address, so a request from loopback is counted by the proxy's `X-Forwarded-For`
/// (only a process on this machine can send from loopback).
final class AuthThrottle: Sendable {
    struct Entry {
        var windowStart: Double
        var failures = 0
        var strikes = 0
        var blockedUntil = 0.0
    }

    /// Failures an address may make in a minute before it is slowed down; 0 turns the throttle off.
    let limit: Int
    static let maxBlockSeconds = 300.0
    /// Addresses remembered at most; past it, entries neither blocked nor failing this minute are forgotten.
    static let maxEntries = 100_000
    private let entries = Mutex<[String: Entry]>([:])
    let throttled = Atomic<Int>(0)
    let failures = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// The address to count `r` under.
    static func client(_ remote: String, forwardedFor: String?) -> String {
        guard remote == "127.0.0.1" || remote == "::1" || remote.hasPrefix("::ffff:127."),
            let last = forwardedFor?.split(separator: ",").last?.trimmingSpacesAndTabs, !last.isEmpty
        else { return remote }
        return String(last)
    }

    /// Seconds until `client` may try again, nil when it may now.
    func retryAfter(_ client: String, now: Double) -> Int? {
        guard limit > 0 else { return nil }
        return entries.withLock { e in
            guard let until = e[client]?.blockedUntil, until > now else { return nil }
            return Int((until - now).rounded(.up))
        }
    }

    /// Records a failed credential from `client`.
    func failed(_ client: String, now: Double) {
        failures.add(1, ordering: .relaxed)
        guard limit > 0 else { return }
        entries.withLock { e in
            if e.count >= Self.maxEntries { e = e.filter { $0.value.blockedUntil > now || now - $0.value.windowStart < 60 } }
            var x = e[client] ?? Entry(windowStart: now)
            if now - x.windowStart >= 60 {
                x.windowStart = now
                x.failures = 0
            }
            x.failures += 1
            if x.failures > limit {
                x.strikes = min(x.strikes + 1, 20)
                x.blockedUntil = now + min(Double(1 << (x.strikes - 1)), Self.maxBlockSeconds)
            }
            e[client] = x
        }
    }
}

extension Substring {
    fileprivate var trimmingSpacesAndTabs: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
