/// The whole decision: the store search, then ranking, then the fallbacks the policy allows
/// (a regional warehouse, then a split shipment over the fewest locations).
extension Router {
    public func plan(
        at point: GeoPoint,
        lines: [Demand],
        index: StoreIndex,
        ledger: InventoryLedger,
        stock: StockIndex? = nil,
        excluded: Set<Int32> = [],
        trace: Bool = true,
        allowSplit: Bool = true,
        context: RoutingContext = RoutingContext(),
        scratch: WalkScratch
    ) -> RoutingDecision {
        plan(
            vector: UnitVector(point), point: point, lines: lines, index: index, ledger: ledger, stock: stock, excluded: excluded,
            trace: trace, allowSplit: allowSplit, context: context, scratch: scratch)
    }

    /// Same as `plan(at:...)` with the point's unit vector precomputed.
    public func plan(
        vector q: UnitVector,
        point: GeoPoint,
        lines: [Demand],
        index: StoreIndex,
        ledger: InventoryLedger,
        stock: StockIndex? = nil,
        excluded: Set<Int32> = [],
        trace: Bool = true,
        allowSplit: Bool = true,
        context: RoutingContext = RoutingContext(),
        scratch: WalkScratch
    ) -> RoutingDecision {
        // Several lines may name one SKU: stock is checked against their sum, and split parts keep them together.
        if let merged = MergedDemands(lines) {
            var d = plan(
                vector: q, point: point, lines: merged.demands, index: index, ledger: ledger, stock: stock, excluded: excluded,
                trace: trace, allowSplit: allowSplit, context: context, scratch: scratch)
            for i in d.parts.indices { d.parts[i].lineIndexes = d.parts[i].lineIndexes.flatMap { merged.lines[$0] }.sorted() }
            return d
        }
        var ctx = context
        ctx.point = point
        var d = route(
            at: q, lines: lines, index: index, ledger: ledger, stock: stock, excluded: excluded, trace: trace, context: ctx,
            scratch: scratch)
        let horizon = Int64(policy.afterHoursWindowMinutes)
        if d.storeSlot != nil {
            rank(
                q: q, lines: lines, env: Env(index: index, ledger: ledger, excluded: excluded, ctx: ctx, kinds: .stores, hoursHorizon: horizon),
                scratch: scratch, into: &d)
        }
        // Routed, or nothing to fall back to (`no_stores`, an SKU no location lists).
        guard d.storeSlot == nil, d.path != .none else {
            noteOpening(&d, index: index, ledger: ledger, excluded: excluded, ctx: ctx)
            return d
        }
        if policy.warehouseFallback && !index.warehouseSlots.isEmpty {
            let env = Env(index: index, ledger: ledger, excluded: excluded, ctx: ctx, kinds: .warehouses, hoursHorizon: horizon)
            let limit = Sphere.chordSquared(forDistance: policy.warehouseReachMetres)
            var found: [(Double, Int32)] = []
            for slot in index.warehouseSlots {
                let d2 = index.vectors[Int(slot)].chordSquared(to: q)
                let own = index.flags[Int(slot)] & StoreIndex.Flag.radius != 0 ? index.radiusChord2[Int(slot)] : limit
                if d2 <= own { found.append((d2, slot)) }
            }
            found.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            let ordered = CheckOrder(lines: lines, first: 0)
            for (d2, slot) in found {
                d.examined += 1
                if let reason = skipReason(slot: slot, d2: d2, lines: ordered, env: env) {
                    if trace { record(slot: slot, d2: d2, reason: reason, lines: ordered, env: env, into: &d) }
                    continue
                }
                accept(slot: slot, d2: d2, index: index, into: &d)
                d.fallback = .warehouse
                d.unroutableReason = nil
                break
            }
        }
        if d.storeSlot == nil && allowSplit && policy.split.enabled && lines.count > 1 {
            if let parts = splitCover(
                q: q, lines: lines, index: index, ledger: ledger, excluded: excluded, ctx: ctx,
                scratch: scratch)
            {
                d.parts = parts
                d.fallback = .split
                d.storeSlot = parts[0].slot
                d.storeID = parts[0].storeID
                d.distanceMetres = parts[0].distanceMetres
                d.unroutableReason = nil
            }
        }
        noteOpening(&d, index: index, ledger: ledger, excluded: excluded, ctx: ctx)
        return d
    }

    /// Records when the chosen location opens, if it is closed now.
    private func noteOpening(_ d: inout RoutingDecision, index: StoreIndex, ledger: InventoryLedger, excluded: Set<Int32>, ctx: RoutingContext) {
        guard let slot = d.storeSlot, index.flags[Int(slot)] & StoreIndex.Flag.hours != 0 else { return }
        let env = Env(index: index, ledger: ledger, excluded: excluded, ctx: ctx, kinds: .any, hoursHorizon: Int64(policy.afterHoursWindowMinutes))
        if let m = opensIn(slot: slot, env: env), m > 0 { d.opensInMinutes = Int(m) }
    }

