package import OCSSCore
import OCSSPlatforms
import OCSSProj
package import OCSSStore
import Dispatch
import Synchronization

/// What every decision says about itself, the parts of a split order, and routing without reserving.
extension Engine {
    package func explain(
        decision: RoutingDecision?, datum: String?, store: Store?, distance: Double?, status: OrderStatus,
        policyVersion: Int64, traceLimit: Int, review: String? = nil
    ) -> JSON {
        guard let d = decision else {
            return .object([
                ("summary", .string("no coordinates and the address could not be geocoded: waiting for address review")),
                ("geocode", .str(review)),
            ])
        }
        var summary = d.summary
        if let store, let distance, d.fallback != .split {
            let nearer = d.skipped.count
            let how =
                d.fallback == .warehouse
                ? "no store in reach can fill every line; regional warehouse"
                : d.ranked.isEmpty ? "nearest eligible store with every line in stock" : "best ranked eligible store"
            summary =
                "\(how): \(store.id) at \(Int(distance.rounded())) m (\(d.path.rawValue)"
                + (nearer > 0 ? "; \(nearer)\(nearer >= traceLimit ? "+" : "") nearer store(s) skipped)" : ")")
            if let m = d.opensInMinutes { summary += "; closed now, opens in \(m) min" }
        }
        var o: [(String, JSON)] = [
            ("summary", .string(summary)),
            ("path", .string(d.path.rawValue)),
            ("policy_version", .int(policyVersion)),
            ("reach_m", .double(d.reachMetres)),
            ("examined", .int(Int64(d.examined))),
            ("coordinates", .str(datum)),
            ("unroutable_reason", .str(d.unroutableReason)),
            ("fallback", .str(d.fallback?.rawValue)),
        ]
        if let m = d.opensInMinutes { o.append(("opens_in_min", .int(Int64(m)))) }
        if !d.parts.isEmpty {
            o.append(
                (
                    "split",
                    .array(
                        d.parts.map { p in
                            .object([
                                ("store_id", .string(p.storeID)), ("distance_m", .double(p.distanceMetres)),
                                ("line_indexes", .array(p.lineIndexes.map { .int(Int64($0)) })),
                            ])
                        })
                ))
        }
        if !d.ranked.isEmpty {
            o.append(
                (
                    "ranked",
                    .array(
                        d.ranked.map { c in
                            .object([("store_id", .string(c.storeID)), ("distance_m", .double(c.distanceMetres)), ("score", .double(c.score))])
                        })
                ))
        }
        o.append(
            (
                "skipped",
                .array(
                    d.skipped.map { c in
                        var o: [(String, JSON)] = [
                            ("store_id", .string(c.storeID)), ("distance_m", .double(c.distanceMetres)),
                            ("reason", .string(c.skipped?.code ?? "")),
                        ]
                        if case .outOfStock(let missing) = c.skipped { o.append(("missing_skus", .array(missing.map { .string($0) }))) }
                        if case .capacityFull(let used, let cap) = c.skipped {
                            o.append(("capacity", .object([("used", .int(Int64(used))), ("daily", .int(Int64(cap)))])))
                        }
                        return .object(o)
                    })
            ))
        return .object(o)
    }

    /// Part `number` of a split order: its own order (lines `lineIndexes`, parent `parentID`),
    /// reservation (already made) and assignment, with the active row to track it.
    package func makePart(
        of order: CanonicalOrder, parentID: Int64, number: Int, lineIndexes: [Int], slot: Int32, demands: [Demand],
        point: GeoPoint, hash: String, at: String, now: Double, policyVersion: Int64, s: inout State
    )
        -> (record: NewOrder, active: ActiveOrderRow)
    {
        let id = s.nextOrderID
        s.nextOrderID += 1
        let aid = s.nextAssignmentID
        s.nextAssignmentID += 1
        countAssignment(&s, slot: slot, now: now)
        var child = order
        child.lines = lineIndexes.map { order.lines[$0] }
        child.idempotency_key = order.idempotency_key + "#part-\(number)"
        let store = s.index.stores[Int(slot)]
        let distance = geodesy.distance(from: point, to: store.location)
        let explanation = JSON.object([
            (
                "summary",
                .string(
                    "part \(number + 1) of a split shipment of order \(parentID): no single location in reach holds every line; \(store.id) at \(Int(distance.rounded())) m ships \(child.lines.compactMap(\.sku).joined(separator: ","))"
                )
            ),
            ("policy_version", .int(policyVersion)), ("fallback", .string("split")), ("parent_id", .int(parentID)),
        ]).text
        let response = JSON.object([
            ("order_id", .int(id)), ("status", .string("assigned")), ("parent_id", .int(parentID)),
            (
                "assignment",
                .object([
                    ("assignment_id", .int(aid)), ("store_id", .string(store.id)), ("store_name", .string(store.name)),
                    ("distance_m", .double(distance)),
                ])
            ),
            ("explanation", .raw(explanation)),
        ]).text
        let payload = CanonicalJSON.encode(child)
        var record = NewOrder(
            id: id, idempotencyKey: child.idempotency_key, bodyHash: Crypto.sha256Hex(CanonicalJSON.decisionBytes(child)), platform: order.platform,
            platformOrderID: order.platform_order_id, status: .assigned, storeSlot: slot, distanceMetres: distance,
            payload: String(decoding: payload, as: UTF8.self), explanation: explanation, response: response, createdAt: at,
            lines: child.lines, reservations: demands, assignmentID: aid,
            events: [
                NewEvent(at: at, actor: "router", type: "split", from: nil, to: "received", reason: "part \(number + 1) of order \(parentID)"),
                NewEvent(at: at, actor: "router", type: "routed", from: "received", to: "assigned", reason: store.id),
            ])
        record.policyVersion = policyVersion
        let active = ActiveOrderRow(
            id: id, status: .assigned, storeSlot: slot, assignmentID: aid, point: point, statusAt: now,
            platform: order.platform, platformOrderID: order.platform_order_id, reserved: demands,
            distanceMetres: distance)
        return (record, active)
    }

    /// Route without reserving or writing (the `ocss route` CLI). The distance is the WGS84 geodesic.
    package func dryRoute(at point: GeoPoint, lines: [(String, Int32)]) -> (RoutingDecision, Double?, JSON) {
        let now = clock.now()
        return state.withLock { s in
            let version = s.policyVersion, limit = s.router.policy.traceLimit
            var demands: [Demand] = []
            for (sku, q) in lines {
                guard let k = s.ledger.index(of: sku) else {
                    let d = RoutingDecision.unroutable(reason: "sku_not_stocked:\(sku)", reachMetres: s.router.policy.reachMetres)
                    return (
                        d, nil,
                        explain(
                            decision: d, datum: "WGS84", store: nil, distance: nil, status: .unroutable, policyVersion: version,
                            traceLimit: limit)
                    )
                }
                demands.append(Demand(sku: k, quantity: q))
            }
            let ctx = context(&s, point: point, now: now)
            let d = s.router.plan(at: point, lines: demands, index: s.index, ledger: s.ledger, stock: s.stock, context: ctx, scratch: s.scratch)
            let store = d.storeSlot.map { s.index.stores[Int($0)] }
            let dist = store.map { geodesy.distance(from: point, to: $0.location) }
            return (
                d, dist,
                explain(
                    decision: d, datum: "WGS84", store: store, distance: dist, status: d.isRouted ? .assigned : .unroutable,
                    policyVersion: version, traceLimit: limit)
            )
        }
    }
}
