import OCSSCore
import OCSSTestSupport
import Testing

@Suite struct PhoneNumberTests {
    @Test(arguments: [
        ("13800138000", "+8613800138000"), ("+86 138-0013-8000", "+8613800138000"), ("0086 13800138000", "+8613800138000"),
        ("86-13800138000", "+8613800138000"), ("(+86) 138 0013 8000", "+8613800138000"), ("0571-88888888", "+8657188888888"),
        ("+1 415 555 2671", "+14155552671"), ("+852 2123 4567", "+85221234567"),
    ])
    func normalisesToE164(_ raw: String, _ e164: String) {
        #expect(PhoneNumber.e164(raw) == e164, "\(raw)")
    }

    @Test(arguments: ["138****8000", "136*******5", "12345", "", "abc", "1380013800012345678", "+0123456789", "99999"])
    func refusesMaskedAndMalformed(_ raw: String) {
        #expect(PhoneNumber.e164(raw) == nil, "\(raw)")
    }

    @Test func masksTheMiddle() {
        #expect(PhoneNumber.masked("+8613800138000") == "+86 138****8000")
        #expect(AddressMask.masked("浙江省杭州市西湖区文三路398号", names: GeoNames(province: "浙江省", city: "杭州市", district: "西湖区")) == "浙江省杭州市西湖区****")
        #expect(AddressMask.masked("上海市浦东新区世纪大道100号", names: GeoNames(province: "上海市", city: "上海市", district: "浦东新区")) == "上海市浦东新区****")
        #expect(AddressMask.name("张三丰") == "张*")
    }
}

@Suite struct PromoCodeTests {
    @Test func codesUseTheUnambiguousAlphabetAndCheck() throws {
        var rng = SplitMix64(seed: 7)
        var seen = Set<String>()
        for _ in 0..<2000 {
            let bytes = (0..<24).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let c = try #require(PromoCode.make(random: bytes))
            #expect(c.count == 11)
            #expect(!c.contains(where: { "01OIL".contains($0) }))
            #expect(PromoCode.normalise(c) == c)
            #expect(PromoCode.normalise(PromoCode.display(c).lowercased()) == c)
            seen.insert(c)
        }
        #expect(seen.count == 2000)
    }

    @Test func everySingleTypoAndNeighbourSwapIsCaught() throws {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<200 {
            let c = Array(try #require(PromoCode.make(random: (0..<24).map { _ in UInt8(truncatingIfNeeded: rng.next()) })))
            for i in c.indices {
                for a in PromoCode.alphabet where a != c[i] {
                    var t = c
                    t[i] = a
                    #expect(PromoCode.normalise(String(t)) == nil)
                }
                if i + 1 < c.count && c[i] != c[i + 1] {
                    var t = c
                    t.swapAt(i, i + 1)
                    #expect(PromoCode.normalise(String(t)) == nil)
                }
            }
        }
    }

    @Test func shortRandomnessIsRefusedNotPadded() {
        #expect(PromoCode.make(random: [UInt8](repeating: 255, count: 24)) == nil)
        #expect(PromoCode.make(random: [1, 2, 3]) == nil)
    }
}
