/// Calendar dates as day numbers (days since 1970-01-01).
public enum LocalDate {
    /// `YYYY-MM-DD` -> days since 1970-01-01, nil when malformed or not a real date.
    public static func dayNumber(_ s: String) -> Int64? {
        let u = Array(s.utf8)
        guard u.count == 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-") else { return nil }
        func num(_ r: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in r {
                guard u[i] >= 48 && u[i] <= 57 else { return nil }
                v = v * 10 + Int64(u[i] - 48)
            }
            return v
        }
        guard let y = num(0..<4), let m = num(5..<7), let d = num(8..<10), (1...12).contains(m), d >= 1 else { return nil }
        let days = days(year: y, month: m, day: d)
        let back = CivilTime(epochSeconds: days * 86_400)
        return back.month == Int(m) && back.day == Int(d) ? days : nil
    }

    /// Days since 1970-01-01 -> `YYYY-MM-DD`.
    public static func string(dayNumber: Int64) -> String {
        String(CivilTime(epochSeconds: dayNumber * 86_400).formatted(separator: "T").prefix(10))
    }

    /// Howard Hinnant's days_from_civil.
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday).
    public static func weekday(dayNumber: Int64) -> Int {
        Int(((dayNumber + 3) % 7 + 7) % 7)
    }
}

/// Opening hours: for each weekday (Monday first) a list of intervals in minutes from that day's
/// local midnight; an interval may end after midnight (up to 48:00) for late shifts.
public struct WeeklyHours: Sendable, Hashable, Codable {
    public static let dayKeys = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    /// Seven lists of [start, end) minutes, sorted.
    public var days: [[ClosedOpen]]

    public struct ClosedOpen: Sendable, Hashable {
        public var start: Int
        public var end: Int
        public init(start: Int, end: Int) {
            self.start = start
            self.end = end
        }
    }

    /// Open all the time (what a store with holidays but no hours keeps on other days).
    public static let alwaysOpen = WeeklyHours(days: Array(repeating: [ClosedOpen(start: 0, end: 1440)], count: 7))

    public init(days: [[ClosedOpen]]) {
        precondition(days.count == 7)
        self.days = days.map { $0.sorted { $0.start < $1.start } }
    }

    /// The same intervals every day, e.g. `"09:00-21:00"`.
    public static func daily(_ spec: String) -> WeeklyHours? {
        guard let i = parse(spec) else { return nil }
        return WeeklyHours(days: Array(repeating: [i], count: 7))
    }

    static func parse(_ spec: String) -> ClosedOpen? {
        let parts = spec.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = minutes(parts[0]), let b = minutes(parts[1]) else { return nil }
        let end = b <= a ? b + 1440 : b
        guard a < 1440, end - a <= 1440, end > a else { return nil }
        return ClosedOpen(start: a, end: end)
    }