    /// Weighted ranking, or priority within a band beyond the nearest: gathers eligible stores in
    /// distance order and picks the best score. Plain nearest-first policies skip this entirely.
    func rank(q: UnitVector, lines: [Demand], env: Env, scratch: WalkScratch, into d: inout RoutingDecision) {
        let r = policy.ranking
        let weighted = r.mode == .weighted
        guard weighted || (r.priorityBandMetres > 0 && env.index.hasPriority), let nearest = d.distanceMetres else { return }
        let index = env.index
        let limitMetres = weighted ? policy.reachMetres : min(policy.reachMetres, nearest + r.priorityBandMetres)
        let maxD2 = Sphere.chordSquared(forDistance: limitMetres)
        let most = weighted ? r.candidates : 256
        let ordered = CheckOrder(lines: lines, first: 0)
        var w = NearestWalk(tree: index.tree, from: q, maxChordSquared: maxD2, scratch: scratch)
        var scored: [(score: Double, d2: Double, slot: Int32)] = []
        while scored.count < most, let (treeSlot, d2) = w.next() {
            let slot = index.tree.payload(atSlot: treeSlot)
            if skipReason(slot: slot, d2: d2, lines: ordered, env: env) != nil { continue }
            let store = index.stores[Int(slot)]
            let metres = Sphere.arc(forChordSquared: d2) * Sphere.meanRadius
            var score: Double
            if weighted {
                var load = 0.0
                if let cap = store.rules.dailyCapacity, cap > 0 {
                    let used = env.ctx.capacity?.used(slot: slot, localDay: env.ctx.localDay(zone: index.zone[Int(slot)])) ?? 0
                    load = Double(used) / Double(cap)
                }
                score = r.distanceWeight * metres / policy.reachMetres + r.capacityWeight * load - r.priorityWeight * Double(store.rules.priority)
            } else {
                score = -Double(store.rules.priority)
            }
            score = (score * 1e9).rounded() / 1e9
            scored.append((score, d2, slot))
        }
        guard !scored.isEmpty else { return }
        scored.sort { ($0.score, $0.d2, $0.slot) < ($1.score, $1.d2, $1.slot) }
        d.ranked = scored.prefix(policy.traceLimit).map {
            RankedCandidate(
                storeID: index.stores[Int($0.slot)].id, distanceMetres: Sphere.arc(forChordSquared: $0.d2) * Sphere.meanRadius,
                score: $0.score)
        }
        accept(slot: scored[0].slot, d2: scored[0].d2, index: index, into: &d)
        // Stores skipped on the way out are still listed; the chosen one may now be farther than some of them.
        d.skipped.removeAll { $0.storeID == d.storeID }
    }

