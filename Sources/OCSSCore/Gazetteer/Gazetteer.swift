/// The offline gazetteer: China's administrative units (2025-12-31 list) with seat points, their other names
/// (short forms, legacy names, abbreviations, pinyin and English), and the character tables the matcher needs.
///
/// Built once from the two TSV files in `geodata/` (see `scripts/build-gazetteer.py`), then immutable: the
/// matcher (`resolve`) reads it from any thread.
public final class Gazetteer: Geocoder, Sendable {
    // Units: current ones first (file order), then legacy units that keep their own seat.
    let codes: [Int64]
    let levels: [UInt8]  // 1 province, 2 city, 3 county, 4 township
    let parents: [Int32]  // -1 for provinces
    let names: [String]
    let lons: [Double]
    let lats: [Double]
    let pointLevels: [UInt8]  // the level whose seat the point is
    let legacyOf: [Int32]  // legacy unit -> current unit; -1 for current units

    let exact: SymbolTrie  // Chinese names, scalars after normalisation
    let sounds: SymbolTrie  // province/city/county short names as syllable ids (homophone typos)
    let latin: [String: [UInt32]]
    let countries: Set<String>
    let simplified: [UInt32]  // U+4E00..U+9FFF -> simplified scalar (0 = itself)
    let simplifiedOther: [UInt32: UInt32]
    let syllables: [UInt16]  // U+4E00..U+9FFF -> syllable id (0 = none)

    /// Units by level, for reports: provinces, cities, counties, townships, legacy seats.
    public let counts: (provinces: Int, cities: Int, counties: Int, townships: Int, legacy: Int, names: Int)

    /// How many of the unit's names are indexed; for the load report.
    public var unitCount: Int { codes.count }

    enum Kind: UInt32 {
        case full = 0, short = 1, alias = 2, wholeToken = 3, sound = 4, latin = 5
    }

    static let cjkBase: UInt32 = 0x4E00
    static let cjkEnd: UInt32 = 0x9FFF

    public enum LoadError: Error, CustomStringConvertible, Sendable {
        case malformed(file: String, line: Int, reason: String)
        case empty(file: String)

        public var description: String {
            switch self {
            case .malformed(let f, let l, let r): "\(f) line \(l): \(r)"
            case .empty(let f): "\(f) holds no units"
            }
        }
    }

