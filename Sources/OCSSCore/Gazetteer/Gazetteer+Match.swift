/// The matcher: normalise, find every name the text contains, then choose the most consistent chain of units
/// (province ⊃ city ⊃ county ⊃ township). Same-name units the text cannot tell apart are reported as alternatives
/// with a low confidence, never guessed.
extension Gazetteer {
    /// One name found in the text.
    struct Hit {
        var unit: Int32
        var weight: Float
        var start: Int32
        var end: Int32
        var kind: Kind
    }

    static let separator: UInt32 = 0
    // Road words: a short name right before them is a street (中山路, 北京东路), not the place.
    static let roadChars: Set<UInt32> = Set("路街道巷弄胡".unicodeScalars.map(\.value))
    static let bigChar: UInt32 = "大".unicodeScalars.first!.value
    static let roadWords: Set<String> = ["road", "rd", "street", "st", "avenue", "ave", "lane", "lu", "jie", "dajie", "dadao", "xiang", "hutong"]
    static let stopWords: Set<String> = [
        "district", "county", "city", "province", "prefecture", "autonomous", "region", "town", "township",
        "street", "road", "avenue", "lane", "lu", "qu", "shi", "sheng", "zhen", "xiang", "jiedao", "china", "prc",
        "no", "room", "building", "floor", "unit", "pr", "the", "of", "and", "new", "area", "zone",
    ]

    public func resolve(_ text: String) -> GeocodeOutcome {
        let (seq, words, found) = names(in: text)
        var hits = found
        var choice = choose(hits)
        if choice == nil || choice!.ambiguous || levels[Int(hits[choice!.hit].unit)] < 3 || choice!.contradicted {
            if scanSounds(seq, into: &hits) { choice = choose(hits) }
        }
        guard let c = choice else {
            return .miss(mentionsCountry(words) ? .foreignCountry : .noPlaceName)
        }
        return .match(result(c, hits))
    }

    // MARK: - Normalisation

    /// Full-width -> half-width, traditional -> simplified, ASCII letters gathered into lower-case words;
    /// every other character (digits, punctuation, spaces, letters) becomes one separator in `seq`.
    func normalise(_ text: String, into seq: inout [UInt32], words: inout [String]) {
        seq.reserveCapacity(text.utf8.count / 2 + 2)
        var word: [UInt8] = []
        func flushWord() {
            if !word.isEmpty {
                words.append(String(decoding: word, as: UTF8.self))
                word.removeAll(keepingCapacity: true)
            }
        }
        func separate() {
            if let last = seq.last, last != Gazetteer.separator { seq.append(Gazetteer.separator) }
        }
        for scalar in text.unicodeScalars {
            var v = scalar.value
            if v >= 0xFF01 && v <= 0xFF5E { v -= 0xFEE0 } else if v == 0x3000 { v = 0x20 }
            if v < 0x80 {
                if (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A) {
                    word.append(UInt8(v | 0x20))
                    separate()
                } else if (v == 0x27 || v == 0x2D) && !word.isEmpty {
                    continue  // Lu'an, Xi-an
                } else {
                    flushWord()
                    separate()
                }
                continue
            }
            flushWord()
            if (v >= 0x3400 && v <= 0x9FFF) || (v >= 0xF900 && v <= 0xFAFF) || v >= 0x20000 {
                seq.append(Gazetteer.simplify(v, simplified, simplifiedOther))
            } else {
                separate()
            }
        }
        flushWord()
    }

    // MARK: - Finding names

