/// Tab-separated rows read straight from bytes: no per-line strings, no Character splitting (the gazetteer's
/// 47k rows load in a few milliseconds this way).
struct TSVRow {
    let buf: UnsafeBufferPointer<UInt8>
    var starts: [Int] = []
    var ends: [Int] = []
    var line = 0

    var count: Int { starts.count }

    func isEmpty(_ k: Int) -> Bool { starts[k] == ends[k] }

    func string(_ k: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: buf[starts[k]..<ends[k]]), as: UTF8.self)
    }

    func equals(_ k: Int, _ s: StaticString) -> Bool {
        let n = ends[k] - starts[k]
        guard n == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for i in 0..<n where buf[starts[k] + i] != p[i] { return false }
        return true
    }

    func int(_ k: Int) -> Int64? {
        guard starts[k] < ends[k] else { return nil }
        var v: Int64 = 0
        for i in starts[k]..<ends[k] {
            let c = buf[i]
            guard c >= 48 && c <= 57, v < Int64.max / 10 - 10 else { return nil }
            v = v * 10 + Int64(c - 48)
        }
        return v
    }

    /// Plain decimals (-?digits[.digits]), as the build script writes them.
    func double(_ k: Int) -> Double? {
        var i = starts[k]
        let end = ends[k]
        guard i < end else { return nil }
        var negative = false
        if buf[i] == 45 { negative = true; i += 1 }
        var whole: Double = 0, frac: Double = 0, scale: Double = 1
        var digits = 0, afterDot = false
        while i < end {
            let c = buf[i]
            if c == 46 && !afterDot {
                afterDot = true
            } else if c >= 48 && c <= 57 {
                digits += 1
                if afterDot { frac = frac * 10 + Double(c - 48); scale *= 10 } else { whole = whole * 10 + Double(c - 48) }
            } else {
                return nil
            }
            i += 1
        }
        guard digits > 0 else { return nil }
        let v = whole + frac / scale
        return negative ? -v : v
    }

    /// The first Unicode scalar of field k.
    func scalar(_ k: Int) -> UInt32? {
        let s = starts[k], e = ends[k]
        guard s < e else { return nil }
        let b0 = UInt32(buf[s])
        func cont(_ j: Int) -> UInt32 { s + j < e ? UInt32(buf[s + j] & 0x3F) : 0 }
        switch b0 {
        case 0..<0x80: return b0
        case 0xC0..<0xE0: return (b0 & 0x1F) << 6 | cont(1)
        case 0xE0..<0xF0: return (b0 & 0x0F) << 12 | cont(1) << 6 | cont(2)
        default: return (b0 & 0x07) << 18 | cont(1) << 12 | cont(2) << 6 | cont(3)
        }
    }

    /// Calls `body` for every non-empty, non-comment line.
    static func forEach(_ bytes: [UInt8], _ body: (TSVRow) throws -> Void) rethrows {
        try bytes.withUnsafeBufferPointer { buf in
            var row = TSVRow(buf: buf)
            row.starts.reserveCapacity(12)
            row.ends.reserveCapacity(12)
            var i = 0
            let n = buf.count
            while i < n {
                row.line += 1
                var j = i
                while j < n && buf[j] != 10 { j += 1 }
                if j > i && buf[i] != 35 {  // '#'
                    row.starts.removeAll(keepingCapacity: true)
                    row.ends.removeAll(keepingCapacity: true)
                    var f = i
                    for k in i..<j where buf[k] == 9 {
                        row.starts.append(f); row.ends.append(k); f = k + 1
                    }
                    row.starts.append(f); row.ends.append(j)
                    try body(row)
                }
                i = j + 1
            }
        }
    }
}