    /// Greedy set cover: repeatedly the location (store in reach or warehouse in its reach) that can
    /// ship the most remaining lines, nearest first on ties, up to the policy's part limit. A line is
    /// never divided. Nil when the lines cannot all be covered.
    func splitCover(
        q: UnitVector, lines: [Demand], index: StoreIndex, ledger: InventoryLedger, excluded: Set<Int32>,
        ctx: RoutingContext, scratch: WalkScratch
    ) -> [PlanPart]? {
        guard lines.count <= 64 else { return nil }
        let env = Env(index: index, ledger: ledger, excluded: excluded, ctx: ctx, kinds: .any, hoursHorizon: Int64(policy.afterHoursWindowMinutes))
        let storeD2 = Sphere.chordSquared(forDistance: policy.reachMetres)
        let warehouseD2 = policy.warehouseFallback ? Sphere.chordSquared(forDistance: policy.warehouseReachMetres) : -1
        var candidates: [(mask: UInt64, d2: Double, slot: Int32)] = []
        func consider(_ slot: Int32, _ d2: Double) {
            let s = Int(slot)
            let f = index.flags[s]
            let isWarehouse = f & StoreIndex.Flag.warehouse != 0
            var limit = isWarehouse ? warehouseD2 : storeD2
            if isWarehouse && f & StoreIndex.Flag.radius != 0 && policy.warehouseFallback { limit = index.radiusChord2[s] }
            guard d2 <= limit, excluded.isEmpty || !excluded.contains(slot) else { return }
            var mask: UInt64 = 0
            for (i, l) in lines.enumerated() where ledger.available(store: slot, sku: l.sku) >= l.quantity { mask |= 1 << UInt64(i) }
            guard mask != 0 else { return }
            if f != 0, statusReason(slot: slot, flags: f, env: env) != nil || ruleReason(slot: slot, flags: f, d2: d2, env: env) != nil { return }
            candidates.append((mask, d2, slot))
        }
        // Candidates are the locations in reach: stores within the store reach (k-d tree walk), then every
        // warehouse against its own reach. Not the stores listing each SKU: a popular SKU is listed nationwide,
        // and orders nobody in reach can fill came here too.
        var w = NearestWalk(tree: index.tree, from: q, maxChordSquared: storeD2, scratch: scratch)
        while let (treeSlot, d2) = w.next() {
            let slot = index.tree.payload(atSlot: treeSlot)
            if index.flags[Int(slot)] & StoreIndex.Flag.warehouse == 0 { consider(slot, d2) }
        }
        for slot in index.warehouseSlots { consider(slot, index.vectors[Int(slot)].chordSquared(to: q)) }
        let all: UInt64 = lines.count == 64 ? ~0 : (1 << UInt64(lines.count)) - 1
        var remaining = all
        var parts: [PlanPart] = []
        while remaining != 0 && parts.count < policy.split.maxParts {
            var best: (count: Int, d2: Double, slot: Int32, mask: UInt64)?
            for c in candidates {
                let n = (c.mask & remaining).nonzeroBitCount
                guard n > 0 else { continue }
                if let b = best, n < b.count || (n == b.count && (c.d2, c.slot) >= (b.d2, b.slot)) { continue }
                best = (n, c.d2, c.slot, c.mask & remaining)
            }
            guard let b = best else { return nil }
            remaining &= ~b.mask
            parts.append(
                PlanPart(
                    slot: b.slot, storeID: index.stores[Int(b.slot)].id,
                    distanceMetres: Sphere.arc(forChordSquared: b.d2) * Sphere.meanRadius,
                    lineIndexes: (0..<lines.count).filter { b.mask & (1 << UInt64($0)) != 0 }))
        }
        return remaining == 0 && parts.count > 1 ? parts : nil
    }

    /// True when some location that is not closed covers `point`: a store within its service radius
    /// (at most the reach) and area, or, with the warehouse fallback, a warehouse within its reach.
    /// Stock, hours and capacity do not matter here: this is where ocss delivers at all.
    public func serves(_ point: GeoPoint, index: StoreIndex, scratch: WalkScratch) -> Bool {
        let q = UnitVector(point)
        let storeD2 = Sphere.chordSquared(forDistance: policy.reachMetres)
        func covers(_ slot: Int32, _ d2: Double) -> Bool {
            let s = Int(slot)
            let store = index.stores[s]
            if store.status == .closed { return false }
            if store.kind == .warehouse {
                guard policy.warehouseFallback else { return false }
                let limit =
                    store.rules.serviceRadiusMetres.map { Sphere.chordSquared(forDistance: $0) }
                    ?? Sphere.chordSquared(forDistance: policy.warehouseReachMetres)
                if d2 > limit { return false }
            } else if d2 > storeD2 || d2 > index.radiusChord2[s] {
                return false
            }
            if let area = store.rules.serviceArea, !area.contains(point) { return false }
            return true
        }
        for slot in index.warehouseSlots where covers(slot, index.vectors[Int(slot)].chordSquared(to: q)) { return true }
        var w = NearestWalk(tree: index.tree, from: q, maxChordSquared: storeD2, scratch: scratch)
        while let (treeSlot, d2) = w.next() {
            if covers(index.tree.payload(atSlot: treeSlot), d2) { return true }
        }
        return false
    }
}

/// An order's demands with the lines naming one SKU summed: nil when every line names a different SKU (the usual case).
struct MergedDemands {
    /// One demand per SKU, in order of first appearance.
    var demands: [Demand] = []
    /// For each merged demand, the indexes of the order lines it sums.
    var lines: [[Int]] = []

    init?(_ all: [Demand]) {
        if all.count <= 16 {
            guard all.indices.contains(where: { i in all[..<i].contains { $0.sku == all[i].sku } }) else { return nil }
        } else {
            var seen = Set<SKUIndex>(minimumCapacity: all.count)
            guard all.contains(where: { !seen.insert($0.sku).inserted }) else { return nil }
        }
        var at: [SKUIndex: Int] = [:]
        for (i, d) in all.enumerated() {
            if let k = at[d.sku] {
                let (sum, overflow) = demands[k].quantity.addingReportingOverflow(d.quantity)
                demands[k].quantity = overflow ? .max : sum
                lines[k].append(i)
            } else {
                at[d.sku] = demands.count
                demands.append(d)
                lines.append([i])
            }
        }
    }
}
