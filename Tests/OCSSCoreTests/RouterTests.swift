import OCSSCore
import OCSSTestSupport
import Testing

/// A random world: stores, a ledger with Zipf-ish stocking, orders.
struct World {
    var index: StoreIndex
    var ledger: InventoryLedger
    var skuCount: Int

    init(stores n: Int, skus: Int, rng: inout SplitMix64, closedShare: Double = 0.1) {
        let pts = randomStores(n, &rng)
        index = StoreIndex(
            stores: pts.enumerated().map { i, p in
                Store(
                    id: "S\(i)", code: "S\(i)", name: "Store \(i)", location: p,
                    status: Double.random(in: 0...1, using: &rng) < closedShare ? .closed : .open)
            })
        ledger = InventoryLedger()
        for k in 0..<skus { _ = ledger.intern("SKU-\(k)") }
        ledger.ensureStores(n)
        skuCount = skus
        for s in 0..<n {
            for k in 0..<skus {
                let p = 0.9 / Double(k + 1).squareRoot()
                if Double.random(in: 0...1, using: &rng) < p {
                    ledger.appendRow(store: Int32(s), sku: Int32(k), onHand: Int32.random(in: 0...4, using: &rng))
                }
            }
        }
    }

    func randomLines(_ rng: inout SplitMix64) -> [Demand] {
        let count = Int.random(in: 1...4, using: &rng)
        var seen = Set<Int32>()
        return (0..<count).compactMap { _ in
            let k = Int32(min(skuCount - 1, Int(Double(skuCount) * pow3(Double.random(in: 0...1, using: &rng)))))
            return seen.insert(k).inserted ? Demand(sku: k, quantity: Int32.random(in: 1...2, using: &rng)) : nil
        }
    }

    /// The oracle: scan every store.
    func bruteForce(at p: GeoPoint, lines: [Demand], reach: Double, excluded: Set<Int32> = []) -> (Int32, Double)? {
        let q = UnitVector(p)
        let maxD2 = Sphere.chordSquared(forDistance: reach)
        var best: (Int32, Double)?
        for (i, s) in index.stores.enumerated() {
            let d2 = UnitVector(s.location).chordSquared(to: q)
            guard d2 <= maxD2, s.status == .open, !excluded.contains(Int32(i)) else { continue }
            guard lines.allSatisfy({ ledger.available(store: Int32(i), sku: $0.sku) >= $0.quantity }) else { continue }
            if best == nil || d2 < best!.1 { best = (Int32(i), d2) }
        }
        return best
    }
}

func pow3(_ x: Double) -> Double { x * x * x }

