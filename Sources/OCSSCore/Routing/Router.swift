/// Finds the nearest eligible store that holds every line of an order.
///
/// Two search paths give the same answer: the best-first k-d tree walk, and a scan of the stores
/// that list the order's rarest SKU. The scan wins when that SKU is listed in few stores (the walk
/// would skip many nearer stores), chosen by `count * count <= storeCount`.
public struct Router: Sendable {
    public var policy: RoutingPolicy

    public init(policy: RoutingPolicy = RoutingPolicy()) { self.policy = policy }

    /// Routes `lines` for a customer at `point`.
    /// - Parameters:
    ///   - excluded: store slots that must not be chosen (they rejected this order).
    ///   - trace: record skipped candidates (off in benchmarks' hot loop).

    public func route(
        at point: GeoPoint,
        lines: [Demand],
        index: StoreIndex,
        ledger: InventoryLedger,
        excluded: Set<Int32> = [],
        trace: Bool = true,
        scratch: WalkScratch
    ) -> RoutingDecision {
        route(at: UnitVector(point), lines: lines, index: index, ledger: ledger, excluded: excluded, trace: trace, scratch: scratch)
    }

    /// Same as `route(at:...)` for a precomputed unit vector.
    public func route(
        at q: UnitVector,
        lines: [Demand],
        index: StoreIndex,
        ledger: InventoryLedger,
        excluded: Set<Int32> = [],
        trace: Bool = true,
        scratch: WalkScratch
    ) -> RoutingDecision {
        var decision = RoutingDecision(
            storeSlot: nil, storeID: nil, distanceMetres: nil, skipped: [], examined: 0,
            path: .none, reachMetres: policy.reachMetres, unroutableReason: nil)
        guard index.stores.count > 0 else {
            decision.unroutableReason = "no_stores"
            return decision
        }
        let maxD2 = Sphere.chordSquared(forDistance: policy.reachMetres)
        // Rarest SKU: fewest stores listing it.
        var rarest = -1, rarestCount = Int.max
        for line in lines {
            let c = Int(line.sku) < ledger.storesBySKU.count ? ledger.storesBySKU[Int(line.sku)].count : 0
            if c < rarestCount {
                rarestCount = c
                rarest = Int(line.sku)
            }
        }
        if rarest >= 0 && rarestCount == 0 {
            decision.unroutableReason = "sku_not_stocked:\(ledger.skuNames[rarest])"
            return decision
        }
        if rarest >= 0 && rarestCount * rarestCount <= index.stores.count {
            decision.path = .rarestSKUScan
            scan(candidates: ledger.storesBySKU[rarest], q: q, maxD2: maxD2, lines: lines, index: index,
                 ledger: ledger, excluded: excluded, trace: trace, into: &decision)
        } else {
            decision.path = .walk
            walk(q: q, maxD2: maxD2, lines: lines, index: index, ledger: ledger, excluded: excluded,
                 trace: trace, scratch: scratch, into: &decision)
        }
        if decision.storeSlot == nil { decision.unroutableReason = "no_store_in_reach" }
        return decision
    }

    @inline(__always)
    func skipReason(slot: Int32, lines: [Demand], index: StoreIndex, ledger: InventoryLedger, excluded: Set<Int32>) -> SkipReason?? {
        let store = index.stores[Int(slot)]
        if store.status != .open { return .some(.notOpen(store.status)) }
        if !excluded.isEmpty && excluded.contains(slot) { return .some(.rejectedBefore) }
        if !ledger.canFill(store: slot, lines: lines) { return .some(nil) }  // out of stock; details only if traced
        return nil
    }

    func walk(q: UnitVector, maxD2: Double, lines: [Demand], index: StoreIndex, ledger: InventoryLedger,
              excluded: Set<Int32>, trace: Bool, scratch: WalkScratch, into d: inout RoutingDecision) {
        var w = NearestWalk(tree: index.tree, from: q, maxChordSquared: maxD2, scratch: scratch)
        while let (treeSlot, d2) = w.next() {
            let slot = index.tree.payload(atSlot: treeSlot)
            d.examined += 1
            if let reason = skipReason(slot: slot, lines: lines, index: index, ledger: ledger, excluded: excluded) {
                if trace { record(slot: slot, d2: d2, reason: reason, lines: lines, index: index, ledger: ledger, into: &d) }
                continue
            }
            accept(slot: slot, d2: d2, index: index, into: &d)
            return
        }
    }

    func scan(candidates: [Int32], q: UnitVector, maxD2: Double, lines: [Demand], index: StoreIndex,
              ledger: InventoryLedger, excluded: Set<Int32>, trace: Bool, into d: inout RoutingDecision) {
        var best: Int32 = -1
        var bestD2 = Double.infinity
        var skippedNearer: [(Int32, Double, SkipReason?)] = []
        for slot in candidates {
            let p = index.stores[Int(slot)].location
            let d2 = UnitVector(p).chordSquared(to: q)
            guard d2 <= maxD2 else { continue }
            d.examined += 1
            if let reason = skipReason(slot: slot, lines: lines, index: index, ledger: ledger, excluded: excluded) {
                if trace { skippedNearer.append((slot, d2, reason)) }
                continue
            }
            if d2 < bestD2 || (d2 == bestD2 && slot < best) {
                best = slot
                bestD2 = d2
            }
        }
        if trace {
            for (slot, d2, reason) in skippedNearer.sorted(by: { $0.1 < $1.1 }) where d2 <= bestD2 {
                record(slot: slot, d2: d2, reason: reason, lines: lines, index: index, ledger: ledger, into: &d)
            }
        }
        if best >= 0 { accept(slot: best, d2: bestD2, index: index, into: &d) }
    }

    func accept(slot: Int32, d2: Double, index: StoreIndex, into d: inout RoutingDecision) {
        d.storeSlot = slot
        d.storeID = index.stores[Int(slot)].id
        d.distanceMetres = Sphere.arc(forChordSquared: d2) * Sphere.meanRadius
    }

    func record(slot: Int32, d2: Double, reason: SkipReason?, lines: [Demand], index: StoreIndex,
                ledger: InventoryLedger, into d: inout RoutingDecision) {
        guard d.skipped.count < policy.traceLimit else { return }
        let resolved = reason ?? .outOfStock(missing: ledger.missing(store: slot, lines: lines).map { ledger.skuNames[Int($0)] })
        d.skipped.append(Candidate(
            storeID: index.stores[Int(slot)].id,
            distanceMetres: Sphere.arc(forChordSquared: d2) * Sphere.meanRadius,
            skipped: resolved))
    }
}
