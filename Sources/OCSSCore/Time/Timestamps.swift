/// Timestamps as the platforms send them and as ocss writes them: RFC 3339 in and out, local wall-clock texts read
/// in a zone offset, epoch seconds. One home for time (with `CivilTime` and `LocalDate` beside it), pure: no clock,
/// no Foundation.
/// Timestamps to RFC 3339 UTC with `Z`.
public enum Timestamps {
    /// `2024-05-18T10:21:44-04:00`, `...Z`, `...+08:00`, with optional fractions; or, without an
    /// offset, local Asia/Shanghai (`yyyy-MM-dd HH:mm:ss` or with `T`). Nil when unreadable.
    public static func utc(_ text: String, defaultOffsetMinutes: Int = 8 * 60) -> String? {
        epochSeconds(text, defaultOffsetMinutes: defaultOffsetMinutes).map(format)
    }

    /// The same texts as `utc`, as Unix seconds.
    public static func epochSeconds(_ text: String, defaultOffsetMinutes: Int = 8 * 60) -> Int64? {
        let b = Array(text.utf8).trimmingASCIISpaces()
        guard b.count >= 19 else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard let y = num(0..<4), b[4] == 45, let mo = num(5..<7), b[7] == 45, let d = num(8..<10), b[10] == 84 || b[10] == 32,
            let h = num(11..<13), b[13] == 58, let mi = num(14..<16), b[16] == 58, let se = num(17..<19),
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61
        else { return nil }
        var i = 19
        if i < b.count && b[i] == 46 { i += 1; while i < b.count && b[i] >= 48 && b[i] <= 57 { i += 1 } }
        var offset = defaultOffsetMinutes
        if i < b.count {
            if b[i] == 90 || b[i] == 122 {
                offset = 0; i += 1
            } else if b[i] == 43 || b[i] == 45, b.count >= i + 6, let oh = num((i + 1)..<(i + 3)),
                b[i + 3] == 58, let om = num((i + 4)..<(i + 6))
            {
                offset = (oh * 60 + om) * (b[i] == 45 ? -1 : 1)
                i += 6
            } else {
                return nil
            }
        }
        guard i == b.count else { return nil }
        // Days from civil (Howard Hinnant).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Int64(days) * 86_400 + Int64(h * 3600 + mi * 60 + se) - Int64(offset * 60)
    }

    /// Epoch seconds to `yyyy-MM-ddTHH:mm:ssZ`.
    public static func format(_ epoch: Int64) -> String { CivilTime(epochSeconds: epoch).formatted(separator: "T") + "Z" }

    /// RFC 3339 UTC with milliseconds: `2026-11-26T02:13:00.000Z`.
    public static func rfc3339(_ epoch: Double) -> String {
        let ms = Int64((epoch * 1000).rounded(.down))
        let secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let milli = Int(ms - secs * 1000)
        let frac = String(milli)
        return CivilTime(epochSeconds: secs).formatted(separator: "T") + "." + String(repeating: "0", count: 3 - frac.count) + frac + "Z"
    }

    /// `yyyy-MM-dd HH:mm:ss` at a fixed offset from UTC (Asia/Shanghai is +8 h, no daylight saving), as the Chinese
    /// platforms want their request times.
    public static func local(_ epoch: Double, offsetSeconds: Int64 = 8 * 3600) -> String {
        CivilTime(epochSeconds: Int64(epoch.rounded(.down)), offsetSeconds: offsetSeconds).formatted(separator: " ")
    }
}

extension Array where Element == UInt8 {
    /// Without leading and trailing ASCII spaces, tabs and line ends.
    func trimmingASCIISpaces() -> [UInt8] {
        var lo = startIndex, hi = endIndex
        while lo < hi, [9, 10, 13, 32].contains(self[lo]) { lo += 1 }
        while hi > lo, [9, 10, 13, 32].contains(self[hi - 1]) { hi -= 1 }
        return Array(self[lo..<hi])
    }
}
