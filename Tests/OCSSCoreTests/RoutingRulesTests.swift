import OCSSCore
import OCSSTestSupport
import Testing

/// Stores along a line east of (120, 30): store i sits i km east.
private func line(_ rules: [StoreRules], kinds: [StoreKind]? = nil) -> StoreIndex {
    StoreIndex(
        stores: rules.enumerated().map { i, r in
            Store(
                id: "S\(i)", code: "S\(i)", name: "S\(i)", location: GeoPoint(lon: 120 + Double(i) * 0.01037, lat: 30),
                kind: kinds?[i] ?? .store, rules: r)
        })
}

private func stocked(_ n: Int, _ rows: [(store: Int, sku: String, qty: Int32)]) -> InventoryLedger {
    var l = InventoryLedger()
    l.ensureStores(n)
    for r in rows { l.setOnHand(store: Int32(r.store), sku: l.intern(r.sku), quantity: r.qty) }
    return l
}

private let home = GeoPoint(lon: 120, lat: 30)
/// 2026-11-26 (a Thursday) 14:00 UTC = 22:00 in Shanghai.
private let thursday22h: Int64 = LocalDate.days(year: 2026, month: 11, day: 26) * 86_400 + 14 * 3600

private func demand(_ l: InventoryLedger, _ items: [(String, Int32)]) -> [Demand] {
    items.map { Demand(sku: l.index(of: $0.0)!, quantity: $0.1) }
}

@Suite struct RoutingRulesTests {
    let scratch = WalkScratch()

