/// Why a candidate store was passed over.
public enum SkipReason: Sendable, Hashable {
    /// The store lacks these SKUs (names) in the ordered quantity.
    case outOfStock(missing: [String])
    /// The store is paused or closed.
    case notOpen(StoreStatus)
    /// The store already rejected this order.
    case rejectedBefore

    /// Stable machine code.
    public var code: String {
        switch self {
        case .outOfStock: "out_of_stock"
        case .notOpen(let s): s == .paused ? "paused" : "closed"
        case .rejectedBefore: "rejected_before"
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
    /// Why there is no store, when there is none: `no_store_in_reach`, `sku_not_stocked:<sku>`.
    public var unroutableReason: String?

    public var isRouted: Bool { storeSlot != nil }

    /// One human sentence summarising the decision.
    public var summary: String {
        if let id = storeID, let d = distanceMetres {
            let skippedPart = skipped.isEmpty ? "" : "; \(skipped.count) nearer store(s) skipped"
            return "nearest eligible store with every line in stock: \(id) at \(Int(d.rounded())) m (\(path.rawValue)\(skippedPart))"
        }
        return "unroutable: \(unroutableReason ?? "no_store_in_reach") within \(Int(reachMetres)) m after examining \(examined) store(s)"
    }
}

extension RoutingDecision {
    /// A decision made without searching (an SKU no store lists, a line with no merchant SKU).
    public static func unroutable(reason: String, reachMetres: Double) -> RoutingDecision {
        RoutingDecision(storeSlot: nil, storeID: nil, distanceMetres: nil, skipped: [], examined: 0, path: .none,
                        reachMetres: reachMetres, unroutableReason: reason)
    }
}
