public import OCSSCore
import FoundationEssentials

/// Decoding and encoding of the canonical order event (shared/platforms/CANONICAL.md).
public enum CanonicalJSON {
    /// Decodes and validates a canonical order; errors name the JSON path of the field.
    public static func decodeOrder(_ bytes: [UInt8]) throws(FieldError) -> CanonicalOrder {
        let order: CanonicalOrder
        do {
            order = try JSONDecoder().decode(CanonicalOrder.self, from: Data(bytes))
        } catch let e as DecodingError {
            throw fieldError(e)
        } catch {
            throw FieldError(field: "", message: "body is not valid JSON")
        }
        if let problem = order.validate() { throw problem }
        return order
    }

    /// Stable bytes for an order: sorted keys, so the same order always hashes the same.
    public static func encode(_ order: CanonicalOrder) -> [UInt8] { encodeValue(order) }

    /// Sorted-key JSON of any encodable value.
    public static func encodeValue(_ v: some Encodable) -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(enc.encode(v))) ?? []
    }

    /// Turns a DecodingError into a field path like `lines[2].quantity`.
    public static func fieldError(_ e: DecodingError) -> FieldError {
        func path(_ keys: [any CodingKey]) -> String {
            var s = ""
            for k in keys {
                if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
            }
            return s
        }
        switch e {
        case .keyNotFound(let key, let ctx):
            let p = path(ctx.codingPath + [key])
            return FieldError(field: p, message: "missing required field '\(p)'")
        case .typeMismatch(let type, let ctx):
            return FieldError(field: path(ctx.codingPath), message: "expected \(describe(type))")
        case .valueNotFound(let type, let ctx):
            return FieldError(field: path(ctx.codingPath), message: "expected \(describe(type)), got null")
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty {
                // Foundation reports a number too large for its field without a path.
                let d = ctx.debugDescription.lowercased()
                if d.contains("fit") || d.contains("representable") || d.contains("range") {
                    return FieldError(field: "", message: "a number is out of range (integers are 64-bit)")
                }
                return FieldError(field: "", message: "body is not valid JSON")
            }
            return FieldError(field: path(ctx.codingPath), message: "invalid value")
        @unknown default:
            return FieldError(field: "", message: "invalid body")
        }
    }

    static func describe(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "a boolean"
        default: "a value of another type"
        }
    }
}