    func scanExact(_ seq: [UInt32], into hits: inout [Hit]) {
        var townships: [Hit] = []
        let n = seq.count
        var i = 0
        while i < n {
            if seq[i] == Gazetteer.separator { i += 1; continue }
            var node: Int32 = 0
            var j = i
            while j < n {
                node = exact.step(node, seq[j])
                if node < 0 { break }
                let range = exact.postingRange(node)
                if !range.isEmpty {
                    let end = j + 1
                    let roadAfter = isRoad(seq, at: end)
                    let whole = (i == 0 || seq[i - 1] == Gazetteer.separator) && (end == n || seq[end] == Gazetteer.separator)
                    for r in range {
                        let p = exact.posting(r)
                        let unit = Int32(p & 0xFF_FFFF), kind = Kind(rawValue: p >> 24)!
                        if kind == .wholeToken && !whole { continue }
                        if kind == .short && roadAfter { continue }
                        let weight: Float =
                            switch kind {
                            case .full: 1.0
                            case .alias, .wholeToken: 0.95
                            default: 0.9
                            }
                        let hit = Hit(unit: unit, weight: weight, start: Int32(i), end: Int32(end), kind: kind)
                        if levels[Int(unit)] == 4 {
                            // Common township names (城关镇: hundreds) are only kept under a county already read.
                            if range.count <= 64 || hits.contains(where: { $0.unit == parents[Int(unit)] }) { townships.append(hit) }
                        } else {
                            Gazetteer.add(hit, to: &hits)
                        }
                    }
                }
                j += 1
            }
            i += 1
        }
        dropConflicts(&hits)
        // A township counts when its county is named too; alone only by its full, nearly unique name.
        for t in townships {
            let county = parents[Int(t.unit)]
            if hits.contains(where: { $0.unit == county || legacyOf[Int($0.unit)] == county }) {
                Gazetteer.add(t, to: &hits)
            } else if t.kind == .full && t.end - t.start >= 3 && townships.filter({ $0.start == t.start && $0.end == t.end }).count <= 2 {
                var alone = t
                alone.weight = 0.8
                Gazetteer.add(alone, to: &hits)
            }
        }
        dropConflicts(&hits)
    }

    @inline(__always) func isRoad(_ seq: [UInt32], at i: Int) -> Bool {
        guard i < seq.count else { return false }
        let c = seq[i]
        if Gazetteer.roadChars.contains(c) { return true }
        if c == Gazetteer.bigChar, i + 1 < seq.count, Gazetteer.roadChars.contains(seq[i + 1]) { return true }
        return false
    }

    static func add(_ hit: Hit, to hits: inout [Hit]) {
        if let k = hits.firstIndex(where: { $0.unit == hit.unit }) {
            if hit.weight > hits[k].weight || (hit.weight == hits[k].weight && hit.end - hit.start > hits[k].end - hits[k].start) {
                hits[k] = hit
            }
        } else {
            hits.append(hit)
        }
    }

    @inline(__always) static func rank(_ k: Kind) -> Int {
        switch k {
        case .full, .alias, .wholeToken: 2
        case .short, .latin: 1
        case .sound: 0
        }
    }

    /// Overlapping names of different units: the longer one wins when it is at least as exact (龙江 in 黑龙江省,
    /// 沙市 in 长沙市, 市北 across 日照市|北京路). Equal spans stay, for the chain to choose from.
    func dropConflicts(_ hits: inout [Hit]) {
        guard hits.count > 1 else { return }
        let all = hits
        hits.removeAll { h in
            all.contains { g in
                g.unit != h.unit && g.start < h.end && h.start < g.end && (g.end - g.start) > (h.end - h.start)
                    && Gazetteer.rank(g.kind) >= Gazetteer.rank(h.kind)
            }
        }
    }

    func isAncestor(_ a: Int32, of u: Int32) -> Bool {
        var p = parents[Int(u)]
        while p >= 0 {
            if p == a { return true }
            p = parents[Int(p)]
        }
        return false
    }

    /// Pinyin and English names: words joined in runs of one to three (Xi'an, Inner Mongolia, Xi Hu).
    func scanLatin(_ words: [String], into hits: inout [Hit]) {
        // A word before "road"/"street"/"lu" names the street (HePing Road), not a place.
        var kept: [String] = []
        for (i, w) in words.enumerated() where !Gazetteer.stopWords.contains(w) {
            if i + 1 < words.count, Gazetteer.roadWords.contains(words[i + 1]) { continue }
            kept.append(w)
        }
        for i in kept.indices {
            var key = ""
            for j in i..<min(i + 3, kept.count) {
                key += kept[j]
                guard let postings = latin[key] else { continue }
                for p in postings {
                    // Negative positions: latin hits never contain or overlap Chinese ones.
                    Gazetteer.add(
                        Hit(
                            unit: Int32(p & 0xFF_FFFF), weight: 0.9, start: -2 - Int32(j), end: -1 - Int32(i),
                            kind: .latin), to: &hits)
                }
            }
        }
    }

