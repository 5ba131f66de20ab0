import OCSSApp
import OCSSCore
import OCSSProj
import OCSSStore
import OCSSEngine

/// `ocss replay`: re-decides recorded orders under a candidate policy, against the stock of the
/// time, changing nothing, and reports how the outcome would differ.
///
/// Stock of the time: today's ledger with the replayed orders' own effect undone (their live
/// reservations released, what they shipped put back on hand); then every replayed order reserves
/// in turn under the candidate policy. Inventory snapshots and deltas that arrived during the window
/// are not replayed, and cancelled orders keep their stock for the whole window (a conservative
/// simplification, said in the report).
enum ReplayCommand {
    struct Report: Sendable {
        var text: String
        var changed: Int
    }

    /// Reads a policy document (JSON) from `path`; fields left out take their defaults.
    static func loadPolicy(path: String) throws -> RoutingPolicy {
        guard let text = readFile(path) else { throw ImportError(message: "cannot read policy file \(path)") }
        let p: RoutingPolicy
        do { p = try Engine.decodePolicy(text) } catch { throw ImportError(message: "policy \(path) is not a valid policy document: \(error)") }
        if let (field, message) = p.problem() { throw ImportError(message: "policy \(path): \(field): \(message)") }
        return p
    }

    static func run(
        dbPath: String, policy candidate: RoutingPolicy, since: String, show: Int, now: Double = SystemClock().now()
    ) throws -> Report {
        let db = try Connection(path: dbPath, readOnly: true)
        let snap = try EngineSnapshot(db: db, fallbackPolicy: RoutingPolicy(), now: now)
        let index = StoreIndex(stores: snap.stores)
        var ledger = snap.ledger
        let rows = try Repository.replayOrders(db, since: since)
        let geodesy = EllipsoidalGeodesy()

        // Undo the window's own effect on stock.
        if let first = rows.first {
            for r in try Repository.reservationsFrom(db, orderID: first.id) {
                ledger.release(store: r.slot, lines: [Demand(sku: r.sku, quantity: r.quantity)])
            }
        }
        var childSKUs: [Int64: Set<String>] = [:]
        for r in rows { if let p = r.parentID { childSKUs[p, default: []].formUnion(r.lines.compactMap(\.sku)) } }
        for r in rows where r.status == "shipped" || r.status == "delivered" {
            guard let slot = r.firstSlot else { continue }
            for l in r.lines {
                guard let sku = l.sku, !(childSKUs[r.id]?.contains(sku) ?? false), let k = ledger.index(of: sku) else { continue }
                let current = ledger.row(store: slot, sku: k)?.onHand ?? 0
                ledger.setOnHand(store: slot, sku: k, quantity: current + l.quantity)
            }
        }

        struct Side {
            var routed = 0, unroutable = 0, splits = 0, warehouse = 0
            var distances: [Double] = []
            var load: [Int32: Int] = [:]
        }
        var recorded = Side(), proposed = Side()
        var changes: [String] = []
        var changed = 0
        var versions = Set<Int64>()
        let router = Router(policy: candidate)
        let scratch = WalkScratch()
        let book = CapacityBook()
        var offsetsCache: (minute: Int64, offsets: [Int32]) = (-1, [])
        let top = rows.filter { $0.parentID == nil && $0.point != nil }
        let splitParents = Set(rows.compactMap(\.parentID))
        for r in top {
            guard let point = r.point else { continue }
            if let v = r.policyVersion { versions.insert(v) }
            // Recorded: the first decision.
            if let slot = r.firstSlot, let d = r.firstDistance {
                recorded.routed += 1
                recorded.distances.append(d)
                recorded.load[slot, default: 0] += 1
                if splitParents.contains(r.id) { recorded.splits += 1 }
                if index.stores[Int(slot)].kind == .warehouse { recorded.warehouse += 1 }
            } else if r.status != "address_review" {
                recorded.unroutable += 1
            }
            // Candidate.
            var demands: [Demand] = []
            var mapped = true
            for l in r.lines {
                guard let sku = l.sku, let k = ledger.index(of: sku) else { mapped = false; break }
                demands.append(Demand(sku: k, quantity: l.quantity))
            }
            let epoch = parseRFC3339(r.createdAt) ?? now
            if Int64(epoch / 60) != offsetsCache.minute { offsetsCache = (Int64(epoch / 60), Engine.utcOffsets(index.timeZones, at: epoch)) }
            let ctx = RoutingContext(point: point, now: Int64(epoch), utcOffsets: offsetsCache.offsets, capacity: book)
            var newSlot: Int32?
            var newDistance: Double?
            if mapped && !demands.isEmpty {
                let d = router.plan(at: point, lines: demands, index: index, ledger: ledger, trace: false, context: ctx, scratch: scratch)
                let parts: [(Int32, [Int])] =
                    d.fallback == .split
                    ? d.parts.map { ($0.slot, $0.lineIndexes) }
                    : d.storeSlot.map { [($0, Array(demands.indices))] } ?? []
                for (slot, idx) in parts {
                    try? ledger.reserve(store: slot, lines: idx.map { demands[$0] })
                    book.record(slot: slot, localDay: ctx.localDay(zone: index.zone[Int(slot)]))
                }
                if let first = parts.first {
                    newSlot = first.0
                    newDistance = geodesy.distance(from: point, to: index.stores[Int(first.0)].location)
                    proposed.routed += 1
                    proposed.distances.append(newDistance ?? 0)
                    proposed.load[first.0, default: 0] += 1
                    if d.fallback == .split { proposed.splits += 1 }
                    if d.fallback == .warehouse { proposed.warehouse += 1 }
                } else {
                    proposed.unroutable += 1
                }
            } else {
                proposed.unroutable += 1
            }
            if newSlot != r.firstSlot {
                changed += 1
                if changes.count < show {
                    func name(_ s: Int32?, _ d: Double?) -> String {
                        guard let s else { return "unroutable" }
                        return "\(index.stores[Int(s)].id) (\(Int((d ?? 0).rounded())) m)"
                    }
                    changes.append("  order \(r.id) at \(r.createdAt): \(name(r.firstSlot, r.firstDistance)) -> \(name(newSlot, newDistance))")
                }
            }
        }

        func mean(_ v: [Double]) -> String { v.isEmpty ? "-" : String(Int((v.reduce(0, +) / Double(v.count)).rounded())) }
        func p90(_ v: [Double]) -> String {
            guard !v.isEmpty else { return "-" }
            let s = v.sorted()
            return String(Int(s[min(s.count - 1, Int(Double(s.count) * 0.9))].rounded()))
        }
        func row(_ label: String, _ a: String, _ b: String) -> String {
            label.padding(28) + a.leftPadding(12) + b.leftPadding(12)
        }
        var out: [String] = []
        out.append(
            "replay: \(top.count) orders since \(since) (recorded under policy version(s) \(versions.sorted().map(String.init).joined(separator: ",").ifEmpty("none"))); nothing is changed"
        )
        out.append(row("", "recorded", "candidate"))
        out.append(row("routed", "\(recorded.routed)", "\(proposed.routed)"))
        out.append(row("unroutable", "\(recorded.unroutable)", "\(proposed.unroutable)"))
        out.append(row("split shipments", "\(recorded.splits)", "\(proposed.splits)"))
        out.append(row("warehouse fallbacks", "\(recorded.warehouse)", "\(proposed.warehouse)"))
        out.append(row("mean distance (m)", mean(recorded.distances), mean(proposed.distances)))
        out.append(row("p90 distance (m)", p90(recorded.distances), p90(proposed.distances)))
        out.append("orders whose store would change: \(changed)")
        var deltas: [(String, Int, Int)] = []
        for slot in Set(recorded.load.keys).union(proposed.load.keys) {
            let a = recorded.load[slot] ?? 0, b = proposed.load[slot] ?? 0
            if a != b { deltas.append((index.stores[Int(slot)].id, a, b)) }
        }
        deltas.sort { abs($0.2 - $0.1) > abs($1.2 - $1.1) || (abs($0.2 - $0.1) == abs($1.2 - $1.1) && $0.0 < $1.0) }
        if !deltas.isEmpty {
            out.append("per-store load, largest changes:")
            for (id, a, b) in deltas.prefix(show) { out.append("  \(id): \(a) -> \(b) (\(b - a >= 0 ? "+" : "")\(b - a))") }
        }
        if !changes.isEmpty {
            out.append("changed orders (first \(changes.count)):")
            out += changes
        }
        out.append(
            "note: stock replayed from today's ledger with the window's own reservations and shipments undone; snapshots and cancellations inside the window are not replayed"
        )
        return Report(text: out.joined(separator: "\n"), changed: changed)
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
    func leftPadding(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func ifEmpty(_ s: String) -> String { isEmpty ? s : self }
}

extension CLI {
    static func replay(_ o: inout Options) throws {
        guard let policyFile = try o.value("--policy") else { throw OptionError(message: "replay needs --policy FILE.json") }
        let dbPath = try sqliteFile(&o, "replay", instead: "it does not run yet (policy replay reads a SQLite file offline)")
        let since = try o.value("--since") ?? "0000"
        let show = try o.int("--show", 0...Int.max) ?? 20
        try o.finish()
        let policy = try ReplayCommand.loadPolicy(path: policyFile)
        print(try ReplayCommand.run(dbPath: dbPath, policy: policy, since: since, show: max(0, show)).text)
    }
}
