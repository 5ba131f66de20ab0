import Glibc
import OCSSCore

/// Wall-clock time as the app reads it; the core never reads a clock.
package protocol WallClock: Sendable {
    /// Seconds since the Unix epoch.
    func now() -> Double
}

package struct SystemClock: WallClock {
    package init() {}
    package func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// The business time zone analytics days follow: the process's `TZ`, which the service sets from its
/// configuration (`business_time_zone`, default Asia/Shanghai) at start-up.
package var businessTimeZone: String { getenv("TZ").map { String(cString: $0) } ?? "UTC" }

/// Monotonic seconds for durations.
package func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// RFC 3339 UTC with milliseconds: `2026-11-26T02:13:00.000Z` (`Timestamps.rfc3339`).
package func rfc3339(_ epoch: Double) -> String { Timestamps.rfc3339(epoch) }
