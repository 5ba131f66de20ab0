/// Promotion codes: 10 random symbols from an alphabet without look-alikes, then a check symbol that catches every
/// single-symbol typo and every swap of two neighbours (weighted sum mod 31, a prime).
public enum PromoCode {
    /// 31 symbols: digits and capitals without 0 O 1 I L.
    public static let alphabet = Array("23456789ABCDEFGHJKMNPQRSTUVWXYZ")
    public static let bodyLength = 10
    static let index: [Character: Int] = Dictionary(uniqueKeysWithValues: alphabet.enumerated().map { ($1, $0) })

    /// A code from random bytes (the caller's cryptographic source): 10 symbols + check, shown as XXXXX-XXXXXX.
    /// Bytes >= 248 are skipped (248 = 8 * 31) so every symbol is equally likely; nil when `random` ran short.
    public static func make(random: [UInt8]) -> String? {
        var body: [Character] = []
        for b in random where b < 248 {
            body.append(alphabet[Int(b) % 31])
            if body.count == bodyLength { break }
        }
        guard body.count == bodyLength else { return nil }
        body.append(alphabet[check(body)])
        return String(body)
    }

    static func check(_ body: [Character]) -> Int {
        var sum = 0
        for (i, c) in body.enumerated() { sum += (i + 1) * (index[c] ?? 0) }
        return sum % 31
    }

    /// The canonical form of what a person typed (case, spaces and dashes ignored, O->0 style confusions are not
    /// guessed), or nil when it is not a well-formed code with a correct check symbol.
    public static func normalise(_ typed: String) -> String? {
        let chars = typed.uppercased().filter { $0 != " " && $0 != "-" }
        guard chars.count == bodyLength + 1, chars.allSatisfy({ index[$0] != nil }) else { return nil }
        let a = Array(chars)
        guard check(Array(a[..<bodyLength])) == index[a[bodyLength]]! else { return nil }
        return String(a)
    }

    /// `ABCDE-FGHJK7`, for print; `normalise` reads it back.
    public static func display(_ code: String) -> String {
        String(code.prefix(5)) + "-" + String(code.dropFirst(5))
    }

    /// First three symbols and `****`, for logs and audit rows.
    public static func masked(_ code: String) -> String { String(code.prefix(3)) + "****" }
}
