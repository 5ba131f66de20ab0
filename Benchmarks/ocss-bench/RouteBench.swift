import Dispatch
import Glibc
import OCSSCore
import Synchronization

/// The query semantics of shared/bench: nearest store within 50 km where every line has qty >=
/// ordered qty; reserve mode decreases stock in file order.
enum RouteBench {
    static let reach = 50_000.0

    /// Brute force over every store: the oracle, and the same-run baseline.
    static func bruteForce(_ o: BenchOrder, _ d: Dataset, ledger: InventoryLedger) -> (Int32, Double)? {
        if o.stockedNowhere { return nil }
        let maxD2 = Sphere.chordSquared(forDistance: reach)
        var best: (Int32, Double)?
        for (i, s) in d.index.stores.enumerated() {
            let d2 = UnitVector(s.location).chordSquared(to: o.q)
            guard d2 <= maxD2 else { continue }
            var ok = true
            for l in o.lines where ledger.available(store: Int32(i), sku: l.sku) < l.quantity { ok = false; break }
            if ok && (best == nil || d2 < best!.1) { best = (Int32(i), d2) }
        }
        return best
    }

    static func metres(_ d2: Double) -> Double { Sphere.arc(forChordSquared: d2) * Sphere.meanRadius }

    /// Same answer as the oracle, or a tie within 1 m.
    static func agrees(_ got: RoutingDecision, _ want: (Int32, Double)?, _ o: BenchOrder, _ d: Dataset) -> Bool {
        guard let want else { return got.storeSlot == nil }
        guard let s = got.storeSlot else { return false }
        if s == want.0 { return true }
        let gd = UnitVector(d.index.stores[Int(s)].location).chordSquared(to: o.q)
        return abs(metres(gd) - metres(want.1)) < 1
    }

    struct Result {
        var qps: Double
        var latenciesNs: [UInt64]
        var routed: Int
        var scans: Int
        var queries: Int
    }

    static func run(dataDir: String, size: String, reserve: Bool, clients: Int, seconds: Double, verify: Int) {
        var d = DatasetLoader.load(dir: dataDir, size: size)
        let rowCount = d.ledger.stock.reduce(0) { $0 + $1.skus.count }
        let router = Router(policy: RoutingPolicy(reachMetres: reach))
        let scratch = WalkScratch()

        // 1. Check answers (and time the brute force: the baseline).
        var checked = 0
        let t0 = now()
        if reserve {
            // The reserve sequence must match brute force order by order on a copy of the stock.
            var mine = d.ledger, oracle = d.ledger
            for o in d.orders.prefix(verify) {
                let got =
                    o.stockedNowhere
                    ? RoutingDecision.unroutable(reason: "", reachMetres: reach)
                    : router.route(at: o.q, lines: o.lines, index: d.index, ledger: mine, stock: d.stock, trace: false, scratch: scratch)
                let want = bruteForce(o, d, ledger: oracle)
                guard agrees(got, want, o, d) else { fatal("reserve answer differs from brute force at order \(checked + 1)") }
                if let s = got.storeSlot { try? mine.reserve(store: s, lines: o.lines) }
                if let (s, _) = want { try? oracle.reserve(store: s, lines: o.lines) }
                checked += 1
            }
        } else {
            for o in d.orders.prefix(verify) {
                let got =
                    o.stockedNowhere
                    ? RoutingDecision.unroutable(reason: "", reachMetres: reach)
                    : router.route(at: o.q, lines: o.lines, index: d.index, ledger: d.ledger, stock: d.stock, trace: false, scratch: scratch)
                guard agrees(got, bruteForce(o, d, ledger: d.ledger), o, d) else { fatal("answer differs from brute force at order \(checked + 1)") }
                checked += 1
            }
        }
        let bruteQPS = Double(checked) / (now() - t0)

        // 2. Measure.
        let r: Result
        if reserve {
            r = measureReserve(&d, router: router, clients: clients, seconds: seconds)
        } else {
            r = measureRead(d, router: router, clients: clients, seconds: seconds)
        }
        var lat = r.latenciesNs
        lat.sort()
        func pct(_ p: Double) -> Double { lat.isEmpty ? 0 : Double(lat[min(lat.count - 1, Int(Double(lat.count) * p))]) / 1000 }
        func f(_ x: Double, _ digits: Int = 2) -> String {
            let m = pow(10, Double(digits))
            return String((x * m).rounded() / m)
        }
        print(
            "route stores=\(size) mode=\(reserve ? "reserve" : "read") clients=\(clients) qps=\(Int(r.qps)) p50_us=\(f(pct(0.5))) "
                + "p99_us=\(f(pct(0.99))) p999_us=\(f(pct(0.999))) max_us=\(f(pct(1.0))) queries=\(r.queries) routed=\(f(Double(r.routed) / Double(max(r.queries, 1)), 3)) "
                + "rarest_path=\(f(Double(r.scans) / Double(max(r.queries, 1)), 3)) verified=\(checked)/\(checked) "
                + "bruteforce_qps=\(Int(bruteQPS)) vs_bruteforce=\(f(r.qps / bruteQPS, 1))x "
                + "load_s=\(f(d.loadSeconds)) inventory_rows=\(rowCount) peak_rss_mib=\(peakRSSMiB())")
    }

