/// Phone numbers as customers' keys: normalised to E.164, masked wherever a non-admin sees them.
public enum PhoneNumber {
    /// E.164 (`+8613800138000`) from what platforms and people type: `13800138000`, `+86 138-0013-8000`,
    /// `0086 13800138000`, `86-13800138000`, landlines `0571-88888888` (the trunk 0 dropped). Numbers already masked by a
    /// platform (`138****8000`), too short or too long give nil: they are never stored as if real.
    public static func e164(_ raw: String, defaultCountry: String = "86") -> String? {
        var digits: [UInt8] = []
        var plus = false
        for u in raw.utf8 {
            switch u {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(u)
            case UInt8(ascii: "+") where digits.isEmpty: plus = true
            case UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "."): continue
            default: return nil  // '*', letters, extensions: not a plain number
            }
        }
        var s = String(decoding: digits, as: UTF8.self)
        if !plus && s.hasPrefix("00") { s.removeFirst(2); plus = true }
        if plus {
            guard (8...15).contains(s.count), s.first != "0" else { return nil }
            if s.hasPrefix("86") { return china(String(s.dropFirst(2))) }
            return "+" + s
        }
        if defaultCountry == "86" {
            if s.count == 13 && s.hasPrefix("861") { return china(String(s.dropFirst(2))) }
            return china(s)
        }
        guard (6...14).contains(s.count) else { return nil }
        return "+" + defaultCountry + (s.hasPrefix("0") ? String(s.dropFirst()) : s)
    }

    /// Mainland numbers: mobiles are 11 digits starting 1[3-9]; landlines an area code (0 + 2-3 digits) and 7-8 digits.
    static func china(_ national: String) -> String? {
        let d = Array(national.utf8)
        if d.count == 11, d[0] == UInt8(ascii: "1"), (UInt8(ascii: "3")...UInt8(ascii: "9")).contains(d[1]) { return "+86" + national }
        if d.first == UInt8(ascii: "0"), (10...12).contains(d.count) { return "+86" + String(national.dropFirst()) }
        if d.first != UInt8(ascii: "0"), d.first != UInt8(ascii: "1"), (9...11).contains(d.count) { return "+86" + national }
        return nil
    }

    /// `+86 138****8000`: country code, the first three and last four digits.
    public static func masked(_ e164: String) -> String {
        let d = Array(e164)
        guard d.count > 8 else { return String(repeating: "*", count: d.count) }
        let cc = e164.hasPrefix("+86") ? 3 : min(3, d.count - 8)
        let national = Array(d[cc...])
        let head = national.prefix(3), tail = national.suffix(4)
        return String(d[..<cc]) + " " + String(head) + String(repeating: "*", count: max(1, national.count - 7)) + String(tail)
    }
}

/// Addresses as non-admins see them: the administrative part kept, the street, house number and names masked.
public enum AddressMask {
    /// `浙江省杭州市西湖区****` when the geocoder named the district; otherwise the first six characters and `****`.
    public static func masked(_ text: String, names: GeoNames?) -> String {
        if let n = names, let d = n.district {
            var parts: [String] = []
            for p in [n.province, n.city, d] { if let p, parts.last != p { parts.append(p) } }
            return parts.joined() + "****"
        }
        return String(text.prefix(6)) + "****"
    }

    /// A person's name: the family name (first character) and `*`.
    public static func name(_ name: String) -> String {
        guard let first = name.first else { return "" }
        return String(first) + "*"
    }
}
