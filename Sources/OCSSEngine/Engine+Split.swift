import Dispatch
package import OCSSCore
import OCSSPlatforms
import OCSSProj
package import OCSSStore
import Synchronization

/// A partial rejection: the lines a store cannot fill leave as an order of their own.
extension Engine {
    /// Partial rejection: the named lines leave the store as a new order (its own assignment,
    /// reservation and explanation, `parent_id` pointing back), routed away from every store that
    /// rejected the parent; the rest stays where it is. Returns the new part's state.
    package func splitOff(
        _ o: inout ActiveOrderRow, moving: [Demand], parent: CanonicalOrder, reason: RejectReason, note: String?,
        actor: Actor, now: Double, s: inout State, fx: inout Effects
    ) -> JSON {
        guard let slot = o.storeSlot else { return .null }
        let parentID = o.id
        let at = rfc3339(now)
        s.ledger.release(store: slot, lines: moving)
        let movedSKUs = moving.map(\.sku)
        if reason == .out_of_stock {
            for k in movedSKUs { s.ledger.setOnHand(store: slot, sku: k, quantity: s.ledger.row(store: slot, sku: k)?.reserved ?? 0) }
        }
        o.reserved = o.reserved.filter { !movedSKUs.contains($0.sku) }
        let names = Set(movedSKUs.map { s.ledger.skuNames[Int($0)] })
        let childID = s.nextOrderID
        s.nextOrderID += 1
        var child = parent
        child.lines = parent.lines.filter { $0.sku.map(names.contains) ?? false }
        child.idempotency_key = parent.idempotency_key + "#part-\(childID)"
        let excluded = o.rejectedBy.union([slot])
        let ctx = context(&s, point: o.point, now: now)
        var d =
            o.point.map {
                s.router.plan(
                    at: $0, lines: moving, index: s.index, ledger: s.ledger, stock: s.stock, excluded: excluded,
                    allowSplit: false, context: ctx, scratch: s.scratch)
            }
            ?? .unroutable(reason: "no customer point", reachMetres: s.router.policy.reachMetres)
        var status = OrderStatus.unroutable
        var childSlot: Int32?, childAssignment: Int64?, childDistance: Double?
        if let next = d.storeSlot, let point = o.point, (try? s.ledger.reserve(store: next, lines: moving)) != nil {
            countAssignment(&s, slot: next, now: now)
            status = .assigned
            childSlot = next
            childAssignment = s.nextAssignmentID
            s.nextAssignmentID += 1
            childDistance = geodesy.distance(from: point, to: s.index.stores[Int(next)].location)
            s.active[childID] = ActiveOrderRow(
                id: childID, status: .assigned, storeSlot: next, assignmentID: childAssignment, point: point,
                statusAt: now, platform: o.platform, platformOrderID: o.platformOrderID, reserved: moving,
                rejectedBy: excluded, distanceMetres: childDistance)
        } else if d.storeSlot != nil {
            // The router's choice could not be reserved (as at intake): say so, not that no store was in reach.
            d = .unroutable(reason: "reservation_failed", reachMetres: s.router.policy.reachMetres)
        }
        let why = reason.rawValue + (note.map { ": \($0)" } ?? "")
        let store = childSlot.map { s.index.stores[Int($0)] }
        let explanation = explain(
            decision: d, datum: "split from order \(parentID) (\(why))", store: store, distance: childDistance, status: status,
            policyVersion: s.policyVersion, traceLimit: s.router.policy.traceLimit)
        let state: JSON = .object([
            ("order_id", .int(childID)), ("status", .string(status.rawValue)), ("parent_id", .int(parentID)),
            ("skus", .array(names.sorted().map { .string($0) })),
            (
                "assignment",
                childAssignment.map { .object([("assignment_id", .int($0)), ("store_id", .str(store?.id)), ("distance_m", .num(childDistance))]) }
                    ?? .null
            ),
            ("explanation", explanation),
        ])
        let payload = CanonicalJSON.encode(child)
        var record = NewOrder(
            id: childID, idempotencyKey: child.idempotency_key, bodyHash: Crypto.sha256Hex(CanonicalJSON.decisionBytes(child)),
            platform: child.platform,
            platformOrderID: child.platform_order_id, status: status, storeSlot: childSlot, distanceMetres: childDistance,
            payload: String(decoding: payload, as: UTF8.self), explanation: explanation.text, response: state.text, createdAt: at,
            lines: child.lines, reservations: childSlot == nil ? [] : moving, assignmentID: childAssignment,
            events: [
                NewEvent(at: at, actor: actor.name, type: "split", from: nil, to: "received", reason: "from order \(parentID): \(why)"),
                NewEvent(at: at, actor: "router", type: "routed", from: "received", to: status.rawValue, reason: d.storeID ?? d.unroutableReason),
            ])
        record.customerPoint = o.point
        record.statusAt = now
        record.parentID = parentID
        remember(child.idempotency_key, hash: record.bodyHash, in: &s)
        let parentEvent = NewEvent(
            at: at, actor: actor.name, type: "split", from: o.status.rawValue, to: o.status.rawValue,
            reason: "\(names.sorted().joined(separator: ",")) moved to order \(childID): \(why)")
        let unavailable = reason == .out_of_stock ? movedSKUs : []
        let childRecord = record
        fx.jobs.append { db in
            try Repository.releaseReservations(db, orderID: parentID, skus: movedSKUs)
            for k in unavailable { try Repository.zeroAvailability(db, slot: slot, sku: k) }
            try Repository.insertEvent(db, orderID: parentID, parentEvent)
            try Repository.insertOrder(db, childRecord)
        }
        return state
    }
}
