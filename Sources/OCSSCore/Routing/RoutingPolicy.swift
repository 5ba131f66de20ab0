/// The routing policy: a versioned document (stored in the database, every decision records the
/// version it used). Decoding fills every missing field with its default, so `{}` is the default policy.
public struct RoutingPolicy: Sendable, Hashable, Codable {
    /// Farthest a store may be from the customer, metres (great circle). Default 50 km.
    public var reachMetres: Double
    /// How many skipped candidates an explanation lists (the rest are counted).
    public var traceLimit: Int
    /// Warehouses (`kind: warehouse`) serve when no store in reach can fill the order.
    public var warehouseFallback: Bool
    /// Farthest a warehouse may be, metres (a warehouse's own service radius overrides it). Default 500 km.
    public var warehouseReachMetres: Double
    /// A store closed now may still take the order when it opens within this many minutes.
    public var afterHoursWindowMinutes: Int
    /// Split shipment when no single location holds every line.
    public var split: Split
    /// How eligible candidates are ranked.
    public var ranking: Ranking
    /// Refuse an order at intake when no location's service area covers its point.
    public var refuseOutOfArea: Bool

    public struct Split: Sendable, Hashable, Codable {
        public var enabled: Bool
        /// Most locations one order may be split over.
        public var maxParts: Int
        public init(enabled: Bool = true, maxParts: Int = 3) {
            self.enabled = enabled
            self.maxParts = maxParts
        }
        enum CodingKeys: String, CodingKey { case enabled, maxParts = "max_parts" }
        public init(from d: any Decoder) throws {
            let c = try d.container(keyedBy: CodingKeys.self)
            let x = Split()
            enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? x.enabled
            maxParts = try c.decodeIfPresent(Int.self, forKey: .maxParts) ?? x.maxParts
        }
    }

    public struct Ranking: Sendable, Hashable, Codable {
        public enum Mode: String, Sendable, Hashable, Codable {
            /// The nearest eligible location (priority breaks near-ties within `priorityBandMetres`).
            case nearest
            /// Lowest score among the nearest `candidates` eligible ones:
            /// distanceWeight * d / reach + capacityWeight * used / capacity - priorityWeight * priority.
            case weighted
        }
        public var mode: Mode
        public var distanceWeight: Double
        public var capacityWeight: Double
        public var priorityWeight: Double
        /// Eligible candidates the weighted mode compares.
        public var candidates: Int
        /// Nearest mode: eligible stores within this many metres beyond the nearest compete on priority.
        public var priorityBandMetres: Double

        public init(
            mode: Mode = .nearest, distanceWeight: Double = 1, capacityWeight: Double = 0.5, priorityWeight: Double = 0.1,
            candidates: Int = 8, priorityBandMetres: Double = 0
        ) {
            self.mode = mode
            self.distanceWeight = distanceWeight
            self.capacityWeight = capacityWeight
            self.priorityWeight = priorityWeight
            self.candidates = candidates
            self.priorityBandMetres = priorityBandMetres
        }
        enum CodingKeys: String, CodingKey {
            case mode, distanceWeight = "distance_weight", capacityWeight = "capacity_weight", priorityWeight = "priority_weight"
            case candidates, priorityBandMetres = "priority_band_m"
        }
        public init(from d: any Decoder) throws {
            let c = try d.container(keyedBy: CodingKeys.self)
            let x = Ranking()
            mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? x.mode
            distanceWeight = try c.decodeIfPresent(Double.self, forKey: .distanceWeight) ?? x.distanceWeight
            capacityWeight = try c.decodeIfPresent(Double.self, forKey: .capacityWeight) ?? x.capacityWeight
            priorityWeight = try c.decodeIfPresent(Double.self, forKey: .priorityWeight) ?? x.priorityWeight
            candidates = try c.decodeIfPresent(Int.self, forKey: .candidates) ?? x.candidates
            priorityBandMetres = try c.decodeIfPresent(Double.self, forKey: .priorityBandMetres) ?? x.priorityBandMetres
        }
    }

    public init(
        reachMetres: Double = 50_000, traceLimit: Int = 20, warehouseFallback: Bool = true, warehouseReachMetres: Double = 500_000,
        afterHoursWindowMinutes: Int = 60, split: Split = Split(), ranking: Ranking = Ranking(), refuseOutOfArea: Bool = true
    ) {
        self.reachMetres = reachMetres
        self.traceLimit = traceLimit
        self.warehouseFallback = warehouseFallback
        self.warehouseReachMetres = warehouseReachMetres
        self.afterHoursWindowMinutes = afterHoursWindowMinutes
        self.split = split
        self.ranking = ranking
        self.refuseOutOfArea = refuseOutOfArea
    }

