internal import CCrypto

/// Hashes, MACs and random tokens from libcrypto, for the app and the platform adapters.
public enum Crypto {
    /// SHA-256 of `bytes`, lower-case hex.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { b in _ = SHA256(b.baseAddress, b.count, &out) }
        return hex(out)
    }

    /// HMAC-SHA256 of `message` under `key`, raw bytes.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] { hmac(EVP_sha256(), key: key, message: message) }

    /// HMAC-MD5 of `message` under `key`, raw bytes (Taobao TOP's `hmac` sign method).
    public static func hmacMD5(key: [UInt8], message: [UInt8]) -> [UInt8] { hmac(EVP_md5(), key: key, message: message) }

    static func hmac(_ md: OpaquePointer?, key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        key.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                _ = HMAC(md, k.baseAddress, Int32(k.count), m.baseAddress, m.count, &out, &len)
            }
        }
        return Array(out.prefix(Int(len)))
    }

    /// MD5 digest (the Chinese platforms' signatures; not for security on its own).
    public static func md5(_ bytes: [UInt8]) -> [UInt8] { digest(EVP_md5(), bytes) }

    /// SHA-1 digest (Meituan 配送 signatures).
    public static func sha1(_ bytes: [UInt8]) -> [UInt8] { digest(EVP_sha1(), bytes) }

    static func digest(_ md: OpaquePointer?, _ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        bytes.withUnsafeBufferPointer { b in _ = EVP_Digest(b.baseAddress, b.count, &out, &len, md, nil) }
        return Array(out.prefix(Int(len)))
    }

    /// Base64 of `bytes` (Shopify and WooCommerce signatures).
    public static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out = [UInt8]()
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? table[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `count` bytes from the operating system's CSPRNG via libcrypto. Traps if it cannot be had:
    /// no token may ever come from a weak source.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let rc = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(rc == 1, "RAND_bytes failed")
        return out
    }

    /// A bearer token: prefix plus 32 random bytes in hex.
    public static func token(prefix: String) -> String { prefix + hex(randomBytes(32)) }

    /// Constant-time equality of two byte strings (length leaks, content does not).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8]()
        s.reserveCapacity(bytes.count * 2)
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0xf)])
        }
        return String(decoding: s, as: UTF8.self)
    }
}
