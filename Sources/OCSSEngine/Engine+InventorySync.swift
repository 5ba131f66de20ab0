import Dispatch
package import OCSSCore
import OCSSStore
import Synchronization

/// A snapshot older than (or as old as) the one applied: ignored, and the answer says so.
package struct StaleSnapshot: Error {
    package let applied: Int64
}

/// A multi-part snapshot being received: the parts must come in order, and the last one zeroes
/// what no part listed. Lost on restart (the sender then starts again from part 0).
package struct SnapshotSession: Sendable {
    package var version: Int64
    package var nextPart: Int
    package var previous: Int64
    package var keep: [Int32: Set<SKUIndex>]
    /// Orders rerouted for shortfalls by the parts so far.
    package var rerouted = 0
}

/// What became of one snapshot part.
package enum SnapshotOutcome: Sendable {
    /// Applied; `previous` was the scope's version before this snapshot.
    case applied(previous: Int64, rerouted: Int)
    /// Part applied, more to come.
    case partApplied(next: Int)
    /// Not newer than the applied version: ignored.
    case stale(applied: Int64)
    /// A part out of order (or with no session: after a restart); resend from `expected`.
    case outOfOrder(expected: Int)
}

/// ERP inventory sync: versioned snapshots and idempotent deltas. The database decides (inside the
/// writer's transaction); memory follows after each commit. Only on-hand changes: what is reserved
/// for orders survives every snapshot. Large snapshots are applied in chunks (each its own short
/// transaction and short lock), so order intake and routing go on between chunks.
extension Engine {
    package struct SnapshotRow: Sendable {
        var slot: Int32
        var sku: String
        var quantity: Int32

        package init(slot: Int32, sku: String, quantity: Int32) {
            self.slot = slot
            self.sku = sku
            self.quantity = quantity
        }
    }

    /// Rows per chunk: one writer transaction and one lock hold each.
    package static let snapshotChunk = 2048

