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
        stock: StockIndex? = nil,
        excluded: Set<Int32> = [],
        trace: Bool = true,
        context: RoutingContext = RoutingContext(),
        scratch: WalkScratch
    ) -> RoutingDecision {
        var ctx = context
        if ctx.point == nil { ctx.point = point }
        return route(
            at: UnitVector(point), lines: lines, index: index, ledger: ledger, stock: stock, excluded: excluded, trace: trace,
            context: ctx, scratch: scratch)
    }

    /// Same as `route(at:...)` for a precomputed unit vector.
    public func route(
        at q: UnitVector,
        lines: [Demand],
        index: StoreIndex,
        ledger: InventoryLedger,
        stock: StockIndex? = nil,
        excluded: Set<Int32> = [],
        trace: Bool = true,
        context ctx: RoutingContext = RoutingContext(),
        scratch: WalkScratch
    ) -> RoutingDecision {
        let env = Env(
            index: index, ledger: ledger, excluded: excluded, ctx: ctx, kinds: .stores,
            hoursHorizon: Int64(policy.afterHoursWindowMinutes))
        var decision = RoutingDecision(
            storeSlot: nil, storeID: nil, distanceMetres: nil, skipped: [], examined: 0,
            path: .none, reachMetres: policy.reachMetres, unroutableReason: nil, fallback: nil)
        guard index.stores.count > 0 else {
            decision.unroutableReason = "no_stores"
            return decision
        }
        let maxD2 = Sphere.chordSquared(forDistance: policy.reachMetres)
        // Rarest SKU: fewest stores listing it. Its line is checked first: it rejects most stores.
        var rarest = -1, rarestCount = Int.max, rarestLine = 0
        for (i, line) in lines.enumerated() {
            let c = Int(line.sku) < ledger.storesBySKU.count ? ledger.storesBySKU[Int(line.sku)].count : 0
            if c < rarestCount {
                rarestCount = c
                rarest = Int(line.sku)
                rarestLine = i
            }
        }
        let ordered = CheckOrder(lines: lines, first: rarestLine)
        if rarest >= 0 && rarestCount == 0 {
            decision.unroutableReason = "sku_not_stocked:\(ledger.skuNames[rarest])"
            return decision
        }
        let n = index.stores.count
        if rarest >= 0, let stock, stock.isCurrent(for: index), let (tree, covered) = stock.tree(for: rarest) {
            decision.path = .rarestSKUTree
            // Rows added since the trees were built: a short linear scan, which also bounds the walk.
            let list = ledger.storesBySKU[rarest]
            if covered < list.count {
                scan(
                    candidates: Array(list[covered...]), from: 0, q: q, maxD2: maxD2, lines: ordered, env: env, scratch: scratch,
                    into: &decision)
            }
            let bound = decision.storeSlot.map { index.vectors[Int($0)].chordSquared(to: q) } ?? maxD2
            var w = NearestWalk(tree: tree, from: q, maxChordSquared: bound, scratch: scratch)
            while let (treeSlot, d2) = w.next() {
                let slot = tree.payload(atSlot: treeSlot)
                decision.examined += 1
                if skipReason(slot: slot, d2: d2, lines: ordered, env: env) != nil { continue }
                if d2 < bound || decision.storeSlot == nil { accept(slot: slot, d2: d2, index: index, into: &decision) }
                break
            }
        } else if rarest >= 0 && rarestCount * rarestCount <= Router.scanFactor * n {
            decision.path = .rarestSKUScan
            scan(
                candidates: ledger.storesBySKU[rarest], from: 0, q: q, maxD2: maxD2, lines: ordered, env: env, scratch: scratch,
                into: &decision)
        } else {
            decision.path = .walk
            // The walk should succeed after about n / rarestCount candidates; far past that, the
            // stock is probably not near, and the rarest SKU's own list is the cheaper way out.
            let budget =
                rarest >= 0
                ? Swift.max(Router.minWalkBudget, 4 * n / Swift.max(rarestCount, 1))
                : Int.max
            if let radius = walk(
                q: q, maxD2: maxD2, lines: ordered, env: env, trace: trace, budget: budget, scratch: scratch,
                into: &decision)
            {
                decision.path = .rarestSKUScan
                scan(
                    candidates: ledger.storesBySKU[rarest], from: radius, q: q, maxD2: maxD2, lines: ordered, env: env,
                    scratch: scratch, into: &decision)
            }
        }
        if decision.storeSlot == nil { decision.unroutableReason = Router.emptyHanded(q: q, maxD2: maxD2, index: index, scratch: scratch) }
        // The tree and scan paths look only at stores listing the rarest SKU and record nothing while
        // searching; the explanation is built once, here, from the nearer stores of every kind.
        if trace && decision.path != .walk {
            explainNearer(q: q, maxD2: maxD2, lines: ordered, env: env, scratch: scratch, into: &decision)
        }
        return decision
    }

    /// Why a search that examined the reach found nothing: `no_store_in_reach` when no store lies within it at
    /// all (a coverage gap: open a store or widen the reach), `no_eligible_store_in_reach` when stores lie within
    /// it but none could take every line (stock, status, hours, capacity or an earlier rejection; `skipped` says
    /// which). Only unroutable decisions pay for this walk, and it stops at the first location.
    static func emptyHanded(q: UnitVector, maxD2: Double, index: StoreIndex, scratch: WalkScratch) -> String {
        var w = NearestWalk(tree: index.tree, from: q, maxChordSquared: maxD2, scratch: scratch)
        while let (treeSlot, _) = w.next() {
            if index.flags[Int(index.tree.payload(atSlot: treeSlot))] & StoreIndex.Flag.warehouse == 0 { return "no_eligible_store_in_reach" }
        }
        return "no_store_in_reach"
    }

    /// The scan looks only at stores that list the rarest SKU; an explanation must also name the
    /// nearer stores that do not. Walks outward to the chosen store (or the reach), up to the trace
    /// limit. Only for traced decisions, never in the benchmark's hot loop.
    func explainNearer(q: UnitVector, maxD2: Double, lines: CheckOrder, env: Env, scratch: WalkScratch, into d: inout RoutingDecision) {
        let index = env.index
        let limit = d.storeSlot.map { index.vectors[Int($0)].chordSquared(to: q) } ?? maxD2
        d.skipped.removeAll()
        var w = NearestWalk(tree: index.tree, from: q, maxChordSquared: limit, scratch: scratch)
        while d.skipped.count < policy.traceLimit, let (treeSlot, d2) = w.next() {
            let slot = index.tree.payload(atSlot: treeSlot)
            if slot == d.storeSlot { continue }
            guard let reason = skipReason(slot: slot, d2: d2, lines: lines, env: env) else { continue }
            record(slot: slot, d2: d2, reason: reason, lines: lines, env: env, into: &d)
        }
    }

    /// Scan instead of walking when count² <= scanFactor * stores (a scan step is several times
    /// cheaper than a walk step: no heap, just a dot product).
    static let scanFactor = 16
    /// Fewest candidates the walk examines before it may hand over to the scan.
    static let minWalkBudget = 48

    /// Why `slot` cannot take the order: `.some(reason)`, `.some(nil)` for out of stock (details
    /// computed only when traced), nil when eligible. One pass: a plain open store costs one byte
    /// load before its stock check; the store's own rules run only for stores that hold the stock
    /// (they rarely reject, and stock rejects most candidates).
    @inline(__always)
    func skipReason(slot: Int32, d2: Double, lines: CheckOrder, env: Env) -> SkipReason?? {
        let f = env.index.flags[Int(slot)]
        if let r = statusReason(slot: slot, flags: f, env: env) { return .some(r) }
        if !env.excluded.isEmpty && env.excluded.contains(slot) { return .some(.rejectedBefore) }
        if !env.ledger.canFill(store: slot, lines: lines.lines, first: lines.first) { return .some(nil) }
        if f & StoreIndex.Flag.rules != 0, let r = ruleReason(slot: slot, flags: f, d2: d2, env: env) { return .some(r) }
        return nil
    }

    /// Status and kind: paused or closed, or the wrong kind of location for this pass.
    @inline(__always)
    func statusReason(slot: Int32, flags f: UInt8, env: Env) -> SkipReason? {
        if f & StoreIndex.Flag.notOpen != 0 { return .notOpen(env.index.stores[Int(slot)].status) }
        let isWarehouse = f & StoreIndex.Flag.warehouse != 0
        switch env.kinds {
        case .stores where isWarehouse: return .warehouseOnly
        case .warehouses where !isWarehouse: return .warehouseOnly
        default: return nil
        }
    }

    /// The store's own rules (service area, capacity, hours), status and stock aside.
    func ruleReason(slot: Int32, flags f: UInt8, d2: Double, env: Env) -> SkipReason? {
        let s = Int(slot)
        let index = env.index
        if f & StoreIndex.Flag.radius != 0 && d2 > index.radiusChord2[s] { return .outsideServiceArea }
        if f & StoreIndex.Flag.area != 0, let p = env.ctx.point, let area = index.stores[s].rules.serviceArea, !area.contains(p) {
            return .outsideServiceArea
        }
        if f & StoreIndex.Flag.capacity != 0 {
            let cap = index.capacity[s]
            let used = env.ctx.capacity?.used(slot: slot, localDay: env.ctx.localDay(zone: index.zone[s])) ?? 0
            if used >= cap { return .capacityFull(used: Int(used), capacity: Int(cap)) }
        }
        if f & StoreIndex.Flag.hours != 0, opensIn(slot: slot, env: env) == nil { return .closedHours }
        return nil
    }

    /// Minutes until `slot` opens (0 = open now), nil when not within the after-hours window.
    func opensIn(slot: Int32, env: Env) -> Int64? {
        let s = Int(slot)
        let index = env.index
        let local = env.ctx.localSeconds(zone: index.zone[s])
        let minute = local >= 0 ? local / 60 : (local - 59) / 60
        let ref = Int(index.hoursRef[s])
        let noHolidays = index.flags[s] & StoreIndex.Flag.holidays == 0
        // Fast path: open now by today's own intervals and no holidays to think about.
        if noHolidays {
            guard ref >= 0 else { return 0 }
            let day = minute >= 0 ? minute / 1440 : (minute - 1439) / 1440
            let m = Int(minute - day * 1440)
            for i in index.hoursTable[ref].days[LocalDate.weekday(dayNumber: day)] where m >= i.start && m < i.end { return 0 }
        }
        let hours = ref >= 0 ? index.hoursTable[ref] : WeeklyHours.alwaysOpen
        return hours.minutesUntilOpen(atLocalMinute: minute, closedDays: noHolidays ? [] : index.holidays[s], horizon: env.hoursHorizon)
    }

    /// Walks outward. Returns nil when finished (chosen or exhausted), or the squared radius reached
    /// when the budget ran out: every store strictly nearer has been examined and skipped.
    func walk(
        q: UnitVector, maxD2: Double, lines: CheckOrder, env: Env, trace: Bool, budget: Int, scratch: WalkScratch,
        into d: inout RoutingDecision
    ) -> Double? {
        let index = env.index
        var w = NearestWalk(tree: index.tree, from: q, maxChordSquared: maxD2, scratch: scratch)
        var visited = 0
        while let (treeSlot, d2) = w.next() {
            if visited >= budget { return d2 }
            visited += 1
            let slot = index.tree.payload(atSlot: treeSlot)
            d.examined += 1
            if let reason = skipReason(slot: slot, d2: d2, lines: lines, env: env) {
                if trace { record(slot: slot, d2: d2, reason: reason, lines: lines, env: env, into: &d) }
                continue
            }
            accept(slot: slot, d2: d2, index: index, into: &d)
            return nil
        }
        return nil
    }

    /// Nearest eligible store among `candidates` with squared distance in `from...maxD2`.
    /// Distances are cheap and stock checks are cache misses, so it first keeps the candidates in
    /// reach, orders them by distance, and checks stock only until the first eligible one.
    func scan(
        candidates: [Int32], from minD2: Double, q: UnitVector, maxD2: Double, lines: CheckOrder, env: Env,
        scratch: WalkScratch, into d: inout RoutingDecision
    ) {
        let index = env.index
        var inReach: [(Double, Int32)] = []
        swap(&inReach, &scratch.candidates)
        defer {
            inReach.removeAll(keepingCapacity: true)
            swap(&inReach, &scratch.candidates)
        }
        index.vectors.withUnsafeBufferPointer { vs in
            for slot in candidates {
                let d2 = vs[Int(slot)].chordSquared(to: q)
                if d2 <= maxD2 && d2 >= minD2 { inReach.append((d2, slot)) }
            }
        }
        inReach.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        for (d2, slot) in inReach {
            d.examined += 1
            if skipReason(slot: slot, d2: d2, lines: lines, env: env) != nil { continue }
            accept(slot: slot, d2: d2, index: index, into: &d)
            return
        }
    }

    func accept(slot: Int32, d2: Double, index: StoreIndex, into d: inout RoutingDecision) {
        d.storeSlot = slot
        d.storeID = index.stores[Int(slot)].id
        d.distanceMetres = Sphere.arc(forChordSquared: d2) * Sphere.meanRadius
    }

    func record(slot: Int32, d2: Double, reason: SkipReason?, lines: CheckOrder, env: Env, into d: inout RoutingDecision) {
        guard d.skipped.count < policy.traceLimit, reason != .warehouseOnly else { return }
        let ledger = env.ledger
        let resolved = reason ?? .outOfStock(missing: ledger.missing(store: slot, lines: lines.lines).map { ledger.skuNames[Int($0)] })
        d.skipped.append(
            Candidate(
                storeID: env.index.stores[Int(slot)].id,
                distanceMetres: Sphere.arc(forChordSquared: d2) * Sphere.meanRadius,
                skipped: resolved))
    }
}

/// Which kinds of location a pass considers.
enum KindFilter {
    case stores, warehouses, any
}

/// Everything one pass checks candidates against.
struct Env {
    let index: StoreIndex
    let ledger: InventoryLedger
    let excluded: Set<Int32>
    let ctx: RoutingContext
    let kinds: KindFilter
    let hoursHorizon: Int64
}

/// An order's lines with the one to check first (the rarest).
struct CheckOrder {
    let lines: [Demand]
    let first: Int
}
