/// A QR code (ISO/IEC 18004) for a short text such as a pairing link: byte mode, error correction level M (15% of the
/// symbol may be damaged), versions 1 to 10 (up to 213 bytes), the mask with the lowest penalty. Drawn as SVG by ocss
/// itself, so the admin's screen needs nothing from outside. The construction follows the specification's steps;
/// Project Nayuki's QR Code generator is the reference this was checked against.
public struct QRCode: Sendable {
    /// The modules, row by row: `true` is dark. `size` × `size`, without the quiet zone.
    public let modules: [[Bool]]
    public let version: Int
    public let mask: Int
    public var size: Int { modules.count }

    /// Level M block structure per version: (error-correction codewords per block, data codewords of each block).
    static let blocks: [(ec: Int, data: [Int])] = [
        (10, [16]), (16, [28]), (26, [44]), (18, [32, 32]), (24, [43, 43]), (16, [27, 27, 27, 27]), (18, [31, 31, 31, 31]),
        (22, [38, 38, 39, 39]), (22, [36, 36, 36, 37, 37]), (26, [43, 43, 43, 43, 44]),
    ]
    static let alignment: [[Int]] = [
        [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50],
    ]

    /// nil when the text is longer than a version 10 symbol holds.
    public init?(text: String) {
        let bytes = Array(text.utf8)
        var chosen: Int?
        for v in 1...10 {
            let capacityBits = QRCode.blocks[v - 1].data.reduce(0, +) * 8
            if 4 + (v < 10 ? 8 : 16) + bytes.count * 8 <= capacityBits {
                chosen = v
                break
            }
        }
        guard let version = chosen else { return nil }
        var grid = Grid(version: version)
        grid.drawFunctionPatterns()
        grid.drawCodewords(QRCode.codewords(bytes, version: version))
        var best: (mask: Int, penalty: Int, grid: Grid)?
        for mask in 0..<8 {
            var g = grid
            g.applyMask(mask)
            g.drawFormatBits(mask: mask)
            let p = g.penalty()
            if best == nil || p < best!.penalty { best = (mask, p, g) }
        }
        self.version = version
        mask = best!.mask
        modules = best!.grid.modules
    }

    /// The data codewords (mode, count, bytes, terminator, padding) split into blocks, each followed by its
    /// Reed-Solomon codewords, interleaved as the symbol stores them.
    static func codewords(_ bytes: [UInt8], version: Int) -> [UInt8] {
        let (ecLength, dataLengths) = blocks[version - 1]
        let capacity = dataLengths.reduce(0, +)
        var bits: [Bool] = []
        func append(_ value: Int, _ count: Int) { for i in stride(from: count - 1, through: 0, by: -1) { bits.append((value >> i) & 1 == 1) } }
        append(0b0100, 4)
        append(bytes.count, version < 10 ? 8 : 16)
        for b in bytes { append(Int(b), 8) }
        append(0, min(4, capacity * 8 - bits.count))
        append(0, (8 - bits.count % 8) % 8)
        var data: [UInt8] = stride(from: 0, to: bits.count, by: 8).map { i in
            bits[i..<i + 8].reduce(UInt8(0)) { ($0 << 1) | ($1 ? 1 : 0) }
        }
        var pad: UInt8 = 0xEC
        while data.count < capacity {
            data.append(pad)
            pad = pad == 0xEC ? 0x11 : 0xEC
        }
        let divisor = ReedSolomon.divisor(degree: ecLength)
        var dataBlocks: [[UInt8]] = []
        var start = 0
        for n in dataLengths {
            dataBlocks.append(Array(data[start..<start + n]))
            start += n
        }
        let ecBlocks = dataBlocks.map { ReedSolomon.remainder($0, divisor: divisor) }
        var out: [UInt8] = []
        for i in 0..<(dataLengths.max() ?? 0) { for b in dataBlocks where i < b.count { out.append(b[i]) } }
        for i in 0..<ecLength { for b in ecBlocks { out.append(b[i]) } }
        return out
    }

