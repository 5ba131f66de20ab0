public import OCSSCore
import FoundationEssentials

/// One inbound webhook delivery, as received: header names lower-cased, the raw body bytes.
public struct InboundMessage: Sendable {
    public var headers: [String: String]
    public var body: [UInt8]

    public init(headers: [String: String], body: [UInt8]) {
        var h: [String: String] = [:]
        for (k, v) in headers { h[k.lowercased()] = v }
        self.headers = h
        self.body = body
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// What a delivery means.
public enum AdapterOutcome: Sendable {
    /// An order event in canonical form (created, paid, cancelled, refund requested).
    case event(CanonicalOrder)
    /// Not an order event (a ping, an unrelated topic): acknowledge and ignore.
    case ignored(reason: String)
    /// Only an id came (Taobao TMC): fetch the order with the platform's signed detail API.
    case needsDetail(platformOrderID: String, topic: String)
}

/// Why a delivery was refused.
public struct AdapterError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case signature, payload }
    public var kind: Kind
    /// JSON path of the offending field, when there is one.
    public var field: String?
    public var message: String

    public init(_ kind: Kind, _ message: String, field: String? = nil) {
        self.kind = kind
        self.message = message
        self.field = field
    }

    public var description: String { message }
}

/// A platform's webhook: how to check it, what it says, and what the platform wants back.
public protocol PlatformAdapter: Sendable {
    var platform: String { get }
    /// Checks the signature over the raw bytes (or the platform's form values), in constant time,
    /// with what the merchant configured for the platform.
    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError)
    /// True when this delivery carries no signature by design (WooCommerce's ping).
    func isUnsignedPing(_ m: InboundMessage) -> Bool
    /// The canonical event, or why it is ignored.
    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome
    /// The exact success answer the platform expects (content type, body).
    var successBody: (contentType: String, body: String) { get }
    /// True when this delivery carries no platform signature and the merchant's connector forwards
    /// it with the ocss admin token instead (Taobao TMC, Pinduoduo frames, JD POP).
    func needsBearer(_ m: InboundMessage) -> Bool
    /// Content types the platform sends (prefixes); anything else is refused with 415.
    var contentTypes: [String] { get }
    /// The answer for this delivery: `successBody`, unless the platform wants a signed envelope.
    func reply(to m: InboundMessage, credentials: PlatformCredentials?) -> (contentType: String, body: String)
    /// The time the platform signed into this delivery (Unix seconds, nil when the field is missing or unreadable) and
    /// the field's name; nil for a platform that signs no time (Shopify, WooCommerce, Youzan) or a delivery the
    /// merchant's connector forwards. A signed time lets the service refuse a replayed old message.
    func signedTime(_ m: InboundMessage) -> (field: String, epochSeconds: Int64?)?
}

extension PlatformAdapter {
    public func isUnsignedPing(_ m: InboundMessage) -> Bool { false }
    public func needsBearer(_ m: InboundMessage) -> Bool { false }
    public var contentTypes: [String] { ["application/json"] }

    /// True when the delivery's Content-Type (if any) is one the platform sends.
    public func accepts(contentType: String?) -> Bool {
        guard let ct = contentType?.lowercased(), !ct.isEmpty else { return true }
        return contentTypes.contains { ct.hasPrefix($0) }
    }
    public func reply(to m: InboundMessage, credentials: PlatformCredentials?) -> (contentType: String, body: String) { successBody }
    public func signedTime(_ m: InboundMessage) -> (field: String, epochSeconds: Int64?)? { nil }
}

/// The adapters by platform name.
public enum Adapters {
    public static let all: [String: any PlatformAdapter] = [
        "shopify": ShopifyAdapter(),
        "woocommerce": WooCommerceAdapter(),
        "youzan": YouzanAdapter(),
        "meituan": MeituanAdapter(),
        "eleme": ElemeAdapter(),
        "taobao": TaobaoAdapter(),
        "pinduoduo": PinduoduoAdapter(),
        "jd": JDPopAdapter(),
        "jd_daojia": JDDaojiaAdapter(),
        "eleme_retail": ElemeRetailAdapter(),
    ]

    public static func adapter(for platform: String) -> (any PlatformAdapter)? { all[platform] }
}

/// Shared helpers for adapters.
enum AdapterSupport {
    /// base64(HMAC-SHA256(secret, body)) compared in constant time with `given`.
    static func verifyBase64HMAC(_ given: String?, body: [UInt8], secret: String?, header: String) throws(AdapterError) {
        guard let secret, !secret.isEmpty else {
            throw AdapterError(
                .signature,
                "no app_secret is configured for this platform: set it with PUT /v1/platforms/{platform}/credentials or the config file's platforms")
        }
        guard let given, !given.isEmpty else { throw AdapterError(.signature, "missing \(header) header", field: header) }
        let want = Signatures.shopify(body: body, secret: secret)
        guard Crypto.constantTimeEqual(Array(want.utf8), Array(given.trimmingSpaces().utf8)) else {
            throw AdapterError(.signature, "signature does not match", field: header)
        }
    }

    /// Optional decimal money text to minor units; a present value that is not money is a field error.
    static func money(_ text: String?, field: String) throws(AdapterError) -> Int64? {
        guard let text else { return nil }
        guard let v = Money.minorUnits(text) else { throw AdapterError(.payload, "not a decimal amount", field: field) }
        return v
    }

    static func requireSecret(_ c: PlatformCredentials?) throws(AdapterError) -> String {
        guard let s = c?.app_secret, !s.isEmpty else {
            throw AdapterError(
                .signature,
                "no app_secret is configured for this platform: set it with PUT /v1/platforms/{platform}/credentials or the config file's platforms")
        }
        return s
    }

    /// Percent-decoding as forms do (`+` is a space). Nil for malformed escapes.
    static func formDecode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "+") {
                bytes.append(32)
            } else if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// `a=1&b=2` to pairs, values decoded once.
    static func formFields(_ body: [UInt8]) throws(AdapterError) -> [String: String] {
        var out: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = formDecode(kv[0]), let v = formDecode(kv.count > 1 ? kv[1] : "") else {
                throw AdapterError(.payload, "malformed form encoding", field: String(kv[0]))
            }
            out[k] = v
        }
        return out
    }

    /// Masked or encrypted personal data (`$...$`, `136*******5`, JD's `AAS/...`): never stored as real.
    static func isMasked(_ s: String?) -> Bool {
        guard let s else { return false }
        return s.hasPrefix("$") || s.contains("****") || s.contains("***") || s.hasPrefix("AAS/")
    }

    static func decode<T: Decodable>(_ t: T.Type, _ body: [UInt8]) throws(AdapterError) -> T {
        do { return try CanonicalJSON.decode(t, body) } catch {
            throw AdapterError(.payload, error.message, field: error.field.isEmpty ? nil : error.field)
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }

    /// nil for an empty (or all-space) string.
    var nonEmpty: String? {
        let t = trimmingSpaces()
        return t.isEmpty ? nil : t
    }
}
