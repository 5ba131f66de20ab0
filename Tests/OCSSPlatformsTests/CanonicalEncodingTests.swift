import OCSSCore
@testable import OCSSPlatforms
import OCSSTestSupport
import Testing

/// The hand-written canonical encoder must give Foundation's sorted-key bytes exactly: stored body hashes
/// (idempotency) were computed with `JSONEncoder`, and a retry after an upgrade must still match.
@Suite struct CanonicalEncodingTests {
    static let pieces = [
        "a", "Z", "中文", "😀", "é", "\"", "\\", "/", "\n", "\t", "\r", "\u{8}", "\u{c}", "\u{0}", "\u{1f}",
        "\u{7f}", "\u{2028}", " ", "0", "路88号", "'", "<>&",
    ]

    static func text(_ g: inout SplitMix64) -> String {
        (0..<Int.random(in: 0...6, using: &g)).map { _ in pieces.randomElement(using: &g)! }.joined()
    }

    static func maybe<T>(_ g: inout SplitMix64, _ f: (inout SplitMix64) -> T) -> T? { Bool.random(using: &g) ? f(&g) : nil }

    static func number(_ g: inout SplitMix64) -> Double {
        switch Int.random(in: 0..<5, using: &g) {
        case 0: Double(Int.random(in: -180...180, using: &g))
        case 1: Double.random(in: -90...90, using: &g)
        case 2: (Double.random(in: -180...180, using: &g) * 1e6).rounded() / 1e6
        case 3: [0.0, -0.0, 1e-7, 1.5e-5, 1e16, 1e21, 123456789012345.6, Double.leastNonzeroMagnitude].randomElement(using: &g)!
        default: Double(Float.random(in: -1...1, using: &g))
        }
    }

    static func order(_ g: inout SplitMix64) -> CanonicalOrder {
        let lines = (0..<Int.random(in: 0...4, using: &g)).map { _ in
            CanonicalOrder.Line(
                sku: maybe(&g, text), platform_sku_id: maybe(&g, text), quantity: Int.random(in: -5...100_000, using: &g),
                unit_price_minor: maybe(&g) { Int64.random(in: Int64.min...Int64.max, using: &$0) })
        }
        let coordinates = maybe(&g) { g in CanonicalOrder.Coordinates(lat: number(&g), lon: number(&g), crs: text(&g)) }
        var o = CanonicalOrder(
            platform: text(&g), channel: maybe(&g, text), event: text(&g), platform_order_id: text(&g), idempotency_key: text(&g),
            buyer: maybe(&g) { g in .init(name: maybe(&g, text), phone: maybe(&g, text), phone_extension: maybe(&g, text)) },
            shipping: .init(
                country: maybe(&g, text), province: maybe(&g, text), city: maybe(&g, text), district: maybe(&g, text),
                town: maybe(&g, text), detail: maybe(&g, text), postal_code: maybe(&g, text), text: maybe(&g, text),
                coordinates: coordinates, address_precision: maybe(&g, text)),
            fulfillment: maybe(&g, text), platform_store_id: maybe(&g, text), lines: lines, currency: maybe(&g, text),
            total_minor: maybe(&g) { Int64.random(in: -1_000_000...1_000_000, using: &$0) },
            shipping_fee_minor: maybe(&g) { Int64.random(in: 0...10_000, using: &$0) }, created_at: maybe(&g, text), paid_at: maybe(&g, text))
        // What only staff read (CANONICAL.md rule 9), in the slots where the key order could go wrong.
        o.delivery_by = maybe(&g, text)
        o.pickup_no = maybe(&g, text)
        o.remark = maybe(&g, text)
        o.expected_at = maybe(&g, text)
        for i in o.lines.indices {
            o.lines[i].title = maybe(&g, text)
            o.lines[i].spec = maybe(&g, text)
        }
        return o
    }