    /// An SVG drawing with the 4-module quiet zone, `moduleSize` pixels a module.
    public func svg(moduleSize: Int = 4) -> String {
        let n = size + 8
        var path = ""
        for (y, row) in modules.enumerated() {
            for (x, dark) in row.enumerated() where dark { path += "M\(x + 4) \(y + 4)h1v1h-1z" }
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(n) \(n)\" width=\"\(n * moduleSize)\" height=\"\(n * moduleSize)\""
            + " shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\"><rect width=\"\(n)\" height=\"\(n)\" fill=\"#fff\"/>"
            + "<path fill=\"#000\" d=\"\(path)\"/></svg>"
    }

    /// The symbol as a plain PBM image (P1), `scale` pixels a module, quiet zone included: what a decoder reads.
    public func pbm(scale: Int = 4) -> String {
        let n = (size + 8) * scale
        var out = "P1\n\(n) \(n)\n"
        for py in 0..<n {
            var line = ""
            for px in 0..<n {
                let x = px / scale - 4, y = py / scale - 4
                line += (x >= 0 && y >= 0 && x < size && y < size && modules[y][x]) ? "1" : "0"
            }
            out += line + "\n"
        }
        return out
    }
}

/// The module grid while the symbol is built: which modules are function patterns (never masked or written over).
struct Grid {
    var modules: [[Bool]]
    var isFunction: [[Bool]]
    let version: Int
    var size: Int { modules.count }

    init(version: Int) {
        self.version = version
        let n = version * 4 + 17
        modules = Array(repeating: Array(repeating: false, count: n), count: n)
        isFunction = modules
    }

    mutating func set(_ x: Int, _ y: Int, _ dark: Bool) {
        modules[y][x] = dark
        isFunction[y][x] = true
    }

    mutating func drawFunctionPatterns() {
        for i in 0..<size {
            set(6, i, i % 2 == 0)
            set(i, 6, i % 2 == 0)
        }
        for (cx, cy) in [(3, 3), (size - 4, 3), (3, size - 4)] {
            for dy in -4...4 {
                for dx in -4...4 {
                    let x = cx + dx, y = cy + dy
                    guard x >= 0, x < size, y >= 0, y < size else { continue }
                    let d = max(abs(dx), abs(dy))
                    set(x, y, d != 2 && d != 4)
                }
            }
        }
        let centres = QRCode.alignment[version - 1]
        for (i, cy) in centres.enumerated() {
            for (j, cx) in centres.enumerated() {
                // Not where a finder pattern is.
                if (i == 0 && j == 0) || (i == 0 && j == centres.count - 1) || (i == centres.count - 1 && j == 0) { continue }
                for dy in -2...2 { for dx in -2...2 { set(cx + dx, cy + dy, max(abs(dx), abs(dy)) != 1) } }
            }
        }
        drawFormatBits(mask: 0)  // reserves the format areas; drawn again with the chosen mask
        if version >= 7 {
            var rem = version
            for _ in 0..<12 { rem = (rem << 1) ^ ((rem >> 11) * 0x1F25) }
            let bits = version << 12 | rem
            for i in 0..<18 {
                let dark = (bits >> i) & 1 == 1
                let a = size - 11 + i % 3, b = i / 3
                set(a, b, dark)
                set(b, a, dark)
            }
        }
    }

    /// Error-correction level M (format bits 00) and the mask, BCH-protected and masked with 0x5412, in both copies,
    /// and the dark module.
    mutating func drawFormatBits(mask: Int) {
        let data = 0 << 3 | mask
        var rem = data
        for _ in 0..<10 { rem = (rem << 1) ^ ((rem >> 9) * 0x537) }
        let bits = (data << 10 | rem) ^ 0x5412
        func bit(_ i: Int) -> Bool { (bits >> i) & 1 == 1 }
        for i in 0...5 { set(8, i, bit(i)) }
        set(8, 7, bit(6))
        set(8, 8, bit(7))
        set(7, 8, bit(8))
        for i in 9..<15 { set(14 - i, 8, bit(i)) }
        for i in 0..<8 { set(size - 1 - i, 8, bit(i)) }
        for i in 8..<15 { set(8, size - 15 + i, bit(i)) }
        set(8, size - 8, true)
    }

