/// Why a candidate store was passed over.
public enum SkipReason: Sendable, Hashable {
    /// The store lacks these SKUs (names) in the ordered quantity.
    case outOfStock(missing: [String])
    /// The store is paused or closed.
    case notOpen(StoreStatus)
    /// The store already rejected this order.
    case rejectedBefore
    /// A warehouse in the store pass (or a store in the warehouse pass); never listed.
    case warehouseOnly
    /// The customer is outside its service radius or area.
    case outsideServiceArea
    /// It took its daily capacity of orders today.
    case capacityFull(used: Int, capacity: Int)
    /// Closed now (hours or holiday) and not opening within the policy's after-hours window.
    case closedHours

    /// Stable machine code.
    public var code: String {
        switch self {
        case .outOfStock: "out_of_stock"
        case .notOpen(let s): s == .paused ? "paused" : "closed"
        case .rejectedBefore: "rejected_before"
        case .warehouseOnly: "warehouse"
        case .outsideServiceArea: "outside_service_area"
        case .capacityFull: "capacity_full"
        case .closedHours: "closed_hours"
        }
    }
}

/// One store looked at during a decision.
public struct Candidate: Sendable, Hashable {
    public var storeID: String
    /// Great-circle distance, metres.
    public var distanceMetres: Double
    /// Nil for the chosen store.
    public var skipped: SkipReason?
}

/// Why a decision did not come from the plain store search.
public enum Fallback: String, Sendable, Hashable, Codable {
    /// No store in reach could fill the order; a regional warehouse does.
    case warehouse
    /// No single location could fill every line; the order ships from several.
    case split
}

/// One location of a split shipment: the lines (indexes into the order's lines) it ships.
public struct PlanPart: Sendable, Hashable {
    public var slot: Int32
    public var storeID: String
    public var distanceMetres: Double
    public var lineIndexes: [Int]
}

/// A candidate the ranking scored (lower score wins; nearest mode with a priority band scores -priority).
public struct RankedCandidate: Sendable, Hashable {
    public var storeID: String
    public var distanceMetres: Double
    public var score: Double
}

/// Which search produced the decision.
public enum SearchPath: String, Sendable, Hashable, Codable {
    /// Best-first walk over the k-d tree.
    case walk
    /// Scan of the stores listing the order's rarest SKU.
    case rarestSKUScan = "rarest_sku_scan"
    /// Best-first walk over the k-d tree of the stores that list the order's rarest SKU.
    case rarestSKUTree = "rarest_sku_tree"
    /// No search was possible (an SKU no store lists, no stores at all).
    case none
}

/// The outcome of routing one order, with the reasons behind it.
public struct RoutingDecision: Sendable, Hashable {
    /// Chosen store slot, nil when unroutable.
    public var storeSlot: Int32?
    /// Chosen store id.
    public var storeID: String?
    /// Great-circle distance to the chosen store, metres (an adapter may refine it ellipsoidally).
    public var distanceMetres: Double?
    /// Stores looked at and skipped, nearest first, up to the policy's trace limit.
    public var skipped: [Candidate]
    /// Candidates examined in total (including those beyond the trace limit).
    public var examined: Int
    public var path: SearchPath
    /// Reach used, metres.
    public var reachMetres: Double
    /// Why there is no store, when there is none: `no_store_in_reach`, `no_eligible_store_in_reach`,
    /// `sku_not_stocked:<sku>`, `reservation_failed`.
    public var unroutableReason: String?
    /// Set when the single-location store search failed and a fallback decided.
    public var fallback: Fallback?
    /// A split shipment's parts (empty unless `fallback == .split`); `storeSlot` is then the first part's.
    public var parts: [PlanPart] = []
    /// The chosen location is closed now and opens in this many minutes (within the after-hours window).
    public var opensInMinutes: Int?
    /// The candidates the ranking compared (weighted mode or a priority band), best first.
    public var ranked: [RankedCandidate] = []

    public var isRouted: Bool { storeSlot != nil }

    /// One human sentence summarising the decision.
    public var summary: String {
        if fallback == .split {
            return "split over \(parts.count) locations (no single location in reach holds every line): "
                + parts.map { "\($0.storeID) at \(Int($0.distanceMetres.rounded())) m" }.joined(separator: ", ")
        }
        if let id = storeID, let d = distanceMetres {
            let skippedPart = skipped.isEmpty ? "" : "; \(skipped.count) nearer store(s) skipped"
            return "nearest eligible store with every line in stock: \(id) at \(Int(d.rounded())) m (\(path.rawValue)\(skippedPart))"
        }
        return "unroutable: \(unroutableReason ?? "no_store_in_reach") within \(Int(reachMetres)) m after examining \(examined) store(s)"
    }
}

extension RoutingDecision {
    /// The plan chose a store whose reservation then failed: the decision is unroutable (`reservation_failed`), and
    /// says so in its summary instead of naming the store it could not have.
    public mutating func reservationFailed() {
        storeSlot = nil
        storeID = nil
        distanceMetres = nil
        unroutableReason = "reservation_failed"
    }

    /// A decision made without searching (an SKU no store lists, a line with no merchant SKU).
    public static func unroutable(reason: String, reachMetres: Double) -> RoutingDecision {
        RoutingDecision(
            storeSlot: nil, storeID: nil, distanceMetres: nil, skipped: [], examined: 0, path: .none,
            reachMetres: reachMetres, unroutableReason: reason, fallback: nil)
    }
}
