/// The platforms' request signatures (FORMATS.md section 9), in one place, pinned by golden vectors
/// in OCSSPlatformsTests.
public enum Signatures {
    /// Taobao TOP: `md5` = MD5(secret + sorted(k+v) + secret); `hmac` = HMAC-MD5(secret, sorted(k+v));
    /// `hmac-sha256` likewise with SHA-256. Upper-case hex. `sign` itself is excluded.
    public static func top(_ params: [String: String], secret: String, method: String) -> String {
        let joined = params.filter { $0.key != "sign" && !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { $0.key + $0.value }.joined()
        let bytes: [UInt8]
        switch method {
        case "hmac": bytes = Crypto.hmacMD5(key: Array(secret.utf8), message: Array(joined.utf8))
        case "hmac-sha256": bytes = Crypto.hmacSHA256(key: Array(secret.utf8), message: Array(joined.utf8))
        default: bytes = Crypto.md5(Array((secret + joined + secret).utf8))
        }
        return Crypto.hex(bytes).uppercased()
    }

    /// Meituan 外卖: MD5(url + "?" + sorted(k=v) joined by & + secret), lower-case hex; `sig` excluded.
    /// `url` is the request URL without its query.
    public static func meituan(url: String, _ params: [String: String], secret: String) -> String {
        let q = params.filter { $0.key != "sig" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        return Crypto.hex(Crypto.md5(Array((url + "?" + q + secret).utf8)))
    }

    /// Ele.me open platform API: MD5(action + token + sorted(k=v of metas and params, v as JSON) + secret), upper hex.
    public static func eleme(action: String, token: String, _ pairs: [String: String], secret: String) -> String {
        let joined = pairs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined()
        return Crypto.hex(Crypto.md5(Array((action + token + joined + secret).utf8))).uppercased()
    }

    /// Youzan push `Event-Sign`: MD5(client_id + body + client_secret), lower hex.
    public static func youzanPush(clientID: String, body: [UInt8], secret: String) -> String {
        Crypto.hex(Crypto.md5(Array(clientID.utf8) + body + Array(secret.utf8)))
    }

    /// Shopify webhook `X-Shopify-Hmac-Sha256`: base64(HMAC-SHA256(secret, body)).
    public static func shopify(body: [UInt8], secret: String) -> String {
        Crypto.base64(Crypto.hmacSHA256(key: Array(secret.utf8), message: body))
    }
}
