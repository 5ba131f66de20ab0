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

extension Timestamps {
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
}