    /// Parses `gazetteer.tsv` and `chars.tsv` (their bytes; reading files is the caller's job).
    public init(gazetteer: [UInt8], chars: [UInt8]) throws {
        var codes: [Int64] = [], levels: [UInt8] = [], parents: [Int32] = [], names: [String] = []
        var lons: [Double] = [], lats: [Double] = [], pointLevels: [UInt8] = [], legacyOf: [Int32] = []
        var pinyins: [String] = []
        var shorts: [String] = []
        var indexOf: [Int64: Int32] = [:]
        var aliases: [(Int32, String, String)] = []
        var legacy: [(Int32, String, String, Double, Double)] = []
        var countries = Set<String>()
        indexOf.reserveCapacity(45_000)

        try TSVRow.forEach(gazetteer) { f in
            func bad(_ why: String) -> LoadError { .malformed(file: "gazetteer.tsv", line: f.line, reason: why) }
            if f.equals(0, "U") {
                guard f.count == 10, let level = f.int(1), (1...4).contains(level), let code = f.int(2),
                    let lon = f.double(6), let lat = f.double(7)
                else { throw bad("expected U level code parent name short lon lat psrc pinyin") }
                var parent: Int32 = -1
                if !f.isEmpty(3) {
                    guard let pc = f.int(3), let p = indexOf[pc] else { throw bad("parent \(f.string(3)) not listed before its child") }
                    parent = p
                }
                let i = Int32(codes.count)
                indexOf[code] = i
                codes.append(code); levels.append(UInt8(level)); parents.append(parent); names.append(f.string(4))
                lons.append(lon); lats.append(lat); legacyOf.append(-1); pinyins.append(f.isEmpty(9) ? "" : f.string(9))
                shorts.append(f.isEmpty(5) ? "" : f.string(5))
                pointLevels.append(f.equals(8, "parent") && parent >= 0 ? pointLevels[Int(parent)] : UInt8(level))
            } else if f.equals(0, "A") {
                guard f.count == 4, let code = f.int(1), let u = indexOf[code] else { throw bad("alias of an unknown unit") }
                aliases.append((u, f.string(2), f.string(3)))
            } else if f.equals(0, "L") {
                guard f.count == 6, let code = f.int(1), let u = indexOf[code], let lon = f.double(4), let lat = f.double(5)
                else { throw bad("legacy unit of an unknown unit") }
                legacy.append((u, f.string(2), f.string(3), lon, lat))
            } else if f.equals(0, "X") {
                if f.count == 2 { countries.insert(f.string(1)) }
            } else if !f.equals(0, "N") {  // N: nationalities, already stripped from short names by the build
                throw bad("unknown row kind \(f.string(0))")
            }
        }
        guard !codes.isEmpty else { throw LoadError.empty(file: "gazetteer.tsv") }
        let currentCount = codes.count
        for (target, name, short, lon, lat) in legacy {
            codes.append(codes[Int(target)]); levels.append(levels[Int(target)]); parents.append(parents[Int(target)])
            names.append(name); lons.append(lon); lats.append(lat); pointLevels.append(levels[Int(target)])
            legacyOf.append(target); pinyins.append(""); shorts.append(short)
        }

        // Characters.
        let span = Int(Gazetteer.cjkEnd - Gazetteer.cjkBase) + 1
        var simplified = [UInt32](repeating: 0, count: span)
        var simplifiedOther: [UInt32: UInt32] = [:]
        var syllables = [UInt16](repeating: 0, count: span)
        var syllableID: [String: UInt16] = [:]
        try TSVRow.forEach(chars) { f in
            guard f.count == 3, let a = f.scalar(1), let b = f.scalar(2) else {
                throw LoadError.malformed(file: "chars.tsv", line: f.line, reason: "expected T|P char value")
            }
            if f.equals(0, "T") {
                if a >= Gazetteer.cjkBase && a <= Gazetteer.cjkEnd { simplified[Int(a - Gazetteer.cjkBase)] = b } else { simplifiedOther[a] = b }
            } else if f.equals(0, "P"), a >= Gazetteer.cjkBase && a <= Gazetteer.cjkEnd {
                let key = f.string(2)
                let id: UInt16
                if let known = syllableID[key] { id = known } else { id = UInt16(syllableID.count + 1); syllableID[key] = id }
                syllables[Int(a - Gazetteer.cjkBase)] = id
            }
        }

        self.codes = codes; self.levels = levels; self.parents = parents; self.names = names
        self.lons = lons; self.lats = lats; self.pointLevels = pointLevels; self.legacyOf = legacyOf
        self.countries = countries; self.simplified = simplified; self.simplifiedOther = simplifiedOther
        self.syllables = syllables

        // Name tries.
        var exact = SymbolTrie.Builder(expectedEdges: 200_000)
        var sounds = SymbolTrie.Builder(expectedEdges: 20_000)
        var latin: [String: [UInt32]] = [:]
        var nameCount = 0
        func normalised<S: StringProtocol>(_ s: S) -> [UInt32] {
            s.unicodeScalars.map { Gazetteer.simplify($0.value, simplified, simplifiedOther) }
        }
        func addSound<S: StringProtocol>(_ name: S, unit: Int32) {
            var ids: [UInt32] = []
            for s in name.unicodeScalars {
                let v = s.value
                guard v >= Gazetteer.cjkBase && v <= Gazetteer.cjkEnd, case let id = syllables[Int(v - Gazetteer.cjkBase)], id != 0 else { return }
                ids.append(UInt32(id))
            }
            if ids.count >= 2 { sounds.insert(ids, payload: UInt32(unit) | Kind.sound.rawValue << 24) }
        }
        func addLatin(_ key: String, unit: Int32) {
            let k = String(key.lowercased().unicodeScalars.filter { $0.properties.isAlphabetic && $0.isASCII })
            guard k.count >= 4 else { return }
            latin[k, default: []].append(UInt32(unit) | Kind.latin.rawValue << 24)
            nameCount += 1
        }
        for u in 0..<codes.count {
            let name = names[u], level = levels[u]
            let unit = Int32(u)
            exact.insert(normalised(name), payload: UInt32(unit) | (legacyOf[u] >= 0 ? Kind.alias : Kind.full).rawValue << 24)
            nameCount += 1
            let short = shorts[u]
            if !short.isEmpty {
                exact.insert(normalised(short), payload: UInt32(unit) | Kind.short.rawValue << 24)
                nameCount += 1
            }
            if level <= 3 && u < currentCount {
                if short.isEmpty { addSound(name, unit: unit) } else { addSound(short, unit: unit) }
                if !pinyins[u].isEmpty { addLatin(pinyins[u], unit: unit) }
            }
        }
        for (unit, name, kind) in aliases {
            if kind == "english" {
                addLatin(name, unit: unit)
            } else {
                let symbols = normalised(name)
                let k: Kind = symbols.count == 1 ? .wholeToken : .alias
                exact.insert(symbols, payload: UInt32(unit) | k.rawValue << 24)
                nameCount += 1
            }
        }
        self.exact = exact.freeze()
        self.sounds = sounds.freeze()
        self.latin = latin
        var c = (provinces: 0, cities: 0, counties: 0, townships: 0, legacy: legacy.count, names: nameCount)
        for u in 0..<currentCount {
            switch levels[u] {
            case 1: c.provinces += 1
            case 2: c.cities += 1
            case 3: c.counties += 1
            default: c.townships += 1
            }
        }
        self.counts = c
    }

    @inline(__always) static func simplify(_ v: UInt32, _ dense: [UInt32], _ other: [UInt32: UInt32]) -> UInt32 {
        if v >= cjkBase && v <= cjkEnd {
            let s = dense[Int(v - cjkBase)]
            return s == 0 ? v : s
        }
        if v < 0x3400 { return v }
        return other[v] ?? v
    }
}
