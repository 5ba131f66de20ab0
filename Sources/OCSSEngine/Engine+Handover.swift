import OCSSCore
import OCSSStore
import Synchronization

/// How goods leave a store other than by parcel: handed to the platform's rider, or collected by the buyer.
extension Engine {
    /// The goods are out of the store: their reservation becomes a sale (on hand goes down, as `ship` does), and the
    /// order moves to `next` (`handed_over` or `picked_up`).
    func leaveStore(_ o: inout ActiveOrderRow, to next: OrderStatus, actor: Actor, now: Double, s: inout State, fx: inout Effects) {
        settleReservation(&o, consume: true, s: &s, fx: &fx)
        move(&o, to: next, actor: actor, reason: nil, now: now, s: &s, fx: &fx)
    }

    /// A store's shelf is empty of `sku`: nothing more is offered from it until its next inventory update (on hand
    /// becomes what orders already hold, so their goods stay theirs). The store's staff say so from their list, as a
    /// rejection for `out_of_stock` does for the SKUs it names. Completes with on hand and reserved after the change.
    package func markOutOfStock(
        slot: Int32, sku: String, completion: @escaping @Sendable (Result<(onHand: Int32, reserved: Int32), AdminRefusal>) -> Void
    ) {
        // Under the lock, like a reservation: write jobs queue in the order the ledger changed, so the number written is
        // what the database's reservations add up to when it is written.
        let found: (SKUIndex, Int32)? = state.withLock { s in
            guard let k = s.ledger.index(of: sku), let row = s.ledger.row(store: slot, sku: k) else { return nil }
            s.ledger.setOnHand(store: slot, sku: k, quantity: row.reserved)
            let reserved = row.reserved
            writer.submit({ db in try Repository.setOnHand(db, slot: slot, sku: k, quantity: reserved) }) { [self] result in
                switch result {
                case .success:
                    log.info("store marked a SKU out of stock", [("store_slot", .int(Int64(slot))), ("sku", .string(sku))])
                    completion(.success((reserved, reserved)))
                case .failure:
                    // Memory keeps the lower figure (nothing is offered that the shelf lacks) until the next update.
                    completion(.failure(.storageUnavailable))
                }
            }
            return (k, reserved)
        }
        if found == nil { completion(.failure(.notFound)) }
    }

    /// Each open order's deadlines for its store's staff: accept by (an assignment not yet accepted: when it was
    /// assigned plus the store's accept SLA) and ready by (an accepted order: its ship-by time). Epoch seconds.
    package func deadlines(of orderIDs: [Int64]) -> [Int64: (acceptBy: Double?, readyBy: Double?)] {
        state.withLock { s in
            var out: [Int64: (acceptBy: Double?, readyBy: Double?)] = [:]
            for id in orderIDs {
                guard let o = s.active[id] else { continue }
                let acceptBy = o.status == .assigned ? o.statusAt + s.sla(for: o.storeSlot).acceptSeconds : nil
                out[id] = (acceptBy, o.status == .assigned ? nil : o.shipBy)
            }
            return out
        }
    }

    /// Accepts, as the store would, each new assignment of a store whose rules say `auto_accept` (after the commit
    /// that made it; the acceptance is a change of its own, with its event and the platform's call).
    func autoAccept(_ assigned: [(orderID: Int64, assignmentID: Int64, slot: Int32)]) {
        guard !assigned.isEmpty else { return }
        let chosen = state.withLock { s in
            assigned.filter { Int($0.slot) < s.index.stores.count && s.index.stores[Int($0.slot)].rules.autoAccept }
        }
        for a in chosen {
            act(orderID: a.orderID, assignmentID: a.assignmentID, action: .accept, actor: .system("auto_accept"), input: ActionInput()) {
                [log] outcome in
                if case .refused(let why) = outcome { log.warn("auto-accept refused", [("order_id", .int(a.orderID)), ("why", .string("\(why)"))]) }
            }
        }
    }

    /// Turns auto-accept on or off for one store from its own app (自动接单): the store's rules change, nothing else
    /// (its SLA and other rules are kept).
    package func setAutoAccept(slot: Int32, on: Bool, done: @escaping @Sendable (Result<Void, AdminRefusal>) -> Void) {
        let current: (Store, StoreSLA)? = state.withLock { s in
            Int(slot) < s.index.stores.count ? (s.index.stores[Int(slot)], s.sla(for: slot)) : nil
        }
        guard let (found, sla) = current else { return done(.failure(.notFound)) }
        var store = found
        store.rules.autoAccept = on
        upsertStore(store, sla: sla) { r in done(r.map { _ in () }.mapError { _ in .storageUnavailable }) }
    }
}
