import Glibc
import OCSSCore

/// Routing with every store carrying rules that must be checked on each candidate (opening hours,
/// daily capacity with today's counts, a service radius) against the plain walk on the same data,
/// in the same run. The rules are chosen so that they admit every store at the query time, so the
/// two must give the same answers (checked), and the figure is the pure cost of the checks.
enum RulesBench {
    static func run(dataDir: String, size: String, seconds: Double, verify: Int) {
        let d = DatasetLoader.load(dir: dataDir, size: size)
        let hours = WeeklyHours.daily("08:00-22:00")!
        let ruled = StoreIndex(
            stores: d.index.stores.map { s in
                var s = s
                s.rules = StoreRules(dailyCapacity: 10_000_000, hours: hours, serviceRadiusMetres: 60_000)
                return s
            })
        let stock = StockIndex(index: ruled, ledger: d.ledger)
        let book = CapacityBook()
        // Thursday 2026-11-26 12:00 in Shanghai; every store has taken a few orders today.
        let noon = LocalDate.days(year: 2026, month: 11, day: 26) * 86_400 + 4 * 3600
        let ctx = RoutingContext(now: noon, utcOffsets: [28_800], capacity: book)
        for slot in 0..<ruled.stores.count { book.record(slot: Int32(slot), localDay: ctx.localDay(zone: 0), by: Int32(slot % 50)) }
        let plain = Router(policy: RoutingPolicy(reachMetres: RouteBench.reach))
        let policy = RoutingPolicy(reachMetres: RouteBench.reach, warehouseFallback: false, split: .init(enabled: false))
        let full = Router(policy: policy)
        let scratch = WalkScratch()

        var checked = 0
        for o in d.orders.prefix(verify) where !o.stockedNowhere {
            let a = plain.route(at: o.q, lines: o.lines, index: d.index, ledger: d.ledger, stock: d.stock, trace: false, scratch: scratch)
            let b = full.plan(
                vector: o.q, point: o.point, lines: o.lines, index: ruled, ledger: d.ledger, stock: stock, trace: false,
                context: ctx, scratch: scratch)
            guard a.storeSlot == b.storeSlot else { fatal("rules run differs from the plain walk at order \(checked + 1)") }
            checked += 1
        }

        func measure(_ body: (BenchOrder) -> Void) -> Double {
            var n = 0, i = 0
            let end = now() + seconds
            while true {
                if n & 255 == 0 && now() >= end { break }
                let o = d.orders[i]
                if !o.stockedNowhere { body(o) }
                n += 1
                i += 1
                if i == d.orders.count { i = 0 }
            }
            return Double(n) / seconds
        }
        var sink = 0
        let plainQPS1 = measure { o in
            sink &+= Int(
                plain.route(at: o.q, lines: o.lines, index: d.index, ledger: d.ledger, stock: d.stock, trace: false, scratch: scratch).storeSlot ?? 0)
        }
        let rulesQPS = measure { o in
            sink &+= Int(
                full.plan(
                    vector: o.q, point: o.point, lines: o.lines, index: ruled, ledger: d.ledger, stock: stock, trace: false,
                    context: ctx, scratch: scratch
                ).storeSlot ?? 0)
        }
        let plainQPS2 = measure { o in
            sink &+= Int(
                plain.route(at: o.q, lines: o.lines, index: d.index, ledger: d.ledger, stock: d.stock, trace: false, scratch: scratch).storeSlot ?? 0)
        }
        let plainQPS = (plainQPS1 + plainQPS2) / 2
        print(
            "rules stores=\(size) plain_qps=\(Int(plainQPS)) rules_qps=\(Int(rulesQPS)) ratio=\(String(Int(rulesQPS / plainQPS * 1000)) )permille "
                + "checks=hours,capacity,radius verified=\(checked)/\(checked) sink=\(sink & 1)")
    }
}