    /// Replaces on-hand for the stores in `scopeSlots` with `rows` (with the other parts of the
    /// same version; the final part zeroes the scope's unlisted SKUs) when `version` is newer than
    /// the scope's applied version.
    package func applySnapshot(
        scope: String, scopeSlots: [Int32], version: Int64, rows: [SnapshotRow], part: Int = 0, final: Bool = true,
        done: @escaping @Sendable (Result<SnapshotOutcome, any Error>) -> Void
    ) {
        let at = rfc3339(clock.now())
        // Session bookkeeping: part 0 (re)starts it, later parts must follow in order.
        let expected: Int? = state.withLock { s in
            if part == 0 {
                var keep: [Int32: Set<SKUIndex>] = [:]
                for slot in scopeSlots { keep[slot] = [] }
                s.snapshotSessions[scope] = SnapshotSession(version: version, nextPart: 0, previous: 0, keep: keep)
                return nil
            }
            guard let sess = s.snapshotSessions[scope], sess.version == version, sess.nextPart == part else {
                return s.snapshotSessions[scope].map { $0.version == version ? $0.nextPart : 0 } ?? 0
            }
            return nil
        }
        if let expected {
            done(.success(.outOfOrder(expected: expected)))
            return
        }
        let chunks = stride(from: 0, to: max(rows.count, 1), by: Engine.snapshotChunk).map {
            Array(rows[$0..<min(rows.count, $0 + Engine.snapshotChunk)])
        }
        let shortfalls = Mutex<Set<Pair>>([])
        @Sendable func step(_ i: Int) {
            guard i < chunks.count else {
                // Shortfalls of this part are settled, and committed, before it is answered: the next part may be a
                // long time coming.
                resolveShortfalls(shortfalls.withLock { $0 }) { [self] moved in
                    state.withLock { $0.snapshotSessions[scope]?.rerouted += moved }
                    guard final else {
                        state.withLock { $0.snapshotSessions[scope]?.nextPart = part + 1 }
                        done(.success(.partApplied(next: part + 1)))
                        return
                    }
                    finish()
                }
                return
            }
            let interned: [(Int32, SKUIndex, String, Int32)] = state.withLock { s in
                chunks[i].map { ($0.slot, s.ledger.intern($0.sku), $0.sku, $0.quantity) }
            }
            let checkVersion = part == 0 && i == 0
            let previous = Mutex<Int64>(0)
            writer.submit({ db in
                if checkVersion {
                    let current = try Repository.inventoryVersion(db, scope: scope)
                    previous.withLock { $0 = current }
                    guard version > current else { throw StaleSnapshot(applied: current) }
                }
                for (slot, k, name, q) in interned {
                    try Repository.ensureSKU(db, index: k, name: name)
                    try Repository.setOnHand(db, slot: slot, sku: k, quantity: q)
                }
            }) { [self] r in
                switch r {
                case .success:
                    let (grew, short) = state.withLock { s -> (Bool, [Pair]) in
                        if checkVersion { s.snapshotSessions[scope]?.previous = previous.withLock { $0 } }
                        var grew = false
                        var short: [Pair] = []
                        for (slot, k, _, q) in interned {
                            if s.ledger.row(store: slot, sku: k) == nil { grew = true }
                            s.ledger.setOnHand(store: slot, sku: k, quantity: q)
                            s.snapshotSessions[scope]?.keep[slot, default: []].insert(k)
                            if s.ledger.isOverPromised(store: slot, sku: k) { short.append(Pair(slot: slot, sku: k)) }
                        }
                        return (grew, short)
                    }
                    if !short.isEmpty { shortfalls.withLock { $0.formUnion(short) } }
                    if grew { scheduleStockRebuild() }
                    noteRoutingChange(.stock)
                    step(i + 1)
                case .failure(let e as StaleSnapshot):
                    state.withLock { _ = $0.snapshotSessions.removeValue(forKey: scope) }
                    done(.success(.stale(applied: e.applied)))
                case .failure(let e):
                    state.withLock { _ = $0.snapshotSessions.removeValue(forKey: scope) }
                    done(.failure(e))
                }
            }
        }
        @Sendable func finish() {
            guard let sess = state.withLock({ $0.snapshotSessions.removeValue(forKey: scope) }) else {
                done(.success(.outOfOrder(expected: 0)))
                return
            }
            let keep = sess.keep
            writer.submit({ db in
                for (slot, kept) in keep { try Repository.zeroOnHand(db, slot: slot, except: kept) }
                try Repository.setInventoryVersion(db, scope: scope, version: version, at: at)
            }) { [self] r in
                switch r {
                case .success:
                    let (short, emptied) = state.withLock { s -> ([Pair], Int) in
                        var short: [Pair] = []
                        var emptied = 0
                        for (slot, kept) in keep where Int(slot) < s.ledger.stock.count {
                            let stock = s.ledger.stock[Int(slot)]
                            if kept.isEmpty && stock.onHand.contains(where: { $0 > 0 }) { emptied += 1 }
                            for k in stock.skus where !kept.contains(k) {
                                s.ledger.setOnHand(store: slot, sku: k, quantity: 0)
                                if let row = s.ledger.row(store: slot, sku: k), row.reserved > 0 { short.append(Pair(slot: slot, sku: k)) }
                            }
                        }
                        return (short, emptied)
                    }
                    // A snapshot that names no row of a stocked store empties it: right for a closed store, a disaster
                    // for an export that lost a region. Either way an operator should see it.
                    if emptied > 0 {
                        log.warn(
                            "inventory snapshot left stores with no stock",
                            [
                                ("scope", .string(scope)), ("version", .int(version)),
                                ("stores_emptied", .int(Int64(emptied))),
                                ("stores_in_scope", .int(Int64(keep.count))),
                            ])
                    }
                    resolveShortfalls(Set(short)) { [self] n in
                        let moved = n + sess.rerouted
                        log.info(
                            "inventory snapshot applied",
                            [
                                ("scope", .string(scope)), ("version", .int(version)),
                                ("rerouted", .int(Int64(moved))),
                            ])
                        done(.success(.applied(previous: sess.previous, rerouted: moved)))
                    }
                case .failure(let e): done(.failure(e))
                }
            }
        }
        step(0)
    }

    package struct Pair: Hashable, Sendable {
        var slot: Int32
        var sku: SKUIndex
    }