    /// The codewords' bits in the zigzag order: two-module columns from the right, up then down, skipping the
    /// vertical timing pattern's column.
    mutating func drawCodewords(_ data: [UInt8]) {
        var i = 0
        var right = size - 1
        while right >= 1 {
            if right == 6 { right = 5 }
            for vert in 0..<size {
                for j in 0..<2 {
                    let x = right - j
                    let upward = (right + 1) & 2 == 0
                    let y = upward ? size - 1 - vert : vert
                    if !isFunction[y][x] && i < data.count * 8 {
                        modules[y][x] = (data[i >> 3] >> (7 - (i & 7))) & 1 == 1
                        i += 1
                    }
                }
            }
            right -= 2
        }
    }

    mutating func applyMask(_ mask: Int) {
        for y in 0..<size {
            for x in 0..<size where !isFunction[y][x] {
                let flip: Bool
                switch mask {
                case 0: flip = (x + y) % 2 == 0
                case 1: flip = y % 2 == 0
                case 2: flip = x % 3 == 0
                case 3: flip = (x + y) % 3 == 0
                case 4: flip = (x / 3 + y / 2) % 2 == 0
                case 5: flip = x * y % 2 + x * y % 3 == 0
                case 6: flip = (x * y % 2 + x * y % 3) % 2 == 0
                default: flip = ((x + y) % 2 + x * y % 3) % 2 == 0
                }
                if flip { modules[y][x].toggle() }
            }
        }
    }

    /// The specification's penalty: runs of five or more in a row or column, 2×2 blocks of one colour, finder-like
    /// runs, and an uneven share of dark modules. The lowest wins.
    func penalty() -> Int {
        var score = 0
        func lines(_ vertical: Bool) -> [[Bool]] {
            vertical ? (0..<size).map { x in (0..<size).map { modules[$0][x] } } : modules
        }
        let finderLike: [Bool] = [true, false, true, true, true, false, true, false, false, false, false]
        for line in lines(false) + lines(true) {
            var run = 1
            for i in 1..<line.count {
                if line[i] == line[i - 1] {
                    run += 1
                } else {
                    if run >= 5 { score += run - 2 }
                    run = 1
                }
            }
            if run >= 5 { score += run - 2 }
            if line.count >= 11 {
                for i in 0...(line.count - 11) {
                    let window = Array(line[i..<i + 11])
                    if window == finderLike || window == finderLike.reversed() { score += 40 }
                }
            }
        }
        for y in 0..<(size - 1) {
            for x in 0..<(size - 1) {
                let c = modules[y][x]
                if c == modules[y][x + 1] && c == modules[y + 1][x] && c == modules[y + 1][x + 1] { score += 3 }
            }
        }
        let dark = modules.reduce(0) { $0 + $1.count(where: { $0 }) }
        let total = size * size
        score += (abs(dark * 20 - total * 10) + total - 1) / total * 10
        return score
    }
}

/// Reed-Solomon error correction over GF(2^8) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
enum ReedSolomon {
    static func multiply(_ x: UInt8, _ y: UInt8) -> UInt8 {
        var z = 0
        for i in stride(from: 7, through: 0, by: -1) {
            z = (z << 1) ^ ((z >> 7) * 0x11D)
            z ^= Int((y >> UInt8(i)) & 1) * Int(x)
        }
        return UInt8(z & 0xFF)
    }

    /// The generator polynomial's coefficients (highest first, leading 1 dropped) for `degree` check codewords.
    static func divisor(degree: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: degree)
        result[degree - 1] = 1
        var root: UInt8 = 1
        for _ in 0..<degree {
            for j in 0..<degree {
                result[j] = multiply(result[j], root)
                if j + 1 < degree { result[j] ^= result[j + 1] }
            }
            root = multiply(root, 0x02)
        }
        return result
    }

    static func remainder(_ data: [UInt8], divisor: [UInt8]) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: divisor.count)
        for b in data {
            let factor = b ^ result.removeFirst()
            result.append(0)
            for i in 0..<result.count { result[i] ^= multiply(divisor[i], factor) }
        }
        return result
    }
}