@Suite struct RouterTests {
    @Test(arguments: [1, 5, 40, 400, 3_000])
    func routeEqualsBruteForce(stores: Int) {
        for seed in UInt64(1)...4 {
            var rng = SplitMix64(seed: seed &* 104_729 &+ UInt64(stores))
            let world = World(stores: stores, skus: 60, rng: &rng)
            #expect(world.ledger.invariantViolation() == nil)
            let scratch = WalkScratch(capacity: 2)
            let reach = [50_000.0, 200_000, 2_000_000][Int(seed) % 3]
            let router = Router(policy: RoutingPolicy(reachMetres: reach))
            for _ in 0..<150 {
                let p = randomStores(1, &rng)[0]
                let lines = world.randomLines(&rng)
                let excluded: Set<Int32> = Bool.random(using: &rng) ? [] : Set((0..<3).map { _ in Int32.random(in: 0..<Int32(stores), using: &rng) })
                let got = router.route(at: p, lines: lines, index: world.index, ledger: world.ledger, excluded: excluded, scratch: scratch)
                let want = world.bruteForce(at: p, lines: lines, reach: reach, excluded: excluded)
                if let (slot, d2) = want {
                    #expect(got.storeSlot != nil, "oracle found \(slot)")
                    if let s = got.storeSlot {
                        let gotD2 = UnitVector(world.index.stores[Int(s)].location).chordSquared(to: UnitVector(p))
                        // Same store, or a tie within 1 m.
                        let dm = abs(Sphere.arc(forChordSquared: gotD2) - Sphere.arc(forChordSquared: d2)) * Sphere.meanRadius
                        #expect(s == slot || dm < 1, "got \(s) want \(slot)")
                    }
                } else {
                    #expect(got.storeSlot == nil)
                    #expect(got.unroutableReason != nil)
                }
                // Every traced skip is nearer than (or as near as) the winner and really ineligible.
                for c in got.skipped {
                    if let d = got.distanceMetres { #expect(c.distanceMetres <= d + 1e-6) }
                    #expect(c.skipped != nil)
                }
            }
        }
    }

    @Test func explanationNamesMissingSKUsAndClosedStores() {
        var ledger = InventoryLedger()
        let a = ledger.intern("A"), b = ledger.intern("B")
        let index = StoreIndex(stores: [
            Store(id: "near-closed", code: "1", name: "", location: GeoPoint(lon: 120.0, lat: 30.0), status: .closed),
            Store(id: "near-no-b", code: "2", name: "", location: GeoPoint(lon: 120.01, lat: 30.0)),
            Store(id: "far-full", code: "3", name: "", location: GeoPoint(lon: 120.1, lat: 30.0)),
        ])
        ledger.ensureStores(3)
        for s in Int32(0)...2 { ledger.setOnHand(store: s, sku: a, quantity: 5) }
        ledger.setOnHand(store: 0, sku: b, quantity: 5)
        ledger.setOnHand(store: 1, sku: b, quantity: 1)
        ledger.setOnHand(store: 2, sku: b, quantity: 5)
        let d = Router().route(
            at: GeoPoint(lon: 120.0, lat: 30.0), lines: [Demand(sku: a, quantity: 1), Demand(sku: b, quantity: 2)],
            index: index, ledger: ledger, scratch: WalkScratch())
        #expect(d.storeID == "far-full")
        #expect(d.skipped.map(\.storeID) == ["near-closed", "near-no-b"])
        #expect(d.skipped[0].skipped == .notOpen(.closed))
        #expect(d.skipped[1].skipped == .outOfStock(missing: ["B"]))
        #expect(abs(d.distanceMetres! - 9_629.78) < 0.01)
    }

    @Test func unknownSKUIsUnroutableWithReason() {
        var ledger = InventoryLedger()
        let a = ledger.intern("A")
        _ = ledger.intern("NEVER")
        let index = StoreIndex(stores: [Store(id: "s", code: "s", name: "", location: GeoPoint(lon: 1, lat: 1))])
        ledger.setOnHand(store: 0, sku: a, quantity: 1)
        let d = Router().route(
            at: GeoPoint(lon: 1, lat: 1), lines: [Demand(sku: 1, quantity: 1)], index: index, ledger: ledger, scratch: WalkScratch())
        #expect(d.storeSlot == nil)
        #expect(d.unroutableReason == "sku_not_stocked:NEVER")
    }

    /// A coverage gap and a stock gap are different work for ops: the reason tells them apart.
    @Test func unroutableSaysWhetherAnyStoreWasInReach() {
        var ledger = InventoryLedger()
        let a = ledger.intern("A")
        let index = StoreIndex(stores: [
            Store(id: "s", code: "s", name: "", location: GeoPoint(lon: 120, lat: 30)),
            Store(id: "w", code: "w", name: "", location: GeoPoint(lon: 121, lat: 30), kind: .warehouse),
        ])
        ledger.ensureStores(2)
        ledger.setOnHand(store: 0, sku: a, quantity: 1)
        ledger.setOnHand(store: 1, sku: a, quantity: 1)
        let plan = { (p: GeoPoint, q: Int32) in
            Router().plan(at: p, lines: [Demand(sku: a, quantity: q)], index: index, ledger: ledger, scratch: WalkScratch())
        }
        // 10 km from the store, which has 1 of the 2 asked for.
        let short = plan(GeoPoint(lon: 120.1, lat: 30), 2)
        #expect(short.storeSlot == nil)
        #expect(short.unroutableReason == "no_eligible_store_in_reach")
        #expect(short.skipped.map(\.storeID) == ["s", "w"])
        // 60 km from the store and 36 km from the warehouse: only the warehouse's reach covers it.
        let gap = plan(GeoPoint(lon: 120.62, lat: 30), 2)
        #expect(gap.storeSlot == nil)
        #expect(gap.unroutableReason == "no_store_in_reach")
        #expect(plan(GeoPoint(lon: 120.62, lat: 30), 1).storeID == "w")
    }
}

@Suite struct LedgerTests {
    @Test func reservationIsAllOrNothing() throws {
        var l = InventoryLedger()
        let a = l.intern("A"), b = l.intern("B")
        l.setOnHand(store: 0, sku: a, quantity: 3)
        l.setOnHand(store: 0, sku: b, quantity: 1)
        #expect(throws: LedgerError.insufficient(sku: "B", available: 1, requested: 2)) {
            try l.reserve(store: 0, lines: [Demand(sku: a, quantity: 1), Demand(sku: b, quantity: 2)])
        }
        #expect(l.available(store: 0, sku: a) == 3)
        try l.reserve(store: 0, lines: [Demand(sku: a, quantity: 2), Demand(sku: b, quantity: 1)])
        #expect(l.available(store: 0, sku: a) == 1)
        #expect(l.available(store: 0, sku: b) == 0)
        // Two lines of the same SKU count together.
        #expect(throws: LedgerError.self) { try l.reserve(store: 0, lines: [Demand(sku: a, quantity: 1), Demand(sku: a, quantity: 1)]) }
        l.release(store: 0, lines: [Demand(sku: a, quantity: 2)])
        #expect(l.available(store: 0, sku: a) == 3)
        #expect(l.invariantViolation() == nil)
    }

