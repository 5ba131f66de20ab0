import OCSSCore

/// Money and time as the platforms send them (CANONICAL.md rules 1 and 2).
public enum Money {
    /// A decimal amount in major units ("29.9", "89.99", "-0.50", "100") to integer minor units
    /// (fen, cents) by decimal arithmetic on the digits: never through a binary float.
    /// Nil for anything that is not a plain decimal, or with more than `scale` fractional digits
    /// that are not zeros.
    public static func minorUnits(_ text: String, scale: Int = 2) -> Int64? {
        var s = Substring(text.trimmingSpaces())
        var negative = false
        if s.first == "-" { negative = true; s.removeFirst() } else if s.first == "+" { s.removeFirst() }
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty || parts.count == 2 else { return nil }
        var frac = parts.count == 2 ? parts[1] : ""
        guard whole.allSatisfy({ $0.isASCII && $0.isNumber }), frac.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        while frac.count > scale && frac.last == "0" { frac.removeLast() }
        guard frac.count <= scale else { return nil }
        let padded = String(frac) + String(repeating: "0", count: scale - frac.count)
        guard let w = Int64(whole.isEmpty ? "0" : String(whole)), let f = Int64(padded.isEmpty ? "0" : padded) else { return nil }
        var m: Int64 = 1
        for _ in 0..<scale { m *= 10 }
        let (a, o1) = w.multipliedReportingOverflow(by: m)
        let (v, o2) = a.addingReportingOverflow(f)
        guard !o1 && !o2 else { return nil }
        return negative ? -v : v
    }
}

/// Timestamps to RFC 3339 UTC with `Z`.
public enum Timestamps {
    /// `2024-05-18T10:21:44-04:00`, `...Z`, `...+08:00`, with optional fractions; or, without an
    /// offset, local Asia/Shanghai (`yyyy-MM-dd HH:mm:ss` or with `T`). Nil when unreadable.
    public static func utc(_ text: String, defaultOffsetMinutes: Int = 8 * 60) -> String? {
        epochSeconds(text, defaultOffsetMinutes: defaultOffsetMinutes).map(format)
    }

    /// The same texts as `utc`, as Unix seconds.
    public static func epochSeconds(_ text: String, defaultOffsetMinutes: Int = 8 * 60) -> Int64? {
        let b = Array(text.trimmingSpaces().utf8)
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

    /// Epoch text from a payload (`ctime`, `create_time`: seconds, or milliseconds with `millis`) to RFC 3339, checked:
    /// digits only and a time between 1970 and 9999, else a payload error naming `field`. Nil when absent or empty.
    static func epoch(_ text: String?, field: String, millis: Bool = false) throws(AdapterError) -> String? {
        guard let text = text?.trimmingSpaces(), !text.isEmpty else { return nil }
        guard let v = Int64(text), v >= 0 else {
            throw AdapterError(.payload, "expected epoch \(millis ? "milliseconds" : "seconds") as digits", field: field)
        }
        let seconds = millis ? v / 1000 : v
        guard seconds <= CivilTime.supportedSeconds.upperBound else { throw AdapterError(.payload, "time is after the year 9999", field: field) }
        return format(seconds)
    }

    /// Epoch seconds to `yyyy-MM-ddTHH:mm:ssZ`.
    public static func format(_ epoch: Int64) -> String { CivilTime(epochSeconds: epoch).formatted(separator: "T") + "Z" }
}
