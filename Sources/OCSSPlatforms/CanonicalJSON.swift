public import OCSSCore
import FoundationEssentials

/// Decoding and encoding of the canonical order event (shared/platforms/CANONICAL.md).
public enum CanonicalJSON {
    /// Decodes and validates a canonical order; errors name the JSON path of the field.
    public static func decodeOrder(_ bytes: [UInt8]) throws(FieldError) -> CanonicalOrder {
        let order = try decode(CanonicalOrder.self, bytes)
        if let problem = order.validate() { throw problem }
        return order
    }

    /// Stable bytes for an order: sorted keys, so the same order always hashes the same.
    ///
    /// Written by hand on the intake path (it runs twice per order: the stored payload and the masked copy).
    /// The bytes are exactly those of `encodeValue(order)` (Foundation's sorted-key `JSONEncoder`), which
    /// stored body hashes were computed with; a test compares the two on random orders.
    public static func encode(_ order: CanonicalOrder) -> [UInt8] {
        encodeAll(order)
    }

    /// The bytes an idempotency key's body hash is taken over: the order without what only staff read (`title`,
    /// `spec`, `remark`, `pickup_no`, `expected_at`, `delivery_by`, CANONICAL.md rule 9), which never changes what
    /// ocss decides. A platform's retry of an order received before an adapter learnt to copy those fields (or a
    /// merchant's resend with a corrected remark) is then the same request, not a conflicting one.
    public static func decisionBytes(_ order: CanonicalOrder) -> [UInt8] {
        guard order.hasStaffFields else { return encodeAll(order) }
        var o = order
        o.delivery_by = nil
        o.pickup_no = nil
        o.remark = nil
        o.expected_at = nil
        for i in o.lines.indices {
            o.lines[i].title = nil
            o.lines[i].spec = nil
        }
        return encodeAll(o)
    }

    private static func encodeAll(_ order: CanonicalOrder) -> [UInt8] {
        var w = CanonicalWriter()
        w.out.reserveCapacity(512)
        w.open()
        if let b = order.buyer {
            w.key("buyer")
            w.open()
            w.field("name", b.name)
            w.field("phone", b.phone)
            w.field("phone_extension", b.phone_extension)
            w.close()
        }
        w.field("channel", order.channel)
        w.field("created_at", order.created_at)
        w.field("currency", order.currency)
        w.field("delivery_by", order.delivery_by)
        w.field("event", order.event)
        w.field("expected_at", order.expected_at)
        w.field("fulfillment", order.fulfillment)
        w.field("idempotency_key", order.idempotency_key)
        w.key("lines")
        w.out.append(UInt8(ascii: "["))
        for (i, l) in order.lines.enumerated() {
            if i > 0 { w.out.append(UInt8(ascii: ",")) }
            w.first = true
            w.open()
            w.field("platform_sku_id", l.platform_sku_id)
            w.field("quantity", Int64(l.quantity))
            w.field("sku", l.sku)
            w.field("spec", l.spec)
            w.field("title", l.title)
            w.field("unit_price_minor", l.unit_price_minor)
            w.close()
        }
        w.out.append(UInt8(ascii: "]"))
        w.field("paid_at", order.paid_at)
        w.field("pickup_no", order.pickup_no)
        w.field("platform", order.platform)
        w.field("platform_order_id", order.platform_order_id)
        w.field("platform_store_id", order.platform_store_id)
        w.field("remark", order.remark)
        let s = order.shipping
        w.key("shipping")
        w.open()
        w.field("address_precision", s.address_precision)
        w.field("city", s.city)
        if let c = s.coordinates {
            guard c.lat.isFinite, c.lon.isFinite else { return encodeValue(order) }
            w.key("coordinates")
            w.open()
            w.field("crs", c.crs)
            w.field("lat", c.lat)
            w.field("lon", c.lon)
            w.close()
        }
        w.field("country", s.country)
        w.field("detail", s.detail)
        w.field("district", s.district)
        w.field("postal_code", s.postal_code)
        w.field("province", s.province)
        w.field("text", s.text)
        w.field("town", s.town)
        w.close()
        w.field("shipping_fee_minor", order.shipping_fee_minor)
        w.field("total_minor", order.total_minor)
        w.close()
        return w.out
    }

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
            // Our own decoders (store hours, service areas) say what they expect; Foundation's message for an
            // unknown enum value names a Swift type instead.
            let own = !ctx.debugDescription.isEmpty && !ctx.debugDescription.hasPrefix("Cannot initialize")
            return FieldError(field: path(ctx.codingPath), message: own ? ctx.debugDescription : "not one of the allowed values")
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

/// Appends compact JSON the way Foundation's `JSONEncoder` writes it with `.withoutEscapingSlashes`:
/// `\b \t \n \f \r`, other controls as lowercase `\u00XX`, every other scalar as is; doubles as their
/// shortest `description` without a trailing `.0`. Absent optionals are left out.
struct CanonicalWriter {
    var out: [UInt8] = []
    /// No member written yet in the innermost object.
    var first = true
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    mutating func open() {
        out.append(UInt8(ascii: "{"))
        first = true
    }

    mutating func close() {
        out.append(UInt8(ascii: "}"))
        first = false
    }

    mutating func key(_ k: StaticString) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        k.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    mutating func field(_ k: StaticString, _ v: String?) {
        guard let v else { return }
        key(k)
        string(v)
    }

    mutating func field(_ k: StaticString, _ v: Int64?) {
        guard let v else { return }
        key(k)
        out.append(contentsOf: String(v).utf8)
    }

    mutating func field(_ k: StaticString, _ v: Double) {
        key(k)
        let d = v.description
        out.append(contentsOf: d.hasSuffix(".0") ? d.utf8.dropLast(2) : d.utf8[...])
    }

    mutating func string(_ s: String) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0..<0x20:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), Self.hex[Int(b >> 4)], Self.hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
