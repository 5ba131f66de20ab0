/// What a location is: a shop front or a regional warehouse.
public enum StoreKind: String, Sendable, Codable, CaseIterable {
    case store
    case warehouse
}

/// Whether a location takes new orders.
public enum StoreStatus: String, Sendable, Codable, CaseIterable {
    case open
    case paused
    case closed
}

/// A physical location that can fulfil orders.
public struct Store: Sendable, Hashable, Codable {
    /// Stable external id (the retailer's), unique.
    public var id: String
    /// Short code the platforms attach to orders, often equal to `id`.
    public var code: String
    public var name: String
    /// WGS84, longitude first.
    public var location: GeoPoint
    public var kind: StoreKind
    public var status: StoreStatus
    /// Capacity, hours, service area, priority.
    public var rules: StoreRules

    public init(
        id: String, code: String, name: String, location: GeoPoint, kind: StoreKind = .store, status: StoreStatus = .open,
        rules: StoreRules = StoreRules()
    ) {
        self.id = id
        self.code = code
        self.name = name
        self.location = location
        self.kind = kind
        self.status = status
        self.rules = rules
    }
}

/// All stores, with a k-d tree over their locations. Built once, then immutable; a change builds a
/// new index (build then freeze). Store slots are dense indexes 0..<count, stable across rebuilds
/// as long as stores are only added (the ledger is keyed by slot).
public final class StoreIndex: Sendable {
    public let stores: [Store]
    public let tree: KDTree
    public let slotByID: [String: Int32]
    /// Unit vector of each slot's location (hot path: no trigonometry per candidate).
    public let vectors: [UnitVector]
    /// Per slot: which checks beyond stock apply (hot path: one byte, zero for a plain open store).
    public let flags: [UInt8]
    /// Per slot: squared chord of the service radius (stores without one: the policy's reach).
    public let radiusChord2: [Double]
    /// Per slot: index into `timeZones`.
    public let zone: [UInt16]
    /// Distinct time zones, `Asia/Shanghai` first.
    public let timeZones: [String]
    /// Per slot: holidays as local day numbers (empty for most).
    public let holidays: [Set<Int64>]
    /// Warehouse slots (the fallback pass scans them).
    public let warehouseSlots: [Int32]
    /// True when any store has a non-zero priority.
    public let hasPriority: Bool
    /// Per slot: daily capacity (-1 = unlimited), hot path copy of `rules.dailyCapacity`.
    public let capacity: [Int32]
    /// Per slot: index into `hoursTable` (-1 = always open); stores share identical hours.
    public let hoursRef: [Int32]
    public let hoursTable: [WeeklyHours]

    public enum Flag {
        public static let notOpen: UInt8 = 1
        public static let warehouse: UInt8 = 2
        public static let radius: UInt8 = 4
        public static let area: UInt8 = 8
        public static let capacity: UInt8 = 16
        public static let hours: UInt8 = 32
        public static let holidays: UInt8 = 64
        /// Any rule checked after stock.
        public static let rules: UInt8 = radius | area | capacity | hours
    }

    public init(stores: [Store]) {
        self.stores = stores
        vectors = stores.map { UnitVector($0.location) }
        var zones = [StoreRules.defaultTimeZone]
        var zoneIndex = [StoreRules.defaultTimeZone: UInt16(0)]
        var flags: [UInt8] = [], radius: [Double] = [], zone: [UInt16] = [], holidays: [Set<Int64>] = [], warehouses: [Int32] = []
        var capacity: [Int32] = [], hoursRef: [Int32] = [], table: [WeeklyHours] = [], hoursIndex: [WeeklyHours: Int32] = [:]
        flags.reserveCapacity(stores.count)
        radius.reserveCapacity(stores.count)
        zone.reserveCapacity(stores.count)
        holidays.reserveCapacity(stores.count)
        for (i, s) in stores.enumerated() {
            var f: UInt8 = 0
            if s.status != .open { f |= Flag.notOpen }
            if s.kind == .warehouse {
                f |= Flag.warehouse
                warehouses.append(Int32(i))
            }
            if let r = s.rules.serviceRadiusMetres {
                f |= Flag.radius
                radius.append(Sphere.chordSquared(forDistance: r))
            } else {
                radius.append(.infinity)
            }
            if s.rules.serviceArea != nil { f |= Flag.area }
            if s.rules.dailyCapacity != nil { f |= Flag.capacity }
            if s.rules.hours != nil || !s.rules.holidays.isEmpty { f |= Flag.hours }
            if !s.rules.holidays.isEmpty { f |= Flag.holidays }
            flags.append(f)
            capacity.append(s.rules.dailyCapacity.map { Int32(clamping: $0) } ?? -1)
            if let h = s.rules.hours {
                if let ref = hoursIndex[h] {
                    hoursRef.append(ref)
                } else {
                    hoursIndex[h] = Int32(table.count)
                    hoursRef.append(Int32(table.count))
                    table.append(h)
                }
            } else {
                hoursRef.append(-1)
            }
            let tz = s.rules.timeZone ?? StoreRules.defaultTimeZone
            if let z = zoneIndex[tz] {
                zone.append(z)
            } else {
                zoneIndex[tz] = UInt16(zones.count)
                zone.append(UInt16(zones.count))
                zones.append(tz)
            }
            holidays.append(Set(s.rules.holidays.compactMap(LocalDate.dayNumber)))
        }
        self.flags = flags
        radiusChord2 = radius
        self.zone = zone
        timeZones = zones
        self.holidays = holidays
        warehouseSlots = warehouses
        hasPriority = stores.contains { $0.rules.priority != 0 }
        self.capacity = capacity
        self.hoursRef = hoursRef
        hoursTable = table
        var byID: [String: Int32] = [:]
        byID.reserveCapacity(stores.count)
        for (i, s) in stores.enumerated() { byID[s.id] = Int32(i) }
        slotByID = byID
        tree = KDTree(points: vectors, payloads: (0..<stores.count).map { Int32($0) })
    }

    /// A new index with `store` inserted or replaced (same slot when the id exists).
    public func upserting(_ store: Store) -> StoreIndex {
        var all = stores
        if let slot = slotByID[store.id] { all[Int(slot)] = store } else { all.append(store) }
        return StoreIndex(stores: all)
    }
}