    static func minutes(_ s: Substring) -> Int? {
        let hm = s.split(separator: ":", omittingEmptySubsequences: false)
        // Two ASCII digits each: `Int` alone would also take "+1" and read "+1:00" as 01:00.
        guard hm.count == 2, hm.allSatisfy({ $0.utf8.count == 2 && $0.utf8.allSatisfy { (48...57).contains($0) } }),
            let h = Int(hm[0]), let m = Int(hm[1]),
            (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440
        else { return nil }
        return h * 60 + m
    }

    static func format(_ m: Int) -> String {
        let mm = m % 1440 == 0 && m > 0 ? 1440 : m % 1440
        let h = mm / 60, mi = mm % 60
        return (h < 10 ? "0" : "") + "\(h):" + (mi < 10 ? "0" : "") + "\(mi)"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        var days = [[ClosedOpen]](repeating: [], count: 7)
        for key in c.allKeys {
            guard let d = WeeklyHours.dayKeys.firstIndex(of: key.stringValue) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "weekday keys are mon..sun")
            }
            for spec in try c.decode([String].self, forKey: key) {
                guard let i = WeeklyHours.parse(spec) else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "hours are \"HH:MM-HH:MM\"")
                }
                days[d].append(i)
            }
        }
        self.init(days: days)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        for (d, list) in days.enumerated() where !list.isEmpty {
            try c.encode(list.map { WeeklyHours.format($0.start) + "-" + WeeklyHours.format($0.end) }, forKey: AnyKey(WeeklyHours.dayKeys[d]))
        }
    }

    /// Minutes until the location is open at local minute `t` (minutes since 1970-01-01 local),
    /// 0 when open now, nil when not open within `horizon` minutes. `closedDays` are local day numbers.
    public func minutesUntilOpen(atLocalMinute t: Int64, closedDays: Set<Int64>, horizon: Int64) -> Int64? {
        let today = t >= 0 ? t / 1440 : (t - 1439) / 1440
        var best: Int64?
        // Yesterday's late shift may still run; look ahead a week at most.
        for day in (today - 1)...(today + 7) {
            if closedDays.contains(day) { continue }
            let base = day * 1440
            if let b = best, base > t + b { break }
            for i in days[LocalDate.weekday(dayNumber: day)] {
                let s = base + Int64(i.start), e = base + Int64(i.end)
                if t >= s && t < e { return 0 }
                if s > t { best = min(best ?? Int64.max, s - t) }
            }
        }
        guard let b = best, b <= horizon else { return nil }
        return b
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A delivery area: polygons of lon/lat rings (GeoJSON order), the first ring outer, the others holes.
/// Point-in-polygon is planar in degrees, which is exact enough at city scale.
public struct ServiceArea: Sendable, Hashable, Codable {
    public var polygons: [[[GeoPoint]]]
    let bounds: [Double]  // minLon, minLat, maxLon, maxLat

    public init(polygons: [[[GeoPoint]]]) {
        self.polygons = polygons
        var b = [Double.infinity, .infinity, -Double.infinity, -Double.infinity]
        for poly in polygons {
            for p in poly.first ?? [] {
                b[0] = min(b[0], p.lon); b[1] = min(b[1], p.lat); b[2] = max(b[2], p.lon); b[3] = max(b[3], p.lat)
            }
        }
        bounds = b
    }

    enum CodingKeys: String, CodingKey { case type, coordinates }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        func ring(_ r: [[Double]]) throws -> [GeoPoint] {
            guard r.count >= 4, r.allSatisfy({ $0.count >= 2 }) else {
                throw DecodingError.dataCorruptedError(forKey: .coordinates, in: c, debugDescription: "a ring has at least 4 [lon, lat] positions")
            }
            let pts = r.map { GeoPoint(lon: $0[0], lat: $0[1]) }
            guard pts.allSatisfy(\.isValid) else {
                throw DecodingError.dataCorruptedError(forKey: .coordinates, in: c, debugDescription: "positions are [lon, lat] within range")
            }
            return pts
        }
        switch type {
        case "Polygon":
            let rings = try c.decode([[[Double]]].self, forKey: .coordinates)
            guard !rings.isEmpty else { throw DecodingError.dataCorruptedError(forKey: .coordinates, in: c, debugDescription: "empty polygon") }
            self.init(polygons: [try rings.map(ring)])
        case "MultiPolygon":
            let polys = try c.decode([[[[Double]]]].self, forKey: .coordinates)
            guard !polys.isEmpty, polys.allSatisfy({ !$0.isEmpty }) else {
                throw DecodingError.dataCorruptedError(forKey: .coordinates, in: c, debugDescription: "empty multipolygon")
            }
            self.init(polygons: try polys.map { try $0.map(ring) })
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "service_area is a GeoJSON Polygon or MultiPolygon")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let coords = polygons.map { $0.map { $0.map { [$0.lon, $0.lat] } } }
        if coords.count == 1 {
            try c.encode("Polygon", forKey: .type)
            try c.encode(coords[0], forKey: .coordinates)
        } else {
            try c.encode("MultiPolygon", forKey: .type)
            try c.encode(coords, forKey: .coordinates)
        }
    }

    public static func == (a: ServiceArea, b: ServiceArea) -> Bool { a.polygons == b.polygons }
    public func hash(into h: inout Hasher) { h.combine(polygons) }

    /// Even-odd rule over every ring of each polygon (holes included).
    public func contains(_ p: GeoPoint) -> Bool {
        guard p.lon >= bounds[0], p.lon <= bounds[2], p.lat >= bounds[1], p.lat <= bounds[3] else { return false }
        for poly in polygons {
            var inside = false
            for ring in poly {
                var j = ring.count - 1
                for i in 0..<ring.count {
                    let a = ring[i], b = ring[j]
                    if (a.lat > p.lat) != (b.lat > p.lat) && p.lon < (b.lon - a.lon) * (p.lat - a.lat) / (b.lat - a.lat) + a.lon {
                        inside.toggle()
                    }
                    j = i
                }
            }
            if inside { return true }
        }
        return false
    }
}