    /// Homophone typos (西胡区 for 西湖区, 航州 for 杭州): syllables of the text against province, city and county
    /// names, only where no exact name was found and only for a unit whose parent the text also names.
    /// Returns whether a hit was added.
    func scanSounds(_ seq: [UInt32], into hits: inout [Hit]) -> Bool {
        var found: [Hit] = []
        let n = seq.count
        for i in 0..<n where seq[i] != Gazetteer.separator {
            var node: Int32 = 0
            var j = i
            while j < n {
                let v = seq[j]
                guard v >= Gazetteer.cjkBase && v <= Gazetteer.cjkEnd else { break }
                let id = syllables[Int(v - Gazetteer.cjkBase)]
                if id == 0 { break }
                node = sounds.step(node, UInt32(id))
                if node < 0 { break }
                let range = sounds.postingRange(node)
                if !range.isEmpty && !isRoad(seq, at: j + 1) {
                    for r in range {
                        found.append(
                            Hit(
                                unit: Int32(sounds.posting(r) & 0xFF_FFFF), weight: 0.75, start: Int32(i),
                                end: Int32(j + 1), kind: .sound))
                    }
                }
                j += 1
            }
        }
        var added = false
        // Parents first, so a typo'd city can vouch for an exact county under it (航州 西湖区).
        for pass in 0..<2 {
            for f in found {
                let p = parents[Int(f.unit)]
                let parentNamed = p >= 0 && hits.contains { $0.unit == p }
                let childNamed = hits.contains { $0.kind != .sound && parents[Int($0.unit)] == f.unit }
                if (pass == 0 && childNamed) || (pass == 1 && parentNamed), !hits.contains(where: { $0.unit == f.unit }) {
                    hits.append(f)
                    added = true
                }
            }
        }
        if added { dropConflicts(&hits) }
        return added
    }

    func mentionsCountry(_ words: [String]) -> Bool {
        for i in words.indices {
            var key = words[i]
            if countries.contains(key) { return true }
            for j in (i + 1)..<min(i + 4, words.count) {
                key += " " + words[j]
                if countries.contains(key) { return true }
            }
        }
        return false
    }

    // MARK: - Choosing

    struct Choice {
        var hit: Int
        var score: Float
        var context: Int
        var ambiguous: Bool
        var rivals: [Int]
        /// The unit stands alone while the text names a province or city it is not in (海南省 ... 安县).
        var contradicted: Bool = false
    }

    @inline(__always) func levelWeight(_ level: UInt8) -> Float {
        switch level {
        case 1: 1.0
        case 2: 1.5
        case 3: 2.0
        default: 1.0
        }
    }

    /// The hit whose chain of named ancestors scores highest; ties between unrelated units are ambiguity.
    func choose(_ hits: [Hit]) -> Choice? {
        guard !hits.isEmpty else { return nil }
        var scores = [Float](repeating: 0, count: hits.count)
        var contexts = [Int](repeating: 0, count: hits.count)
        for (k, h) in hits.enumerated() {
            var s = h.weight * levelWeight(levels[Int(h.unit)])
            var ctx = 0
            var p = parents[Int(h.unit)]
            // Each stretch of text names one unit: an ancestor found only where the unit itself was read
            // (邢台 as both 邢台市 and 邢台县) adds nothing.
            var used: [(Int32, Int32)] = [(h.start, h.end)]
            while p >= 0 {
                if let a = hits.first(where: { $0.unit == p }), !used.contains(where: { $0.0 < a.end && a.start < $0.1 }) {
                    s += a.weight * levelWeight(levels[Int(p)])
                    ctx += 1
                    used.append((a.start, a.end))
                }
                p = parents[Int(p)]
            }
            if h.kind == .sound && ctx == 0 { s = 0 }  // a homophone alone proves nothing
            scores[k] = s
            contexts[k] = ctx
        }
        var best = -1
        for k in hits.indices where scores[k] > 0 {
            if best < 0 { best = k; continue }
            let lk = levels[Int(hits[k].unit)], lb = levels[Int(hits[best].unit)]
            if scores[k] > scores[best] + 1e-4 || (abs(scores[k] - scores[best]) <= 1e-4 && lk > lb) { best = k }
        }
        guard best >= 0 else { return nil }
        let bu = hits[best].unit
        let target = legacyOf[Int(bu)] >= 0 ? legacyOf[Int(bu)] : bu
        var rivals: [Int] = []
        for k in hits.indices where k != best && abs(scores[k] - scores[best]) <= 1e-4 && levels[Int(hits[k].unit)] == levels[Int(bu)] {
            let u = hits[k].unit
            let t = legacyOf[Int(u)] >= 0 ? legacyOf[Int(u)] : u
            if t != target && !rivals.contains(where: { hits[$0].unit == u }) { rivals.append(k) }
        }
        var contradicted = false
        if contexts[best] == 0 {
            let lb = levels[Int(bu)]
            contradicted = hits.contains { h in
                levels[Int(h.unit)] < lb && h.kind != .sound && !isAncestor(h.unit, of: target) && !isAncestor(h.unit, of: bu)
            }
        }
        return Choice(
            hit: best, score: scores[best], context: contexts[best], ambiguous: !rivals.isEmpty, rivals: rivals,
            contradicted: contradicted)
    }