    @Test func dailyCapacityIsCountedPerLocalDay() {
        let index = line([StoreRules(dailyCapacity: 1), StoreRules()])
        let ledger = stocked(2, [(0, "A", 5), (1, "A", 5)])
        let book = CapacityBook()
        let ctx = RoutingContext(now: thursday22h, utcOffsets: [28_800], capacity: book)
        let router = Router()
        #expect(
            router.plan(at: home, lines: demand(ledger, [("A", 1)]), index: index, ledger: ledger, context: ctx, scratch: scratch).storeID == "S0")
        book.record(slot: 0, localDay: ctx.localDay(zone: 0))
        let d = router.plan(at: home, lines: demand(ledger, [("A", 1)]), index: index, ledger: ledger, context: ctx, scratch: scratch)
        #expect(d.storeID == "S1")
        #expect(d.skipped.first?.skipped == .capacityFull(used: 1, capacity: 1))
        // Two hours later it is the next local day in Shanghai: capacity is free again.
        var tomorrow = ctx
        tomorrow.now += 2 * 3600
        #expect(
            router.plan(at: home, lines: demand(ledger, [("A", 1)]), index: index, ledger: ledger, context: tomorrow, scratch: scratch).storeID
                == "S0")
    }

    @Test func openingHoursHolidaysAndTheAfterHoursWindow() throws {
        let hours = try #require(WeeklyHours.daily("09:00-21:00"))
        let index = line([StoreRules(hours: hours), StoreRules(hours: WeeklyHours.daily("20:00-02:00")), StoreRules()])
        let ledger = stocked(3, [(0, "A", 5), (1, "A", 5), (2, "A", 5)])
        let lines = demand(ledger, [("A", 1)])
        let ctx = RoutingContext(now: thursday22h, utcOffsets: [28_800])
        // 22:00: S0 closed (opens in 11 h, beyond the 60 min window); S1's late shift runs to 02:00.
        var d = Router().plan(at: home, lines: lines, index: index, ledger: ledger, context: ctx, scratch: scratch)
        #expect(d.storeID == "S1")
        #expect(d.skipped.map(\.skipped) == [.closedHours])
        // At 03:00 S1 is closed too; S2 has no hours (always open).
        var late = ctx
        late.now += 5 * 3600
        d = Router().plan(at: home, lines: lines, index: index, ledger: ledger, context: late, scratch: scratch)
        #expect(d.storeID == "S2")
        // With a 12 h window S0 takes it and the decision says when it opens.
        d = Router(policy: RoutingPolicy(afterHoursWindowMinutes: 720)).plan(
            at: home, lines: lines, index: index, ledger: ledger, context: ctx,
            scratch: scratch)
        #expect(d.storeID == "S0")
        #expect(d.opensInMinutes == 11 * 60)
        // A holiday closes the whole local day, whatever the hours.
        let holiday = line([StoreRules(holidays: ["2026-11-26"]), StoreRules()])
        var noon = ctx
        noon.now -= 10 * 3600
        d = Router().plan(at: home, lines: lines, index: holiday, ledger: stocked(2, [(0, "A", 5), (1, "A", 5)]), context: noon, scratch: scratch)
        #expect(d.storeID == "S1")
        // Another time zone: 22:00 in Shanghai is 09:00 in New York (EST, -5 h) on the same Thursday.
        let ny = line([StoreRules(timeZone: "America/New_York", hours: hours)])
        d = Router().plan(
            at: home, lines: lines, index: ny, ledger: stocked(1, [(0, "A", 5)]),
            context: RoutingContext(now: thursday22h, utcOffsets: [28_800, -18_000]), scratch: scratch)
        #expect(ny.timeZones == ["Asia/Shanghai", "America/New_York"])
        #expect(d.storeID == "S0")
        #expect(d.opensInMinutes == nil)
    }

    @Test func hoursParseAndOvernightIntervals() throws {
        let h = try #require(WeeklyHours.daily("22:00-02:00"))
        #expect(h.days[0] == [WeeklyHours.ClosedOpen(start: 1320, end: 1560)])
        #expect(WeeklyHours.daily("25:00-26:00") == nil)
        #expect(WeeklyHours.daily("09:00") == nil)
        #expect(WeeklyHours.daily("+9:00-21:00") == nil)
        #expect(WeeklyHours.daily("09:00-21:+0") == nil)
        #expect(WeeklyHours.daily("０9:00-21:00") == nil)
        #expect(LocalDate.dayNumber("2026-02-30") == nil)
        #expect(LocalDate.weekday(dayNumber: LocalDate.dayNumber("2026-11-26")!) == 3)  // Thursday
        // Monday 01:00 is still Sunday's late shift.
        let mondayOne = LocalDate.days(year: 2026, month: 11, day: 30) * 1440 + 60
        #expect(h.minutesUntilOpen(atLocalMinute: mondayOne, closedDays: [], horizon: 0) == 0)
        let wait = h.minutesUntilOpen(atLocalMinute: mondayOne + 60, closedDays: [], horizon: 24 * 60)
        #expect(wait == Int64(1200), "02:00 -> 22:00")
    }

    @Test func serviceRadiusAndAreaLimitWhereAStoreDelivers() {
        // S0 delivers within 500 m only; S1's area is a square that does not contain home; S2 has no limits.
        let square = ServiceArea(polygons: [
            [
                [
                    GeoPoint(lon: 120.005, lat: 29.99), GeoPoint(lon: 120.03, lat: 29.99),
                    GeoPoint(lon: 120.03, lat: 30.01), GeoPoint(lon: 120.005, lat: 30.01),
                    GeoPoint(lon: 120.005, lat: 29.99),
                ]
            ]
        ])
        let index = line([StoreRules(serviceRadiusMetres: 500), StoreRules(serviceArea: square), StoreRules()])
        let ledger = stocked(3, [(0, "A", 5), (1, "A", 5), (2, "A", 5)])
        let customer = GeoPoint(lon: 120.001, lat: 30)  // ~100 m from S0... inside 500 m
        #expect(Router().plan(at: customer, lines: demand(ledger, [("A", 1)]), index: index, ledger: ledger, scratch: scratch).storeID == "S0")
        let west = GeoPoint(lon: 119.99, lat: 30)  // ~1 km west: outside S0's radius and S1's square
        let d = Router().plan(at: west, lines: demand(ledger, [("A", 1)]), index: index, ledger: ledger, scratch: scratch)
        #expect(d.storeID == "S2")
        #expect(d.skipped.map(\.skipped) == [.outsideServiceArea, .outsideServiceArea])
        #expect(square.contains(GeoPoint(lon: 120.01, lat: 30)))
        // Coverage at intake: S2 (no limits, 50 km reach) covers west; a lone S0 does not.
        #expect(Router().serves(west, index: index, scratch: scratch))
        #expect(!Router().serves(west, index: line([StoreRules(serviceRadiusMetres: 500)]), scratch: scratch))
        #expect(Router().serves(customer, index: line([StoreRules(serviceRadiusMetres: 500)]), scratch: scratch))
    }

    @Test func warehousesServeOnlyWhenNoStoreCan() {
        // S0 is a warehouse next door with stock; S1 a store 1 km away; S2 a warehouse 5 km away.
        let index = line([StoreRules(), StoreRules(), StoreRules()], kinds: [.warehouse, .store, .warehouse])
        var ledger = stocked(3, [(0, "A", 5), (1, "A", 1), (2, "A", 5)])
        let lines = demand(ledger, [("A", 1)])
        var d = Router().plan(at: home, lines: lines, index: index, ledger: ledger, scratch: scratch)
        #expect(d.storeID == "S1")
        #expect(d.fallback == nil)
        #expect(d.skipped.isEmpty)  // warehouses are not "skipped nearer stores"
        ledger.setOnHand(store: 1, sku: lines[0].sku, quantity: 0)
        d = Router().plan(at: home, lines: lines, index: index, ledger: ledger, scratch: scratch)
        #expect(d.storeID == "S0")
        #expect(d.fallback == .warehouse)
        // Beyond the warehouse reach, or with the fallback off: unroutable.
        d = Router(policy: RoutingPolicy(warehouseFallback: false)).plan(at: home, lines: lines, index: index, ledger: ledger, scratch: scratch)
        #expect(d.storeID == nil)
        d = Router(policy: RoutingPolicy(warehouseReachMetres: 10)).plan(
            at: GeoPoint(lon: 120.02, lat: 30), lines: lines, index: index,
            ledger: ledger, scratch: scratch)
        #expect(d.storeID == nil)
    }

    @Test func linesNamingOneSKUAreCheckedAgainstTheirSum() {
        // S0 holds 5 A: each line of 3 fits, both together do not. S1 holds 6.
        let index = line([StoreRules(), StoreRules(), StoreRules()])
        var ledger = stocked(3, [(0, "A", 5), (1, "A", 6), (2, "B", 1)])
        let lines = demand(ledger, [("A", 3), ("A", 3)])
        let d = Router().plan(at: home, lines: lines, index: index, ledger: ledger, scratch: scratch)
        #expect(d.storeID == "S1")
        #expect(d.skipped.first?.storeID == "S0")
        #expect(throws: Never.self) { try ledger.reserve(store: 1, lines: lines) }
        // A split keeps the lines of one SKU together and names the order's own line indexes.
        ledger = stocked(3, [(0, "A", 6), (2, "B", 1)])
        let mixed = demand(ledger, [("A", 2), ("B", 1), ("A", 4)])
        let s = Router().plan(at: home, lines: mixed, index: index, ledger: ledger, scratch: scratch)
        #expect(s.fallback == .split)
        #expect(s.parts.map(\.storeID) == ["S0", "S2"])
        #expect(s.parts.map(\.lineIndexes) == [[0, 2], [1]])
    }

    @Test func splitUsesTheFewestLocationsNearestFirst() {
        // S0 has X, S1 has Y, S2 has X+Y, S3 has Z. An order for X, Y, Z needs two: S2 + S3 (not S0 + S1 + S3).
        let index = line(Array(repeating: StoreRules(), count: 4))
        let ledger = stocked(4, [(0, "X", 1), (1, "Y", 1), (2, "X", 1), (2, "Y", 1), (3, "Z", 1)])
        let lines = demand(ledger, [("X", 1), ("Y", 1), ("Z", 1)])
        let d = Router().plan(at: home, lines: lines, index: index, ledger: ledger, scratch: scratch)
        #expect(d.fallback == .split)
        #expect(d.parts.map(\.storeID) == ["S2", "S3"])
        #expect(d.parts.map(\.lineIndexes) == [[0, 1], [2]])
        #expect(d.summary.contains("split over 2 locations"))
        // Two lines both only at different single stores: nearest first on ties.
        let two = demand(ledger, [("X", 1), ("Z", 1)])
        #expect(Router().plan(at: home, lines: two, index: index, ledger: ledger, scratch: scratch).parts.map(\.storeID) == ["S0", "S3"])
        // Not within the part limit, or splitting off: unroutable.
        let tight = Router(policy: RoutingPolicy(split: .init(enabled: true, maxParts: 2)))
        let three = stocked(4, [(0, "X", 1), (1, "Y", 1), (3, "Z", 1)])
        #expect(
            tight.plan(at: home, lines: demand(three, [("X", 1), ("Y", 1), ("Z", 1)]), index: index, ledger: three, scratch: scratch).storeID == nil)
        let off = Router(policy: RoutingPolicy(split: .init(enabled: false)))
        #expect(off.plan(at: home, lines: lines, index: index, ledger: ledger, scratch: scratch).storeID == nil)
        #expect(Router().plan(at: home, lines: lines, index: index, ledger: ledger, allowSplit: false, scratch: scratch).storeID == nil)
    }

    /// The split planner against a brute-force greedy cover written from its definition: every location in reach
    /// (stores within the reach, warehouses within theirs), most remaining lines first, then nearest, then slot.
    @Test func splitMatchesABruteForceCoverOnRandomTowns() {
        var g = SplitMix64(seed: 0x5B17)
        let skus = ["A", "B", "C", "D", "E", "F"]
        let policy = RoutingPolicy(reachMetres: 20_000, warehouseReachMetres: 120_000)
        let router = Router(policy: policy)
        var splits = 0
        for town in 0..<40 {
            let n = 50
            let kinds: [StoreKind] = (0..<n).map { $0 % 17 == 0 ? .warehouse : .store }
            let index = StoreIndex(
                stores: (0..<n).map { i in
                    Store(
                        id: "T\(town)-\(i)", code: "T\(i)", name: "T\(i)",
                        location: GeoPoint(lon: 120 + Double.random(in: -0.8...0.8, using: &g), lat: 30 + Double.random(in: -0.8...0.8, using: &g)),
                        kind: kinds[i])
                })
            var ledger = InventoryLedger()
            ledger.ensureStores(n)
            for sku in skus { _ = ledger.intern(sku) }
            for i in 0..<n {
                for sku in skus where Int.random(in: 0..<4, using: &g) == 0 {
                    ledger.setOnHand(store: Int32(i), sku: ledger.index(of: sku)!, quantity: Int32.random(in: 1...3, using: &g))
                }
            }
            for _ in 0..<30 {
                let at = GeoPoint(lon: 120 + Double.random(in: -0.6...0.6, using: &g), lat: 30 + Double.random(in: -0.6...0.6, using: &g))
                let picked = skus.shuffled(using: &g).prefix(Int.random(in: 2...4, using: &g))
                let lines = picked.map { Demand(sku: ledger.index(of: $0)!, quantity: Int32.random(in: 1...2, using: &g)) }
                // Brute force.
                let q = UnitVector(at)
                var cands: [(mask: UInt64, d2: Double, slot: Int32)] = []
                for slot in 0..<n {
                    let d2 = index.vectors[slot].chordSquared(to: q)
                    let limit = Sphere.chordSquared(forDistance: kinds[slot] == .warehouse ? policy.warehouseReachMetres : policy.reachMetres)
                    guard d2 <= limit else { continue }
                    var mask: UInt64 = 0
                    for (i, l) in lines.enumerated() where ledger.available(store: Int32(slot), sku: l.sku) >= l.quantity { mask |= 1 << UInt64(i) }
                    if mask != 0 { cands.append((mask, d2, Int32(slot))) }
                }
                var remaining: UInt64 = (1 << UInt64(lines.count)) - 1
                var parts: [(String, [Int])] = []
                while remaining != 0 && parts.count < policy.split.maxParts {
                    guard
                        let b = cands.filter({ $0.mask & remaining != 0 }).min(by: { a, b in
                            let (na, nb) = ((a.mask & remaining).nonzeroBitCount, (b.mask & remaining).nonzeroBitCount)
                            return na != nb ? na > nb : (a.d2, a.slot) < (b.d2, b.slot)
                        })
                    else { break }
                    parts.append((index.stores[Int(b.slot)].id, (0..<lines.count).filter { b.mask & remaining & (1 << UInt64($0)) != 0 }))
                    remaining &= ~b.mask
                }
                let d = router.plan(at: at, lines: lines, index: index, ledger: ledger, scratch: scratch)
                if remaining == 0 && parts.count > 1 {
                    splits += 1
                    #expect(d.fallback == .split)
                    #expect(d.parts.map(\.storeID) == parts.map(\.0))
                    #expect(d.parts.map(\.lineIndexes) == parts.map(\.1))
                } else {
                    #expect(d.fallback != .split)
                }
            }
        }
        #expect(splits > 50, "the random towns must exercise splitting (\(splits) splits)")
    }

    @Test func weightedRankingAndPriorityBand() {
        // S0 is nearest but nearly full; S1 1 km farther is empty; S2 has priority 5.
        let index = line([StoreRules(dailyCapacity: 10), StoreRules(dailyCapacity: 10), StoreRules(priority: 5)])
        let ledger = stocked(3, [(0, "A", 5), (1, "A", 5), (2, "A", 5)])
        let book = CapacityBook()
        let ctx = RoutingContext(now: thursday22h, utcOffsets: [28_800], capacity: book)
        book.record(slot: 0, localDay: ctx.localDay(zone: 0), by: 9)
        let lines = demand(ledger, [("A", 1)])
        #expect(Router().plan(at: home, lines: lines, index: index, ledger: ledger, context: ctx, scratch: scratch).storeID == "S0")
        let weighted = Router(policy: RoutingPolicy(ranking: .init(mode: .weighted, distanceWeight: 1, capacityWeight: 0.5, priorityWeight: 0)))
        let d = weighted.plan(at: home, lines: lines, index: index, ledger: ledger, context: ctx, scratch: scratch)
        #expect(d.storeID == "S1")
        #expect(d.ranked.map(\.storeID) == ["S1", "S2", "S0"])
        // Nearest mode with a 2.5 km priority band: S2 (2 km out, priority 5) wins.
        let band = Router(policy: RoutingPolicy(ranking: .init(priorityBandMetres: 2_500)))
        #expect(band.plan(at: home, lines: lines, index: index, ledger: ledger, context: ctx, scratch: scratch).storeID == "S2")
    }

    @Test func safetyStockIsHeldBackMostSpecificRuleFirst() {
        var ledger = stocked(2, [(0, "A", 5), (0, "B", 5), (1, "A", 5)])
        let a = ledger.index(of: "A")!, b = ledger.index(of: "B")!
        ledger.setSafetyRules(SafetyStock(defaultQuantity: 1, perSKU: ["A": 4], perStore: [0: 2]))
        #expect(ledger.available(store: 0, sku: a) == 1)  // per SKU beats per store
        #expect(ledger.available(store: 0, sku: b) == 3)  // per store beats default
        #expect(ledger.safety(store: 1, sku: b) == 1)
        #expect(!ledger.canFill(store: 0, lines: [Demand(sku: a, quantity: 2)]))
        #expect(throws: LedgerError.self) { try ledger.reserve(store: 0, lines: [Demand(sku: a, quantity: 2)]) }
        #expect((try? ledger.reserve(store: 0, lines: [Demand(sku: a, quantity: 1)])) != nil)
        // A row created later gets the rules too; rules can be lifted.
        ledger.setOnHand(store: 1, sku: ledger.intern("C"), quantity: 3)
        #expect(ledger.available(store: 1, sku: ledger.index(of: "C")!) == 2)
        ledger.setSafetyRules(SafetyStock())
        #expect(ledger.available(store: 0, sku: a) == 4)
        #expect(ledger.invariantViolation() == nil)
    }

    @Test func policyDocumentDefaultsAndValidation() throws {
        #expect(RoutingPolicy().problem() == nil)
        #expect(RoutingPolicy(reachMetres: 0).problem()?.field == "reach_m")
        #expect(RoutingPolicy(split: .init(maxParts: 1)).problem()?.field == "split.max_parts")
        #expect(StoreRules(holidays: ["26/11/2026"]).problem()?.field == "holidays[0]")
        #expect(StoreRules(serviceRadiusMetres: -1).problem()?.field == "service_radius_m")
    }

    /// With random capacities, hours, radii and warehouses, the router's store choice equals a scan
    /// of every store applying the same rules.
    @Test(arguments: [200, 3_000])
    func routeWithRulesEqualsBruteForce(stores n: Int) {
        var rng = SplitMix64(seed: UInt64(n))
        var world = World(stores: n, skus: 30, rng: &rng)
        let hours = WeeklyHours.daily("09:00-21:00")!
        let stores = world.index.stores.map { s -> Store in
            var s = s
            let r = Double.random(in: 0...1, using: &rng)
            if r < 0.15 { s.rules.dailyCapacity = Int.random(in: 0...2, using: &rng) }
            if r > 0.7 { s.rules.hours = hours }
            if r > 0.4 && r < 0.6 { s.rules.serviceRadiusMetres = Double.random(in: 1_000...60_000, using: &rng) }
            if r > 0.95 { s.kind = .warehouse }
            return s
        }
        world.index = StoreIndex(stores: stores)
        let book = CapacityBook()
        let stock = StockIndex(index: world.index, ledger: world.ledger, minTreeSize: 8)
        for q in 0..<300 {
            let p = randomStores(1, &rng)[0]
            let lines = world.randomLines(&rng)
            let now = thursday22h - Int64.random(in: 0...86_400, using: &rng)
            let ctx = RoutingContext(point: p, now: now, utcOffsets: [28_800], capacity: book)
            let reach = 80_000.0
            let router = Router(policy: RoutingPolicy(reachMetres: reach, warehouseFallback: false, afterHoursWindowMinutes: 30))
            let got = router.route(
                at: p, lines: lines, index: world.index, ledger: world.ledger, stock: q % 2 == 0 ? stock : nil,
                context: ctx, scratch: scratch)
            // Oracle.
            let qv = UnitVector(p)
            var best: (Int32, Double)?
            let localMinute = (now + 28_800) / 60
            let day = (now + 28_800) / 86_400
            for (i, s) in world.index.stores.enumerated() where s.status == .open && s.kind == .store {
                let d2 = UnitVector(s.location).chordSquared(to: qv)
                guard d2 <= Sphere.chordSquared(forDistance: reach) else { continue }
                if let r = s.rules.serviceRadiusMetres, d2 > Sphere.chordSquared(forDistance: r) { continue }
                if let c = s.rules.dailyCapacity, Int(book.used(slot: Int32(i), localDay: day)) >= c { continue }
                if let h = s.rules.hours, h.minutesUntilOpen(atLocalMinute: localMinute, closedDays: [], horizon: 30) == nil { continue }
                guard lines.allSatisfy({ world.ledger.available(store: Int32(i), sku: $0.sku) >= $0.quantity }) else { continue }
                if best == nil || d2 < best!.1 || (d2 == best!.1 && Int32(i) < best!.0) { best = (Int32(i), d2) }
            }
            #expect(got.storeSlot == best?.0, "query \(q)")
            if let chosen = got.storeSlot { book.record(slot: chosen, localDay: day) }
        }
    }
}
