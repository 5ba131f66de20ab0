import FoundationEssentials
import OCSSCore

/// An HTTP request for a platform, built and signed here, sent by the app's outbox dispatcher.
public struct OutboundRequest: Sendable, Equatable {
    public var method: String
    public var url: String
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: String, url: String, headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// What the merchant configured for calling a platform's API. Secrets are never logged or returned.
public struct PlatformCredentials: Sendable, Codable, Equatable {
    /// API root, e.g. `https://eco.taobao.com` or `https://SHOP.myshopify.com` (a fake server in tests).
    public var base_url: String
    public var app_key: String?
    public var app_secret: String?
    /// Shopify/Youzan access token, Ele.me token.
    public var access_token: String?
    /// Taobao `session` (the seller's authorisation).
    public var session: String?
    /// Taobao: `md5` (default), `hmac` or `hmac-sha256`.
    public var sign_method: String?
    /// Meituan signs pushes over the callback URL it was given (ours, as the platform sees it).
    public var callback_url: String?

    public init(
        base_url: String, app_key: String? = nil, app_secret: String? = nil, access_token: String? = nil,
        session: String? = nil, sign_method: String? = nil, callback_url: String? = nil
    ) {
        self.base_url = base_url
        self.app_key = app_key
        self.app_secret = app_secret
        self.access_token = access_token
        self.session = session
        self.sign_method = sign_method
        self.callback_url = callback_url
    }
}

/// One customer-visible step to report.
public struct StatusUpdate: Sendable, Equatable {
    /// `accepted`, `shipped`, `delivered` or `cancelled`.
    public var event: String
    public var platformOrderID: String
    /// The platform's logistics company code (the store sends the code the platform expects).
    public var carrier: String?
    public var trackingNumber: String?
    /// Unix seconds.
    public var at: Double
    public var reason: String?

    public init(event: String, platformOrderID: String, carrier: String? = nil, trackingNumber: String? = nil, at: Double, reason: String? = nil) {
        self.event = event
        self.platformOrderID = platformOrderID
        self.carrier = carrier
        self.trackingNumber = trackingNumber
        self.at = at
        self.reason = reason
    }
}

/// A status call that cannot be built (missing credential or field).
public struct StatusCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// Percent-encoding for query strings and forms (RFC 3986 unreserved kept).
func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(b))
        default:
            let h = String(b, radix: 16, uppercase: true)
            out += "%" + (h.count == 1 ? "0" + h : h)
        }
    }
    return out
}

func formEncode(_ pairs: [(String, String)]) -> String {
    pairs.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
}

/// `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai (UTC+8, no DST), as the Chinese platforms want it.
public func shanghaiTime(_ epoch: Double) -> String { Timestamps.local(epoch) }

func jsonBytes(_ value: [String: String]) -> [UInt8] {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? Array(enc.encode(value))) ?? []
}