    // MARK: - Result

    func result(_ c: Choice, _ hits: [Hit]) -> GeoMatch {
        let h = hits[c.hit]
        let u = Int(h.unit)
        let current = legacyOf[u] >= 0 ? Int(legacyOf[u]) : u
        let level = Gazetteer.geoLevel(levels[current])
        var confidence: Double
        switch levels[current] {
        case 4: confidence = c.context > 0 ? 0.97 : 0.75
        case 3: confidence = c.context > 0 ? 0.95 : (h.kind == .full || h.kind == .alias ? 0.85 : 0.75)
        case 2: confidence = 0.55
        default: confidence = 0.3
        }
        if h.kind == .sound { confidence *= 0.8 }
        if c.contradicted { confidence = min(confidence, 0.5) }
        var alternatives: [GeoAlternative] = []
        if c.ambiguous {
            confidence = 0.5 / Double(c.rivals.count + 1)
            for k in c.rivals.prefix(9) {
                let r = Int(hits[k].unit)
                let rc = legacyOf[r] >= 0 ? Int(legacyOf[r]) : r
                alternatives.append(
                    GeoAlternative(
                        adcode: code(rc), level: Gazetteer.geoLevel(levels[rc]), names: namesOf(rc),
                        point: GeoPoint(lon: lons[r], lat: lats[r])))
            }
        }
        return GeoMatch(
            point: GeoPoint(lon: lons[u], lat: lats[u]), adcode: code(current), level: level,
            confidence: confidence, names: namesOf(current), pointLevel: Gazetteer.geoLevel(pointLevels[u]),
            alternatives: alternatives)
    }

    static func geoLevel(_ l: UInt8) -> GeoLevel {
        switch l {
        case 1: .province
        case 2: .city
        case 3: .district
        default: .township
        }
    }

    func code(_ u: Int) -> String { String(codes[u]) }

    func namesOf(_ u: Int) -> GeoNames {
        var n = GeoNames()
        var k = u
        while k >= 0 {
            switch levels[k] {
            case 1: n.province = names[k]
            case 2: n.city = names[k]
            case 3: n.district = names[k]
            default: n.town = names[k]
            }
            k = Int(parents[k])
        }
        // Municipalities (北京, 上海, 天津, 重庆) have no prefecture level: the city is the province.
        if n.city == nil, levels[u] >= 3 { n.city = n.province }
        return n
    }

    /// The seat of a unit by code (6 or 9 digits), for checking an order's coordinates against its address.
    public func unit(code: String) -> (point: GeoPoint, level: GeoLevel, names: GeoNames)? {
        guard let c = Int64(code), let i = codes.firstIndex(of: c) else { return nil }
        return (GeoPoint(lon: lons[i], lat: lats[i]), Gazetteer.geoLevel(levels[i]), namesOf(i))
    }
}

extension Gazetteer {
    /// The normalised text, its Latin words, and the names found in it exactly or as words (before the
    /// homophone pass).
    func names(in text: String) -> (seq: [UInt32], words: [String], hits: [Hit]) {
        var seq: [UInt32] = []
        var words: [String] = []
        normalise(text, into: &seq, words: &words)
        var hits: [Hit] = []
        scanExact(seq, into: &hits)
        if !words.isEmpty { scanLatin(words, into: &hits) }
        return (seq, words, hits)
    }

    /// Every name the matcher found in `text`, as "name code kind weight [start,end)": why a result came out.
    public func explain(_ text: String) -> [String] {
        let (seq, _, found) = names(in: text)
        var hits = found
        _ = scanSounds(seq, into: &hits)
        return hits.map { "\(names[Int($0.unit)]) \(codes[Int($0.unit)]) \($0.kind) \($0.weight) [\($0.start),\($0.end))" }
    }
}

extension Gazetteer {
    /// Current units of one level, (code, name): for reports and baselines.
    public func units(level: GeoLevel) -> [(code: String, name: String)] {
        (0..<codes.count).compactMap { i in
            legacyOf[i] < 0 && Gazetteer.geoLevel(levels[i]) == level ? (String(codes[i]), names[i]) : nil
        }
    }
}
