/// A SKU interned to a dense integer.
public typealias SKUIndex = Int32

/// One line of demand against the ledger: an interned SKU and a quantity > 0.
public struct Demand: Sendable, Hashable {
    public var sku: SKUIndex
    public var quantity: Int32
    public init(sku: SKUIndex, quantity: Int32) {
        self.sku = sku
        self.quantity = quantity
    }
}

/// Stock of one store: sorted SKU indexes with on-hand and reserved counts.
public struct StoreStock: Sendable {
    public internal(set) var skus: [SKUIndex] = []
    public internal(set) var onHand: [Int32] = []
    public internal(set) var reserved: [Int32] = []
    /// Safety stock of each row: held back from routing, never reserved.
    public internal(set) var safety: [Int32] = []

    func position(of sku: SKUIndex) -> Int? {
        var lo = 0, hi = skus.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if skus[mid] < sku { lo = mid + 1 } else { hi = mid }
        }
        return lo < skus.count && skus[lo] == sku ? lo : nil
    }
}

/// Safety stock rules: the most specific wins (per SKU, then per store, then the default).
public struct SafetyStock: Sendable, Hashable {
    public var defaultQuantity: Int32
    public var perSKU: [String: Int32]
    public var perStore: [Int32: Int32]

    public init(defaultQuantity: Int32 = 0, perSKU: [String: Int32] = [:], perStore: [Int32: Int32] = [:]) {
        self.defaultQuantity = defaultQuantity
        self.perSKU = perSKU
        self.perStore = perStore
    }

    public var isNone: Bool { defaultQuantity == 0 && perSKU.isEmpty && perStore.isEmpty }
}

/// Errors of ledger operations.
public enum LedgerError: Error, Sendable, Equatable {
    case unknownStore(Int32)
    case insufficient(sku: String, available: Int32, requested: Int32)
    case negativeQuantity(sku: String)
}

/// Inventory per (store slot, SKU): on-hand, reserved and safety stock.
/// Available = on_hand - reserved - safety (never below 0 as reported).
///
/// A value type: the owner (one lock in the app) mutates it; readers get a cheap copy-on-write
/// snapshot. Reservation is all-or-nothing over an order's lines.
public struct InventoryLedger: Sendable {
    public private(set) var skuIndex: [String: SKUIndex] = [:]
    public private(set) var skuNames: [String] = []
    public private(set) var stock: [StoreStock] = []
    /// For each SKU, the stores that have ever had an inventory row for it (candidates for the
    /// rarest-SKU scan). Rows are never removed, only zeroed, so the list only grows.
    public private(set) var storesBySKU: [[Int32]] = []
    public private(set) var safetyRules = SafetyStock()
    /// `safetyRules.perSKU` by interned index.
    private var safetyBySKU: [SKUIndex: Int32] = [:]

    public init() {}

    /// Safety stock of (store, sku) under the current rules.
    public func safety(store: Int32, sku: SKUIndex) -> Int32 {
        if safetyRules.isNone { return 0 }
        return safetyBySKU[sku] ?? safetyRules.perStore[store] ?? safetyRules.defaultQuantity
    }

    /// Replaces the safety stock rules and recomputes every row.
    public mutating func setSafetyRules(_ rules: SafetyStock) {
        safetyRules = rules
        safetyBySKU = [:]
        for (name, q) in rules.perSKU { safetyBySKU[intern(name)] = q }
        for s in stock.indices {
            for i in stock[s].skus.indices { stock[s].safety[i] = safety(store: Int32(s), sku: stock[s].skus[i]) }
        }
    }

    /// Number of store slots known to the ledger.
    public var storeCount: Int { stock.count }

    /// Interned index for `sku`, or nil when no store has ever listed it.
    public func index(of sku: String) -> SKUIndex? { skuIndex[sku] }

    /// Interns `sku`, adding it when new.
    public mutating func intern(_ sku: String) -> SKUIndex {
        if let i = skuIndex[sku] { return i }
        let i = SKUIndex(skuNames.count)
        skuIndex[sku] = i
        skuNames.append(sku)
        storesBySKU.append([])
        return i
    }

    /// Makes sure slots 0..<count exist.
    public mutating func ensureStores(_ count: Int) {
        while stock.count < count { stock.append(StoreStock()) }
    }

    /// Sets on-hand for (store, sku), keeping what is reserved. Creates the row when missing.
    public mutating func setOnHand(store: Int32, sku: SKUIndex, quantity: Int32) {
        ensureStores(Int(store) + 1)
        let s = Int(store)
        if let p = stock[s].position(of: sku) {
            stock[s].onHand[p] = quantity
            return
        }
        var lo = 0
        while lo < stock[s].skus.count && stock[s].skus[lo] < sku { lo += 1 }
        stock[s].skus.insert(sku, at: lo)
        stock[s].onHand.insert(quantity, at: lo)
        stock[s].reserved.insert(0, at: lo)
        stock[s].safety.insert(safety(store: store, sku: sku), at: lo)
        storesBySKU[Int(sku)].append(store)
    }

    /// Bulk load for one store whose rows arrive sorted by SKU index (import, start-up rebuild).
    /// Falls back to `setOnHand` when the order is not increasing.
    public mutating func appendRow(store: Int32, sku: SKUIndex, onHand: Int32, reserved: Int32 = 0) {
        ensureStores(Int(store) + 1)
        let s = Int(store)
        if let last = stock[s].skus.last, last >= sku {
            setOnHand(store: store, sku: sku, quantity: onHand)
            if let p = stock[s].position(of: sku) { stock[s].reserved[p] = reserved }
            return
        }
        stock[s].skus.append(sku)
        stock[s].onHand.append(onHand)
        stock[s].reserved.append(reserved)
        stock[s].safety.append(safety(store: store, sku: sku))
        storesBySKU[Int(sku)].append(store)
    }

