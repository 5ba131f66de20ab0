/// Calendar fields of a Unix time in UTC (proleptic Gregorian), for formatting timestamps without a
/// clock or Foundation. Algorithm: Howard Hinnant's civil_from_days.
public struct CivilTime: Sendable, Hashable {
    public var year: Int64
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int

    /// Seconds this type formats exactly: years -9999 through 9999. Anything further out is clamped to the nearest
    /// end, so a time from outside (a platform's `ctime=-9223372036854775808`) can never trap the arithmetic below;
    /// adapters refuse such times by field before they get here (`Timestamps.epoch`).
    public static let supportedSeconds: ClosedRange<Int64> = -377_705_116_800...253_402_300_799

    /// `epochSeconds` shifted by `offsetSeconds` (e.g. +8 h for Asia/Shanghai), floor semantics for negatives.
    public init(epochSeconds: Int64, offsetSeconds: Int64 = 0) {
        let (shifted, overflow) = epochSeconds.addingReportingOverflow(offsetSeconds)
        let r = Self.supportedSeconds
        let secs = overflow ? (offsetSeconds > 0 ? r.upperBound : r.lowerBound) : min(max(shifted, r.lowerBound), r.upperBound)
        var days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
        let rem = Int(secs - days * 86_400)
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = Int(doy - (153 * mp + 2) / 5 + 1)
        month = Int(mp < 10 ? mp + 3 : mp - 9)
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        hour = rem / 3600
        minute = rem / 60 % 60
        second = rem % 60
    }

    /// `yyyy-MM-dd` + `separator` + `HH:mm:ss`.
    public func formatted(separator: String) -> String {
        func p(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let y = String(year)
        return String(repeating: "0", count: max(0, 4 - y.count)) + y + "-\(p(month))-\(p(day))\(separator)\(p(hour)):\(p(minute)):\(p(second))"
    }
}