    /// The body hash is taken over the order without what only staff read: the bytes are those of the same order
    /// with those fields absent, which are the bytes ocss hashed before it copied them.
    @Test func decisionBytesLeaveOutOnlyWhatStaffRead() {
        var g = SplitMix64(seed: 0x0C55_2121)
        for _ in 0..<500 {
            let o = Self.order(&g)
            var bare = o
            (bare.delivery_by, bare.pickup_no, bare.remark, bare.expected_at) = (nil, nil, nil, nil)
            for i in bare.lines.indices { (bare.lines[i].title, bare.lines[i].spec) = (nil, nil) }
            #expect(CanonicalJSON.decisionBytes(o) == CanonicalJSON.encode(bare))
            #expect(o.hasStaffFields == (CanonicalJSON.encode(o) != CanonicalJSON.encode(bare)))
        }
    }

    @Test func sameBytesAsFoundationOnRandomOrders() {
        var g = SplitMix64(seed: 0x0C55_2026)
        for n in 0..<3000 {
            let o = Self.order(&g)
            let ours = CanonicalJSON.encode(o)
            let foundation = CanonicalJSON.encodeValue(o)
            #expect(ours == foundation, "case \(n): \(String(decoding: ours, as: UTF8.self)) vs \(String(decoding: foundation, as: UTF8.self))")
            if ours != foundation { return }
        }
    }

    @Test func roundTripsThroughTheDecoder() throws {
        let o = CanonicalOrder(
            platform: "direct", event: "order.created", platform_order_id: "A-1", idempotency_key: "k\"1\n",
            buyer: .init(name: "张三", phone: "13800138000"),
            shipping: .init(
                province: "上海市", text: "上海市/浦东新区\t世纪大道",
                coordinates: .init(lat: 31.2304, lon: 121.4737, crs: "GCJ-02")),
            lines: [.init(sku: "SKU-1", platform_sku_id: nil, quantity: 2, unit_price_minor: 990)], total_minor: 1980)
        #expect(try CanonicalJSON.decodeOrder(CanonicalJSON.encode(o)) == o)
    }
}

/// Foundation calls a number that does not fit its integer field "not valid JSON" and gives no path; the decoder
/// names the field.
@Suite struct MisfitNumberTests {
    static func order(quantity: String, total: String = "100", lat: String = "30.5") -> [UInt8] {
        Array(
            ("{\"platform\":\"direct\",\"event\":\"order.paid\",\"platform_order_id\":\"1\",\"idempotency_key\":\"k\","
                + "\"shipping\":{\"text\":\"x\",\"coordinates\":{\"lat\":\(lat),\"lon\":120.25,\"crs\":\"WGS84\"}},"
                + "\"lines\":[{\"sku\":\"A\",\"quantity\":1},{\"sku\":\"B\",\"quantity\":\(quantity)}],\"total_minor\":\(total)}").utf8)
    }

    func failure(_ body: [UInt8]) -> FieldError? {
        do { _ = try CanonicalJSON.decodeOrder(body); return nil } catch { return error }
    }

    @Test func aFractionOrAnOverflowNamesItsField() {
        #expect(failure(Self.order(quantity: "2")) == nil)
        #expect(failure(Self.order(quantity: "2.0")) == nil)
        for bad in ["1.5", "1e30", "123456789012345678901234"] {
            let e = failure(Self.order(quantity: bad))
            #expect(e?.field == "lines[1].quantity", "\(bad)")
            #expect(e?.message == "expected a whole number within 64 bits")
        }
        // The decoder's own failure is reported, not the first odd-looking number in the document (lat is fine).
        #expect(failure(Self.order(quantity: "2", total: "9.99", lat: "30.25"))?.field == "total_minor")
        // Not JSON at all stays "not valid JSON".
        let broken = failure(Array("{\"lines\":[1.5,".utf8))
        #expect(broken?.field == "")
        #expect(broken?.message == "body is not valid JSON")
    }

    @Test func pathsFollowKeysAndIndexes() {
        let tokens = CanonicalJSON.numberTokens(Array(#"{"a":[1,{"b":"x,y","c":-2.5e3}],"d\"e":{"f":[[7]]}}"#.utf8))
        #expect(tokens.map(\.path) == ["a[0]", "a[1].c", "d\\\"e.f[0][0]"])
    }
}