    @Test func randomSequencesNeverOversell() {
        for seed in UInt64(1)...20 {
            var rng = SplitMix64(seed: seed)
            var l = InventoryLedger()
            for k in 0..<5 { _ = l.intern("K\(k)") }
            for s in Int32(0)..<3 { for k in Int32(0)..<5 { l.setOnHand(store: s, sku: k, quantity: Int32.random(in: 0...5, using: &rng)) } }
            var held: [(Int32, [Demand])] = []
            for _ in 0..<300 {
                let s = Int32.random(in: 0..<3, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0, 1:
                    let lines = [Demand(sku: Int32.random(in: 0..<5, using: &rng), quantity: Int32.random(in: 1...3, using: &rng))]
                    if (try? l.reserve(store: s, lines: lines)) != nil { held.append((s, lines)) }
                case 2:
                    if !held.isEmpty { let (hs, hl) = held.remove(at: Int.random(in: 0..<held.count, using: &rng)); l.release(store: hs, lines: hl) }
                default:
                    l.setOnHand(store: s, sku: Int32.random(in: 0..<5, using: &rng), quantity: Int32.random(in: 0...6, using: &rng))
                }
                #expect(l.invariantViolation() == nil)
                // What is held equals what the ledger says is reserved.
                for st in Int32(0)..<3 {
                    for k in Int32(0)..<5 {
                        let want = held.filter { $0.0 == st }.flatMap(\.1).filter { $0.sku == k }.reduce(Int32(0)) { $0 + $1.quantity }
                        #expect(l.row(store: st, sku: k)?.reserved == want)
                    }
                }
            }
        }
    }
}

@Suite struct StockIndexTests {
    @Test(arguments: [30, 500, 3_000])
    func perSKUTreesGiveTheBruteForceAnswerIncludingRowsAddedLater(stores: Int) {
        for seed in UInt64(1)...4 {
            var rng = SplitMix64(seed: seed &* 7_777 &+ UInt64(stores))
            var world = World(stores: stores, skus: 40, rng: &rng)
            let stock = StockIndex(index: world.index, ledger: world.ledger, minTreeSize: 4)
            // After the build: new rows (covered by the linear supplement), stock changes and reservations.
            for _ in 0..<stores / 5 {
                let s = Int32.random(in: 0..<Int32(stores), using: &rng), k = Int32.random(in: 0..<40, using: &rng)
                world.ledger.setOnHand(store: s, sku: k, quantity: Int32.random(in: 0...3, using: &rng))
            }
            let router = Router(policy: RoutingPolicy(reachMetres: [50_000.0, 400_000][Int(seed) % 2]))
            let scratch = WalkScratch(capacity: 2)
            for _ in 0..<150 {
                let p = randomStores(1, &rng)[0]
                let lines = world.randomLines(&rng)
                let got = router.route(at: p, lines: lines, index: world.index, ledger: world.ledger, stock: stock, scratch: scratch)
                let want = world.bruteForce(at: p, lines: lines, reach: router.policy.reachMetres)
                #expect((got.storeSlot == nil) == (want == nil))
                if let (slot, d2) = want, let s = got.storeSlot, s != slot {
                    let gotD2 = UnitVector(world.index.stores[Int(s)].location).chordSquared(to: UnitVector(p))
                    #expect(abs(Sphere.arc(forChordSquared: gotD2) - Sphere.arc(forChordSquared: d2)) * Sphere.meanRadius < 1)
                }
                if let s = got.storeSlot, Bool.random(using: &rng) { try? world.ledger.reserve(store: s, lines: lines) }
            }
            #expect(world.ledger.invariantViolation() == nil)
        }
    }

    @Test func aRebuiltStoreIndexMakesTheTreesStale() {
        var rng = SplitMix64(seed: 9)
        let world = World(stores: 50, skus: 5, rng: &rng)
        let stock = StockIndex(index: world.index, ledger: world.ledger)
        #expect(stock.isCurrent(for: world.index))
        let moved = world.index.upserting(Store(id: "S0", code: "S0", name: "", location: GeoPoint(lon: 100, lat: 30)))
        #expect(!stock.isCurrent(for: moved))
    }
}
