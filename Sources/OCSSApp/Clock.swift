import Glibc

/// Wall-clock time as the app reads it; the core never reads a clock.
public protocol WallClock: Sendable {
    /// Seconds since the Unix epoch.
    func now() -> Double
}

public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Monotonic seconds for durations.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// RFC 3339 UTC with milliseconds: `2026-11-26T02:13:00.000Z`.
public func rfc3339(_ epoch: Double) -> String {
    let ms = Int64((epoch * 1000).rounded(.down))
    let secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
    let milli = Int(ms - secs * 1000)
    var days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
    let rem = Int(secs - days * 86_400)
    // Civil from days (Howard Hinnant).
    days += 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let doe = days - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
    func p(_ v: Int64, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
    return "\(p(y, 4))-\(p(m, 2))-\(p(d, 2))T\(p(Int64(rem / 3600), 2)):\(p(Int64(rem / 60 % 60), 2)):\(p(Int64(rem % 60), 2)).\(p(Int64(milli), 3))Z"
}
