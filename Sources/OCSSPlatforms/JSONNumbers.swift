public import OCSSCore
import FoundationEssentials

extension CanonicalJSON {
    /// Decodes `T` from a JSON body; every failure is a `FieldError` naming the field where it can.
    public static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(FieldError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let e as DecodingError {
            if case .dataCorrupted(let ctx) = e, ctx.codingPath.isEmpty, let field = misfitNumber(type, bytes) {
                throw FieldError(field: field, message: "expected a whole number within 64 bits")
            }
            throw fieldError(e)
        } catch {
            throw FieldError(field: "", message: "body is not valid JSON")
        }
    }

    /// Foundation reports a number that does not fit its integer field (`1.5`, `1e30`, 20 digits) as "not valid
    /// JSON", with no path. This finds that number: the numbers with a fraction, an exponent or many digits are
    /// blanked to `1`, one more at a time in document order, until the decoder gets past the failure; the last one
    /// blanked is the culprit. Nil when that does not explain the failure (the body really is not JSON). Runs only
    /// on that failure, on bodies of at most 256 KB and at most 32 such numbers.
    static func misfitNumber<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> String? {
        guard bytes.count <= 256 * 1024 else { return nil }
        let suspects = numberTokens(bytes).filter { t in
            bytes[t.range].contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
                || t.range.count > 18
        }
        guard !suspects.isEmpty, suspects.count <= 32 else { return nil }
        var patched = bytes
        for t in suspects {
            patched[t.range.lowerBound] = UInt8(ascii: "1")
            for i in t.range.dropFirst() { patched[i] = UInt8(ascii: " ") }
            do {
                _ = try JSONDecoder().decode(type, from: Data(patched))
                return t.path
            } catch DecodingError.dataCorrupted(let ctx) where ctx.codingPath.isEmpty {
                continue
            } catch {
                return t.path
            }
        }
        return nil
    }

    /// Every number literal in a JSON text with its field path (`lines[0].quantity`), as `fieldError` writes paths.
    static func numberTokens(_ b: [UInt8]) -> [(range: Range<Int>, path: String)] {
        enum Frame { case object(key: String?), array(index: Int) }
        var stack: [Frame] = []
        var out: [(range: Range<Int>, path: String)] = []
        func path() -> String {
            var s = ""
            for f in stack {
                switch f {
                case .object(let key?): s += s.isEmpty ? key : "." + key
                case .object(nil): break
                case .array(let i): s += "[\(i)]"
                }
            }
            return s
        }
        var i = 0
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "{"): stack.append(.object(key: nil))
            case UInt8(ascii: "["): stack.append(.array(index: 0))
            case UInt8(ascii: "}"), UInt8(ascii: "]"): if !stack.isEmpty { stack.removeLast() }
            case UInt8(ascii: ","):
                switch stack.last {
                case .array(let n)?: stack[stack.count - 1] = .array(index: n + 1)
                case .object?: stack[stack.count - 1] = .object(key: nil)
                case nil: break
                }
            case UInt8(ascii: "\""):
                var j = i + 1
                while j < b.count && b[j] != UInt8(ascii: "\"") { j += b[j] == UInt8(ascii: "\\") ? 2 : 1 }
                if case .object(nil)? = stack.last {
                    stack[stack.count - 1] = .object(key: String(decoding: b[(i + 1)..<min(j, b.count)], as: UTF8.self))
                }
                i = j
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var j = i
                while j < b.count,
                    b[j] == UInt8(ascii: "-") || b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: ".")
                        || b[j] == UInt8(ascii: "e") || b[j] == UInt8(ascii: "E") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[j])
                {
                    j += 1
                }
                out.append((i..<j, path()))
                i = j - 1
            default: break
            }
            i += 1
        }
        return out
    }
}