    /// Where the ERP now says a store holds less than it has promised, the newest orders there that
    /// have not started picking are rerouted (reason `stock_shortfall`) until what is reserved fits
    /// on hand again. The reroutes commit in one transaction; `then` gets how many orders moved after
    /// that commit, so whoever answers for the stock change answers only once the invariant holds on
    /// disk (a `kill -9` between a snapshot part's answer and its reroutes left rows over-promised).
    package func resolveShortfalls(_ pairs: Set<Pair>, then: @escaping @Sendable (Int) -> Void) {
        guard !pairs.isEmpty else { return then(0) }
        let now = clock.now()
        var effects: [Effects] = []
        state.withLock { s in
            // Orders that may move (not yet picking), by store, newest first.
            let slots = Set(pairs.map(\.slot))
            var bySlot: [Int32: [Int64]] = [:]
            for o in s.active.values where (o.status == .assigned || o.status == .accepted) {
                if let slot = o.storeSlot, slots.contains(slot) { bySlot[slot, default: []].append(o.id) }
            }
            for k in bySlot.keys { bySlot[k]?.sort(by: >) }
            for p in pairs.sorted(by: { ($0.slot, $0.sku) < ($1.slot, $1.sku) }) {
                // An order moved for an earlier pair is no longer at this store.
                let movable = (bySlot[p.slot] ?? []).filter { id in
                    guard let o = s.active[id], o.storeSlot == p.slot else { return false }
                    return o.reserved.contains { $0.sku == p.sku }
                }
                for id in movable {
                    guard s.ledger.isOverPromised(store: p.slot, sku: p.sku), var o = s.active[id] else { break }
                    var fx = Effects()
                    reject(
                        &o, reason: .stock_shortfall, missing: [s.ledger.skuNames[Int(p.sku)]],
                        note: "inventory sync left less on hand than reserved",
                        actor: .system("inventory"), now: now, s: &s, fx: &fx)
                    if o.status == .unroutable { s.active.removeValue(forKey: id) } else { s.active[id] = o }
                    effects.append(fx)
                }
                if let row = s.ledger.row(store: p.slot, sku: p.sku), row.reserved > row.onHand {
                    log.warn(
                        "reserved stock exceeds on hand for orders already being picked",
                        [
                            ("store_slot", .int(Int64(p.slot))), ("sku", .string(s.ledger.skuNames[Int(p.sku)])),
                            ("on_hand", .int(Int64(row.onHand))), ("reserved", .int(Int64(row.reserved))),
                        ])
                }
            }
        }
        guard !effects.isEmpty else { return then(0) }
        let jobs = effects.flatMap(\.jobs), moved = effects.count
        writer.submit({ db in for j in jobs { try j(db) } }) { [self] r in
            switch r {
            case .success: wakeOutbox()
            case .failure(let e):
                log.error("shortfall reroutes failed; reloading state", [("orders", .int(Int64(moved))), ("error", .string("\(e)"))])
                try? reload()
            }
            then(moved)
        }
    }

    /// Start-up: every store and SKU where more is reserved than on hand (a crash between a stock change and its
    /// reroutes, or a database edited by hand) moves its newest orders not yet picking, as a snapshot would; waits
    /// for the commit. Returns how many orders moved.
    @discardableResult
    package func resolveShortfallsAtStart() -> Int {
        let pairs = state.withLock { s -> Set<Pair> in
            var out = Set<Pair>()
            for slot in s.ledger.stock.indices {
                for k in s.ledger.stock[slot].skus where s.ledger.isOverPromised(store: Int32(slot), sku: k) {
                    out.insert(Pair(slot: Int32(slot), sku: k))
                }
            }
            return out
        }
        guard !pairs.isEmpty else { return 0 }
        let done = DispatchSemaphore(value: 0)
        let moved = Mutex(0)
        resolveShortfalls(pairs) { n in
            moved.withLock { $0 = n }
            done.signal()
        }
        done.wait()
        let n = moved.withLock { $0 }
        log.warn("stock over-promised at start-up: orders rerouted", [("rows", .int(Int64(pairs.count))), ("rerouted", .int(Int64(n)))])
        return n
    }

    /// The most a store can hold of one SKU: what a snapshot or a store's inventory accepts, and where deltas stop.
    package static let maxOnHand: Int64 = 1_000_000_000

    package struct Delta: Sendable {
        var id: String
        var slot: Int32
        var sku: String
        var change: Int32

        package init(id: String, slot: Int32, sku: String, change: Int32) {
            self.id = id
            self.slot = slot
            self.sku = sku
            self.change = change
        }
    }