    /// Read-only routing over the immutable index and ledger; each client has its own scratch.
    static func measureRead(_ d: Dataset, router: Router, clients: Int, seconds: Double) -> Result {
        let results = Mutex<[Result]>([])
        let shared = UnsafeShare(d)
        DispatchQueue.concurrentPerform(iterations: clients) { c in
            let d = shared.value
            let scratch = WalkScratch()
            var lat: [UInt64] = []
            lat.reserveCapacity(2_000_000)
            var routed = 0, scans = 0, n = 0
            var i = c * 7919 % d.orders.count
            let end = now() + seconds
            var ts = timespec()
            while true {
                if n & 255 == 0 && now() >= end { break }
                let o = d.orders[i]
                clock_gettime(CLOCK_MONOTONIC, &ts)
                let a = UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
                if !o.stockedNowhere {
                    let dec = router.route(at: o.q, lines: o.lines, index: d.index, ledger: d.ledger, stock: d.stock, trace: false, scratch: scratch)
                    if dec.storeSlot != nil { routed += 1 }
                    if dec.path != .walk { scans += 1 }
                }
                clock_gettime(CLOCK_MONOTONIC, &ts)
                lat.append(UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec) &- a)
                n += 1
                i += 1
                if i == d.orders.count { i = 0 }
            }
            let r = Result(qps: Double(n) / seconds, latenciesNs: lat, routed: routed, scans: scans, queries: n)
            results.withLock { $0.append(r) }
        }
        return merge(results.withLock { $0 })
    }

    /// Route + reserve atomically under one lock (as the service does), orders in file order.
    /// Stock runs out as it would in production, so the run stops at the end of the file.
    static func measureReserve(_ d: inout Dataset, router: Router, clients: Int, seconds: Double) -> Result {
        struct Shared: ~Copyable {
            var ledger: InventoryLedger
            var next: Int
            let scratch = WalkScratch()
        }
        let state = Mutex(Shared(ledger: d.ledger, next: 0))
        let results = Mutex<[Result]>([])
        let shared = UnsafeShare(d)
        DispatchQueue.concurrentPerform(iterations: clients) { _ in
            let d = shared.value
            var lat: [UInt64] = []
            lat.reserveCapacity(1_000_000)
            var routed = 0, scans = 0, n = 0
            let end = now() + seconds
            var ts = timespec()
            while true {
                if n & 255 == 0 && now() >= end { break }
                clock_gettime(CLOCK_MONOTONIC, &ts)
                let a = UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
                let outcome: (Bool, Bool)? = state.withLock { s in
                    guard s.next < d.orders.count else { return nil }
                    let o = d.orders[s.next]
                    s.next += 1
                    if o.stockedNowhere { return (false, false) }
                    let dec = router.route(
                        at: o.q, lines: o.lines, index: d.index, ledger: s.ledger, stock: d.stock, trace: false, scratch: s.scratch)
                    if let slot = dec.storeSlot { try? s.ledger.reserve(store: slot, lines: o.lines) }
                    return (dec.storeSlot != nil, dec.path != .walk)
                }
                guard let (ok, scan) = outcome else { break }
                clock_gettime(CLOCK_MONOTONIC, &ts)
                lat.append(UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec) &- a)
                if ok { routed += 1 }
                if scan { scans += 1 }
                n += 1
            }
            results.withLock { $0.append(Result(qps: 0, latenciesNs: lat, routed: routed, scans: scans, queries: n)) }
        }
        var r = merge(results.withLock { $0 })
        let total = r.latenciesNs.reduce(0, +)
        // Throughput over the time actually spent (the file may run out before `seconds`).
        r.qps = Double(r.queries) / max(Double(total) / 1e9 / Double(clients), 1e-9)
        return r
    }

    static func merge(_ rs: [Result]) -> Result {
        Result(
            qps: rs.reduce(0) { $0 + $1.qps }, latenciesNs: rs.flatMap(\.latenciesNs), routed: rs.reduce(0) { $0 + $1.routed },
            scans: rs.reduce(0) { $0 + $1.scans }, queries: rs.reduce(0) { $0 + $1.queries })
    }
}

/// The dataset is read-only while measuring; shared across the client threads.
struct UnsafeShare<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