    /// Available quantity (on_hand - reserved - safety, at least 0) of `sku` in `store`; 0 when there is no row.
    public func available(store: Int32, sku: SKUIndex) -> Int32 {
        let s = Int(store)
        guard s < stock.count, let p = stock[s].position(of: sku) else { return 0 }
        return Swift.max(0, stock[s].onHand[p] - stock[s].reserved[p] - stock[s].safety[p])
    }

    /// On-hand, reserved and safety of `sku` in `store`, nil when there is no row.
    public func row(store: Int32, sku: SKUIndex) -> (onHand: Int32, reserved: Int32, safety: Int32)? {
        let s = Int(store)
        guard s < stock.count, let p = stock[s].position(of: sku) else { return nil }
        return (stock[s].onHand[p], stock[s].reserved[p], stock[s].safety[p])
    }

    /// True when `store` has promised more of `sku` than it has on hand (a stock update came in below its
    /// reservations): orders there must move.
    public func isOverPromised(store: Int32, sku: SKUIndex) -> Bool {
        guard let r = row(store: store, sku: sku) else { return false }
        return r.reserved > r.onHand
    }

    /// True when `store` has every line available. `first` is checked before the others (pass the
    /// rarest line: it rejects most stores on the first probe).
    public func canFill(store: Int32, lines: [Demand], first: Int = 0) -> Bool {
        let s = Int(store)
        guard s < stock.count else { return false }
        if first > 0 {
            let line = lines[first]
            guard let p = stock[s].position(of: line.sku),
                stock[s].onHand[p] - stock[s].reserved[p] - stock[s].safety[p] >= line.quantity
            else { return false }
        }
        for line in lines {
            guard let p = stock[s].position(of: line.sku),
                stock[s].onHand[p] - stock[s].reserved[p] - stock[s].safety[p] >= line.quantity
            else { return false }
        }
        return true
    }

    /// The lines `store` cannot fill, for explanations.
    public func missing(store: Int32, lines: [Demand]) -> [SKUIndex] {
        lines.filter { available(store: store, sku: $0.sku) < $0.quantity }.map(\.sku)
    }

    /// Reserves every line in `store`, or nothing (throws `insufficient`).
    public mutating func reserve(store: Int32, lines: [Demand]) throws(LedgerError) {
        let s = Int(store)
        guard s < stock.count else { throw .unknownStore(store) }
        var positions: [Int] = []
        positions.reserveCapacity(lines.count)
        for line in lines {
            guard let p = stock[s].position(of: line.sku) else {
                throw .insufficient(sku: skuNames[Int(line.sku)], available: 0, requested: line.quantity)
            }
            // Several lines may name the same SKU: count what earlier lines already took.
            let taken = zip(lines, positions).filter { $0.1 == p }.reduce(Int32(0)) { $0 + $1.0.quantity }
            let avail = stock[s].onHand[p] - stock[s].reserved[p] - stock[s].safety[p] - taken
            guard avail >= line.quantity else {
                throw .insufficient(sku: skuNames[Int(line.sku)], available: avail, requested: line.quantity)
            }
            positions.append(p)
        }
        for (line, p) in zip(lines, positions) { stock[s].reserved[p] += line.quantity }
    }

    /// Releases a reservation made by `reserve` (cancel, reject, failed commit). Never goes below 0.
    public mutating func release(store: Int32, lines: [Demand]) {
        let s = Int(store)
        guard s < stock.count else { return }
        for line in lines {
            guard let p = stock[s].position(of: line.sku) else { continue }
            stock[s].reserved[p] = Swift.max(0, stock[s].reserved[p] - line.quantity)
        }
    }

    /// Consumes a reservation when goods leave the store: on_hand and reserved both drop.
    public mutating func consume(store: Int32, lines: [Demand]) {
        let s = Int(store)
        guard s < stock.count else { return }
        for line in lines {
            guard let p = stock[s].position(of: line.sku) else { continue }
            let q = Swift.min(line.quantity, stock[s].reserved[p])
            stock[s].reserved[p] -= q
            stock[s].onHand[p] = Swift.max(0, stock[s].onHand[p] - q)
        }
    }
}

extension InventoryLedger {
    /// Checks that rows are sorted and unique per store, arrays agree in length, reserved is never
    /// negative, and `storesBySKU` lists exactly the stores with a row. Nil when all hold.
    public func invariantViolation() -> String? {
        var expected = [[Int32]](repeating: [], count: skuNames.count)
        for (s, st) in stock.enumerated() {
            guard st.skus.count == st.onHand.count, st.skus.count == st.reserved.count, st.skus.count == st.safety.count else {
                return "store \(s): column lengths differ"
            }
            for i in st.skus.indices {
                if i > 0 && st.skus[i - 1] >= st.skus[i] { return "store \(s): skus not strictly increasing" }
                if st.reserved[i] < 0 { return "store \(s): negative reservation" }
                expected[Int(st.skus[i])].append(Int32(s))
            }
        }
        for (k, list) in storesBySKU.enumerated() where Set(list) != Set(expected[k]) || list.count != expected[k].count {
            return "sku \(k): store list out of date"
        }
        return nil
    }
}