    /// Applies each delta once: a delta id seen before is a no-op. `done` gets the ids that were duplicates.
    package func applyDeltas(_ deltas: [Delta], done: @escaping @Sendable (Result<[String], any Error>) -> Void) {
        let at = rfc3339(clock.now())
        let interned: [(Delta, SKUIndex)] = state.withLock { s in deltas.map { ($0, s.ledger.intern($0.sku)) } }
        let outcome = Mutex<(applied: [(Delta, SKUIndex, Int32)], duplicates: [String])>(([], []))
        writer.submit({ db in
            for (i, (d, k)) in interned.enumerated() {
                guard try Repository.claimDelta(db, id: d.id, at: at) else {
                    outcome.withLock { $0.duplicates.append(d.id) }
                    continue
                }
                try Repository.ensureSKU(db, index: k, name: d.sku)
                let current =
                    try db.query(
                        "SELECT on_hand FROM inventory WHERE store_slot = ? AND sku_idx = ?",
                        [.int(Int64(d.slot)), .int(Int64(k))]
                    ) { Int64($0.int(0)) }.first ?? 0
                // Below zero is clamped (the ERP saw sales ocss did not); above a snapshot's own limit is refused, and the
                // whole request with it, since the savepoint rolls back every claim made so far.
                guard current + Int64(d.change) <= Engine.maxOnHand else {
                    throw OnHandOutOfRange(deltaIndex: i, wouldBe: current + Int64(d.change))
                }
                let next = Int32(max(0, current + Int64(d.change)))
                try Repository.setOnHand(db, slot: d.slot, sku: k, quantity: next)
                outcome.withLock { $0.applied.append((d, k, next)) }
            }
        }) { [self] r in
            switch r {
            case .success:
                let o = outcome.withLock { $0 }
                // Relative in memory too: a shipment consumed in memory before its commit must not be overwritten.
                let short = state.withLock { s -> Set<Pair> in
                    var short = Set<Pair>()
                    for (d, k, _) in o.applied {
                        let current = s.ledger.row(store: d.slot, sku: k)?.onHand ?? 0
                        s.ledger.setOnHand(store: d.slot, sku: k, quantity: Int32(max(0, min(Engine.maxOnHand, Int64(current) + Int64(d.change)))))
                        if s.ledger.isOverPromised(store: d.slot, sku: k) { short.insert(Pair(slot: d.slot, sku: k)) }
                    }
                    return short
                }
                if !o.applied.isEmpty { noteRoutingChange(.stock) }
                resolveShortfalls(short) { _ in done(.success(o.duplicates)) }
            case .failure(let e): done(.failure(e))
            }
        }
    }
}

extension Engine {
    /// The stock invariants, checked over memory and the database (tests and `ocss` diagnostics):
    /// reserved is never negative nor above on hand, every row's reserved equals what active
    /// orders hold there, and the database agrees with memory. Nil when all hold.
    package func stockViolation() throws -> String? {
        let (ledger, active) = state.withLock { ($0.ledger, Array($0.active.values)) }
        var held: [Pair: Int32] = [:]
        for o in active {
            guard let slot = o.storeSlot else { continue }
            for d in o.reserved { held[Pair(slot: slot, sku: d.sku), default: 0] += d.quantity }
        }
        let rows = try readers.read { db in
            try db.query("SELECT store_slot, sku_idx, on_hand, reserved FROM inventory") { s throws(SQLiteError) in
                (Int32(s.int(0)), Int32(s.int(1)), Int32(s.int(2)), Int32(s.int(3)))
            }
        }
        var seen = 0
        for (slot, sku, onHand, reserved) in rows {
            guard let row = ledger.row(store: slot, sku: sku) else { return "store \(slot) sku \(sku): in the database, not in memory" }
            seen += 1
            if row.onHand != onHand || row.reserved != reserved {
                return "store \(slot) sku \(sku): memory \(row.onHand)/\(row.reserved), database \(onHand)/\(reserved)"
            }
            if reserved < 0 || reserved > onHand { return "store \(slot) sku \(sku): reserved \(reserved) of on hand \(onHand)" }
            if held[Pair(slot: slot, sku: sku)] ?? 0 != reserved {
                return "store \(slot) sku \(sku): reserved \(reserved) but active orders hold \(held[Pair(slot: slot, sku: sku)] ?? 0)"
            }
        }
        let memoryRows = ledger.stock.reduce(0) { $0 + $1.skus.count }
        return memoryRows == seen ? nil : "memory has \(memoryRows) rows, the database \(seen)"
    }
}

/// A delta that would take on hand past `Engine.maxOnHand`: the whole request is refused (its savepoint rolls back).
package struct OnHandOutOfRange: Error, Sendable {
    package var deltaIndex: Int
    package var wouldBe: Int64
}