    enum CodingKeys: String, CodingKey {
        case reachMetres = "reach_m", traceLimit = "trace_limit", warehouseFallback = "warehouse_fallback"
        case warehouseReachMetres = "warehouse_reach_m", afterHoursWindowMinutes = "after_hours_window_min", split, ranking
        case refuseOutOfArea = "refuse_out_of_area"
    }

    public init(from d: any Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        let x = RoutingPolicy()
        reachMetres = try c.decodeIfPresent(Double.self, forKey: .reachMetres) ?? x.reachMetres
        traceLimit = try c.decodeIfPresent(Int.self, forKey: .traceLimit) ?? x.traceLimit
        warehouseFallback = try c.decodeIfPresent(Bool.self, forKey: .warehouseFallback) ?? x.warehouseFallback
        warehouseReachMetres = try c.decodeIfPresent(Double.self, forKey: .warehouseReachMetres) ?? x.warehouseReachMetres
        afterHoursWindowMinutes = try c.decodeIfPresent(Int.self, forKey: .afterHoursWindowMinutes) ?? x.afterHoursWindowMinutes
        split = try c.decodeIfPresent(Split.self, forKey: .split) ?? x.split
        ranking = try c.decodeIfPresent(Ranking.self, forKey: .ranking) ?? x.ranking
        refuseOutOfArea = try c.decodeIfPresent(Bool.self, forKey: .refuseOutOfArea) ?? x.refuseOutOfArea
    }

    /// The first setting out of range, as (field, message); nil when the policy is usable.
    public func problem() -> (field: String, message: String)? {
        func ok(_ v: Double, _ r: ClosedRange<Double>) -> Bool { v.isFinite && r.contains(v) }
        if !ok(reachMetres, 1...20_000_000) { return ("reach_m", "reach_m must be 1 to 20000000") }
        if !ok(warehouseReachMetres, 1...20_000_000) { return ("warehouse_reach_m", "warehouse_reach_m must be 1 to 20000000") }
        if !(0...1000).contains(traceLimit) { return ("trace_limit", "trace_limit must be 0 to 1000") }
        if !(0...10_080).contains(afterHoursWindowMinutes) { return ("after_hours_window_min", "after_hours_window_min must be 0 to 10080") }
        if !(2...16).contains(split.maxParts) { return ("split.max_parts", "split.max_parts must be 2 to 16") }
        if !(1...256).contains(ranking.candidates) { return ("ranking.candidates", "ranking.candidates must be 1 to 256") }
        for (f, v) in [
            ("distance_weight", ranking.distanceWeight), ("capacity_weight", ranking.capacityWeight),
            ("priority_weight", ranking.priorityWeight),
        ] where !ok(v, 0...1000) {
            return ("ranking.\(f)", "ranking.\(f) must be 0 to 1000")
        }
        if !ok(ranking.priorityBandMetres, 0...1_000_000) { return ("ranking.priority_band_m", "ranking.priority_band_m must be 0 to 1000000") }
        return nil
    }
}

/// What a decision needs to know beyond stores and stock: the customer's point (for service
/// areas), the time (for hours), each time zone's UTC offset now, and today's assignment counts.
public struct RoutingContext: Sendable {
    public var point: GeoPoint?
    /// Unix seconds.
    public var now: Int64
    /// UTC offset in seconds of each of the store index's `timeZones` at `now`; missing ones count as +8 h.
    public var utcOffsets: [Int32]
    public var capacity: CapacityBook?

    public init(point: GeoPoint? = nil, now: Int64 = 0, utcOffsets: [Int32] = [], capacity: CapacityBook? = nil) {
        self.point = point
        self.now = now
        self.utcOffsets = utcOffsets
        self.capacity = capacity
    }

    @inline(__always)
    func localSeconds(zone: UInt16) -> Int64 {
        let z = Int(zone)
        return now + Int64(z < utcOffsets.count ? utcOffsets[z] : 28_800)
    }

    /// The store's local day number now.
    public func localDay(zone: UInt16) -> Int64 {
        let t = localSeconds(zone: zone)
        return t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
    }
}

/// Orders assigned per store per local day. One owner (the engine's lock) mutates it; the router
/// reads it during a decision under the same lock, so it is a class to avoid copying per order.
public final class CapacityBook: @unchecked Sendable {
    var day: [Int64] = []
    var count: [Int32] = []

    public init() {}

    /// Assignments `slot` took on local day `localDay`.
    public func used(slot: Int32, localDay: Int64) -> Int32 {
        let s = Int(slot)
        return s < day.count && day[s] == localDay ? count[s] : 0
    }

    /// One more assignment (or `by` more) for `slot` on `localDay`.
    public func record(slot: Int32, localDay: Int64, by n: Int32 = 1) {
        let s = Int(slot)
        while day.count <= s {
            day.append(Int64.min)
            count.append(0)
        }
        if day[s] != localDay {
            day[s] = localDay
            count[s] = 0
        }
        count[s] += n
    }
}
