/// A small JSON value for responses: keeps key order, embeds stored JSON text verbatim, and needs
/// no reflection on the hot path.
package enum JSON: Sendable {
    case object([(String, JSON)])
    case array([JSON])
    case string(String)
    case int(Int64)
    /// Written with two decimals (centimetres for distances, enough for timings and scores).
    case double(Double)
    /// Written with every digit that reads back as the same double (coordinates, confidences).
    case exact(Double)
    case bool(Bool)
    case null
    /// Already-serialised JSON text, inserted as is.
    case raw(String)

    package static func str(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
    package static func num(_ d: Double?) -> JSON { d.map { .double($0) } ?? .null }

    /// This object with one more member (other values are returned unchanged).
    package func adding(_ key: String, _ value: JSON) -> JSON {
        guard case .object(var pairs) = self else { return self }
        pairs.append((key, value))
        return .object(pairs)
    }

    package var text: String {
        var out = ""
        out.reserveCapacity(512)
        write(into: &out)
        return out
    }

    package var bytes: [UInt8] { Array(text.utf8) }

    package func write(into out: inout String) {
        switch self {
        case .object(let pairs):
            out += "{"
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += "," }
                JSON.escape(k, into: &out)
                out += ":"
                v.write(into: &out)
            }
            out += "}"
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out)
            }
            out += "]"
        case .string(let s): JSON.escape(s, into: &out)
        case .int(let i): out += String(i)
        case .double(let d):
            if !d.isFinite {
                out += "null"
            } else if d == d.rounded() && abs(d) < 1e15 {
                out += String(Int64(d))
            } else {
                // Two decimals are centimetres for distances; enough for every figure we print.
                out += String((d * 100).rounded() / 100)
            }
        case .exact(let d):
            out += d.isFinite ? d.description : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .raw(let r): out += r.isEmpty ? "null" : r
        }
    }

    package static func escape(_ s: String, into out: inout String) {
        // Fast path: nothing to escape (the common case), append the whole string at once.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += "\""
            out += s
            out += "\""
            return
        }
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
