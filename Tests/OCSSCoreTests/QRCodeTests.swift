import Foundation
import OCSSCore
import OCSSTestSupport
import Testing

/// Issue 21: the pairing link's QR code is drawn by ocss. A symbol's structure is checked here; `StoreAppTests`
/// has zbar read the real thing.
@Suite struct QRCodeTests {
    @Test func versionGrowsWithTheTextAndStopsAtTen() throws {
        #expect(QRCode(text: "ocss")?.version == 1)
        #expect(QRCode(text: String(repeating: "a", count: 14))?.version == 1)
        #expect(QRCode(text: String(repeating: "a", count: 15))?.version == 2)
        #expect(QRCode(text: String(repeating: "a", count: 213))?.version == 10)
        #expect(QRCode(text: String(repeating: "a", count: 214)) == nil)
        let q = try #require(QRCode(text: "http://127.0.0.1:8080/store/pair?code=pair_0123456789abcdef0123456789abcdef01234567"))
        #expect(q.size == q.version * 4 + 17)
        // Finder patterns in three corners: a dark ring, a light ring, a dark 3x3 centre.
        for (x, y) in [(0, 0), (q.size - 7, 0), (0, q.size - 7)] {
            #expect(q.modules[y][x] && q.modules[y + 6][x + 6] && !q.modules[y + 1][x + 1] && q.modules[y + 3][x + 3])
        }
        // The timing patterns alternate.
        #expect((8..<(q.size - 8)).allSatisfy { q.modules[6][$0] == ($0 % 2 == 0) && q.modules[$0][6] == ($0 % 2 == 0) })
        #expect(q.svg().hasPrefix("<svg") && q.pbm().hasPrefix("P1\n"))
    }

    /// zbar (Debian's zbar-tools, installed by the test dependencies) reads back what was encoded, at every version:
    /// the one check that the whole symbol (codewords, interleaving, error correction, format and version bits,
    /// masking) is right.
    @Test(arguments: [1, 10, 14, 30, 60, 84, 100, 120, 150, 180, 213])
    func zbarReadsItBack(length: Int) throws {
        let zbar = "/usr/bin/zbarimg"
        guard FileManager.default.isExecutableFile(atPath: zbar) else {
            Issue.record("zbarimg is not installed (scripts/install-deps.sh test installs zbar-tools)")
            return
        }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789:/?=._-")
        var g = SplitMix64(seed: UInt64(length))
        let text = String((0..<length).map { _ in alphabet.randomElement(using: &g)! })
        let q = try #require(QRCode(text: text))
        let dir = TempDir("ocss-qr")
        defer { dir.remove() }
        let path = dir.file("q.pbm")
        try q.pbm(scale: 4).write(toFile: path, atomically: true, encoding: .ascii)
        let read = try runProgram(zbar, ["--raw", "-q", path])
        #expect(read.status == 0 && read.out.trimmingCharacters(in: .newlines) == text, "version \(q.version) mask \(q.mask): '\(read.out)'")
    }
}
