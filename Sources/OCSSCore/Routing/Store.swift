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

    public init(id: String, code: String, name: String, location: GeoPoint, kind: StoreKind = .store, status: StoreStatus = .open) {
        self.id = id
        self.code = code
        self.name = name
        self.location = location
        self.kind = kind
        self.status = status
    }
}

/// All stores, with a k-d tree over their locations. Built once, then immutable; a change builds a
/// new index (build then freeze). Store slots are dense indexes 0..<count, stable across rebuilds
/// as long as stores are only added (the ledger is keyed by slot).
public struct StoreIndex: Sendable {
    public let stores: [Store]
    public let tree: KDTree
    public let slotByID: [String: Int32]
    /// Unit vector of each slot's location (hot path: no trigonometry per candidate).
    public let vectors: [UnitVector]
    /// Whether each slot is open (hot path: no touching the large `Store` values).
    public let isOpen: [Bool]

    public init(stores: [Store]) {
        self.stores = stores
        vectors = stores.map { UnitVector($0.location) }
        isOpen = stores.map { $0.status == .open }
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
