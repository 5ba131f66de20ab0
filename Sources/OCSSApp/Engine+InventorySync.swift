import OCSSCore
import OCSSStore
import Synchronization

/// A snapshot older than (or as old as) the one applied: ignored, and the answer says so.
struct StaleSnapshot: Error {
    let applied: Int64
}

/// ERP inventory sync: versioned snapshots and idempotent deltas. The database decides (inside the
/// writer's transaction); memory follows after the commit. Only on-hand changes: what is reserved
/// for orders survives every snapshot.
extension Engine {
    struct SnapshotRow: Sendable {
        var slot: Int32
        var sku: String
        var quantity: Int32
    }

    /// Replaces on-hand for the stores in `scopeSlots` with `rows` (unlisted SKUs of those stores go to 0)
    /// when `version` is newer than the scope's applied version. `done` gets (applied, previous version).
    func applySnapshot(scope: String, scopeSlots: [Int32], version: Int64, rows: [SnapshotRow],
                       done: @escaping @Sendable (Result<(applied: Bool, previous: Int64), any Error>) -> Void) {
        let at = rfc3339(clock.now())
        let interned: [(Int32, SKUIndex, String, Int32)] = state.withLock { s in
            rows.map { ($0.slot, s.ledger.intern($0.sku), $0.sku, $0.quantity) }
        }
        var keep: [Int32: Set<SKUIndex>] = [:]
        for slot in scopeSlots { keep[slot] = [] }
        for (slot, k, _, _) in interned { keep[slot, default: []].insert(k) }
        let keepSets = keep
        let previous = Mutex<Int64>(0)
        writer.submit({ db in
            let current = try Repository.inventoryVersion(db, scope: scope)
            previous.withLock { $0 = current }
            guard version > current else { throw StaleSnapshot(applied: current) }
            for (slot, k, name, q) in interned {
                try Repository.ensureSKU(db, index: k, name: name)
                try Repository.setOnHand(db, slot: slot, sku: k, quantity: q)
            }
            for (slot, kept) in keepSets { try Repository.zeroOnHand(db, slot: slot, except: kept) }
            try Repository.setInventoryVersion(db, scope: scope, version: version, at: at)
        }) { [self] r in
            switch r {
            case .success:
                let grew = state.withLock { s -> Bool in
                    let before = s.ledger.storesBySKU.reduce(0) { $0 + $1.count }
                    for (slot, kept) in keepSets where Int(slot) < s.ledger.stock.count {
                        for k in s.ledger.stock[Int(slot)].skus where !kept.contains(k) { s.ledger.setOnHand(store: slot, sku: k, quantity: 0) }
                    }
                    for (slot, k, _, q) in interned { s.ledger.setOnHand(store: slot, sku: k, quantity: q) }
                    return s.ledger.storesBySKU.reduce(0) { $0 + $1.count } != before
                }
                if grew { scheduleStockRebuild() }
                done(.success((true, previous.withLock { $0 })))
            case .failure(let e as StaleSnapshot): done(.success((false, e.applied)))
            case .failure(let e): done(.failure(e))
            }
        }
    }

    struct Delta: Sendable {
        var id: String
        var slot: Int32
        var sku: String
        var change: Int32
    }

    /// Applies each delta once: a delta id seen before is a no-op. `done` gets the ids that were duplicates.
    func applyDeltas(_ deltas: [Delta], done: @escaping @Sendable (Result<[String], any Error>) -> Void) {
        let at = rfc3339(clock.now())
        let interned: [(Delta, SKUIndex)] = state.withLock { s in deltas.map { ($0, s.ledger.intern($0.sku)) } }
        let outcome = Mutex<(applied: [(Delta, SKUIndex, Int32)], duplicates: [String])>(([], []))
        writer.submit({ db in
            for (d, k) in interned {
                guard try Repository.claimDelta(db, id: d.id, at: at) else {
                    outcome.withLock { $0.duplicates.append(d.id) }
                    continue
                }
                try Repository.ensureSKU(db, index: k, name: d.sku)
                let current = try db.query("SELECT on_hand FROM inventory WHERE store_slot = ? AND sku_idx = ?",
                                           [.int(Int64(d.slot)), .int(Int64(k))]) { Int64($0.int(0)) }.first ?? 0
                let next = Int32(max(0, min(Int64(Int32.max), current + Int64(d.change))))
                try Repository.setOnHand(db, slot: d.slot, sku: k, quantity: next)
                outcome.withLock { $0.applied.append((d, k, next)) }
            }
        }) { [self] r in
            switch r {
            case .success:
                let o = outcome.withLock { $0 }
                // Relative in memory too: a shipment consumed in memory before its commit must not be overwritten.
                state.withLock { s in
                    for (d, k, _) in o.applied {
                        let current = s.ledger.row(store: d.slot, sku: k)?.onHand ?? 0
                        s.ledger.setOnHand(store: d.slot, sku: k, quantity: Int32(max(0, min(Int64(Int32.max), Int64(current) + Int64(d.change)))))
                    }
                }
                done(.success(o.duplicates))
            case .failure(let e): done(.failure(e))
            }
        }
    }
}
