package import OCSSCore
import OCSSPlatforms
import OCSSProj
package import OCSSStore
import Dispatch
import Synchronization

/// Order intake: locate the customer, admit the order (idempotency, platform duplicates, service area), plan and
/// reserve, record in one group-committed transaction, answer after the commit; and the explanation every decision
/// carries.
/// What intake completes with: the order made, or found again.
package struct OrderReceipt: Sendable {
    package var orderID: Int64
    /// The order's answer (JSON text): the same bytes for the request that made it and for every replay.
    package var answer: String
    /// This request did not make the order: a retried key, a concurrent copy, another event of the same platform order.
    package var replay: Bool

    package init(orderID: Int64, answer: String, replay: Bool) {
        self.orderID = orderID
        self.answer = answer
        self.replay = replay
    }

    package init(replaying rec: OrderRecord) { self.init(orderID: rec.id, answer: rec.response, replay: true) }
}

/// Why intake took no order. The engine's own words; `App` turns them into HTTP (`OrderRefusal.apiError`).
package enum OrderRefusal: Error, Sendable, Equatable {
    /// The coordinates are not a point in their CRS (PROJ's reason).
    case invalidCoordinates(message: String)
    /// The idempotency key was used with a different body.
    case idempotencyConflict
    /// The platform cancelled this order before ocss received it; nothing was routed.
    case platformOrderCancelled
    /// No store or warehouse serves the point (the merchant's own API only; a platform's order is recorded).
    case outsideServiceArea(field: String)
    /// The order could not be stored (or its stored answer read); a retry with the same key is safe.
    case storageUnavailable
}

package typealias OrderCompletion = @Sendable (Result<OrderReceipt, OrderRefusal>) -> Void

extension Engine {
    /// Routes, reserves and durably records one canonical order, then completes `done` (after the commit) with the
    /// receipt, or the refusal. A retried idempotency key gets the original receipt, marked a replay; a different body
    /// under the same key is refused (`idempotencyConflict`).
    /// `checkPlatform` false: the committed platform-order window matched another platform order's hash; skip it.
    /// `fromPlatform`: the order came by a platform's webhook. Such an order is always recorded, even outside every
    /// service area (unroutable, `outside_service_area`): the buyer has paid, and a refusal would leave the order only on
    /// the platform, which retries and then disables the webhook. The merchant's own API may still be refused at intake.
    package func submit(order: CanonicalOrder, checkPlatform: Bool = true, fromPlatform: Bool = false, done: @escaping OrderCompletion) {
        let canonical = CanonicalJSON.encode(order)
        let hash = Crypto.sha256Hex(canonical)
        let payload = String(decoding: canonical, as: UTF8.self)
        let key = order.idempotency_key

        // Where the customer is (outside the lock: PROJ and the geocoder are slower than routing).
        var point: GeoPoint?
        var datumNote: String?
        var reviewNote: String?
        var names: GeoNames?
        if let c = order.shipping.coordinates {
            do {
                point = try crs.toWGS84(lat: c.lat, lon: c.lon, crs: c.crs)
                datumNote = c.crs.uppercased() == "WGS84" ? "WGS84" : "\(c.crs) -> WGS84"
            } catch {
                return done(.failure(.invalidCoordinates(message: error.description)))
            }
            if let text = Engine.addressText(order.shipping), let m = geocoder.geocode(text) {
                names = m.names
                if let p = point, let warning = addressDisagreement(point: p, match: m) { datumNote! += "; warning: " + warning }
            }
        } else if let text = Engine.addressText(order.shipping) {
            switch geocode(text) {
            case .success(let (m, note)):
                point = m.point
                datumNote = note
                names = m.names
            case .failure(let why):
                reviewNote = why.message
                names = why.match?.names
            }
        }
        let now = clock.now()
        let at = rfc3339(now)
        let facts = Engine.facts(of: order, names: names, at: at)

        // A key older than the in-memory window is only in the database: look there before treating it as new.
        // The same goes for a platform order that already became an order under another key.
        let platformKey = Engine.platformKey(order)
        let platformHash = Engine.platformHash(order.platform, order.platform_order_id)
        let lookedUp = !windowComplete.load(ordering: .relaxed)
        if lookedUp {
            idempotencyLookups.add(1, ordering: .relaxed)
            do {
                let (stored, holder) = try readers.read { db in
                    (
                        try Repository.bodyHash(db, idempotencyKey: key),
                        try Repository.order(db, platform: order.platform, platformOrderID: order.platform_order_id)
                    )
                }
                if let stored {
                    if stored == hash { replay(key: key, done: done) } else { done(.failure(.idempotencyConflict)) }
                    return
                }
                if let holder { return duplicate(order, of: holder, fromPlatform: fromPlatform, done: done) }
            } catch {
                return done(.failure(.storageUnavailable))
            }
        }

        enum Outcome { case refused(OrderRefusal); case replay; case wait; case lookUp; case duplicateOf(Int64) }
        let outcome: Outcome = state.withLock { s -> Outcome in
            if let h = s.committed[key] {
                return h == IdempotencyWindow.digest(hex: hash) ? .replay : .refused(.idempotencyConflict)
            }
            if let p = s.pending[key] {
                guard p.hash == hash else { return .refused(.idempotencyConflict) }
                s.pending[key]!.waiters.append(done)
                return .wait
            }
            // The window became incomplete since the check above: the key may be an evicted one.
            if !s.committed.complete && !lookedUp { return .lookUp }
            if s.cancelledPlatformOrders.contains(platformKey) { return .refused(.platformOrderCancelled) }
            if let holder = s.pendingPlatform[platformKey], holder != key, s.pending[holder] != nil {
                duplicatePlatformOrders.add(1, ordering: .relaxed)
                s.pending[holder]!.waiters.append(done)
                return .wait
            }
            if checkPlatform, let holder = s.platformOrders[platformHash] { return .duplicateOf(holder) }
            // Out of every service area: refused now, not discovered later (nothing stored, no id used); a platform's
            // order is recorded as unroutable instead.
            var outOfArea = false
            if let point, s.router.policy.refuseOutOfArea, !s.index.stores.isEmpty,
                !s.router.serves(point, index: s.index, scratch: s.scratch)
            {
                outOfArea = true
            }
            if outOfArea && !fromPlatform {
                return .refused(.outsideServiceArea(field: order.shipping.coordinates != nil ? "shipping.coordinates" : "shipping.text"))
            }
            let orderID = s.nextOrderID
            s.nextOrderID += 1
            var status: OrderStatus = .address_review
            var decision: RoutingDecision?
            let (demands, unmapped) = Engine.demands(of: order.lines, ledger: s.ledger)
            var assignmentID: Int64?
            var distance: Double?
            var slot: Int32?
            var partDemands = demands
            var children: [NewOrder] = []
            var childActive: [ActiveOrderRow] = []
            var childReserved: [(Int32, [Demand])] = []
            let policyVersion = s.policyVersion
            if let point {
                let t0 = monotonicSeconds()
                if let unmapped {
                    status = .unroutable
                    decision = .unroutable(reason: unmapped, reachMetres: s.router.policy.reachMetres)
                } else if outOfArea {
                    status = .unroutable
                    decision = .unroutable(reason: "outside_service_area", reachMetres: s.router.policy.reachMetres)
                } else {
                    let ctx = context(&s, point: point, now: now)
                    var d = s.router.plan(
                        at: point, lines: demands, index: s.index, ledger: s.ledger, stock: s.stock, context: ctx,
                        scratch: s.scratch)
                    // Each part: (slot, line indexes). A single location ships every line.
                    let parts: [(Int32, [Int])] =
                        d.fallback == .split
                        ? d.parts.map { ($0.slot, $0.lineIndexes) }
                        : d.storeSlot.map { [($0, Array(demands.indices))] } ?? []
                    var taken: [(Int32, [Demand])] = []
                    for (partSlot, idx) in parts {
                        let want = idx.map { demands[$0] }
                        do {
                            try s.ledger.reserve(store: partSlot, lines: want)
                            taken.append((partSlot, want))
                        } catch {
                            // canFill said yes under the same lock; route nowhere rather than oversell.
                            for (ts, td) in taken { s.ledger.release(store: ts, lines: td) }
                            taken = []
                            d.reservationFailed()
                            break
                        }
                    }
                    decision = d
                    if let (firstSlot, firstDemands) = taken.first {
                        status = .assigned
                        slot = firstSlot
                        partDemands = firstDemands
                        distance = geodesy.distance(from: point, to: s.index.stores[Int(firstSlot)].location)
                        assignmentID = s.nextAssignmentID
                        s.nextAssignmentID += 1
                        countAssignment(&s, slot: firstSlot, now: now)
                        for (n, (partSlot, want)) in taken.enumerated().dropFirst() {
                            let part = makePart(
                                of: order, parentID: orderID, number: n, lineIndexes: parts[n].1, slot: partSlot, demands: want,
                                point: point, hash: hash, at: at, now: now, policyVersion: policyVersion, s: &s)
                            children.append(part.record)
                            childActive.append(part.active)
                            childReserved.append((partSlot, want))
                        }
                    } else {
                        status = .unroutable
                    }
                }
                metrics.routing(seconds: monotonicSeconds() - t0)
            }
            let store = slot.map { s.index.stores[Int($0)] }
            var explanationJSON = explain(
                decision: decision, datum: datumNote, store: store, distance: distance, status: status,
                policyVersion: policyVersion, traceLimit: s.router.policy.traceLimit, review: reviewNote)
            if !children.isEmpty {
                explanationJSON = explanationJSON.adding(
                    "parts",
                    .array(
                        [JSON.object([("order_id", .int(orderID)), ("store_id", .str(store?.id)), ("assignment_id", .int(assignmentID ?? 0))])]
                            + children.map { c in
                                .object([
                                    ("order_id", .int(c.id)), ("store_id", .str(c.storeSlot.map { s.index.stores[Int($0)].id })),
                                    ("assignment_id", .int(c.assignmentID ?? 0)),
                                ])
                            }))
            }
            let explanation = explanationJSON.text
            let response = JSON.object([
                ("order_id", .int(orderID)),
                ("status", .string(status.rawValue)),
                (
                    "assignment",
                    assignmentID.map { aid in
                        .object([
                            ("assignment_id", .int(aid)), ("store_id", .str(store?.id)), ("store_name", .str(store?.name)),
                            ("distance_m", .num(distance)),
                        ])
                    } ?? .null
                ),
                ("explanation", .raw(explanation)),
            ]).text
            var events = [NewEvent(at: at, actor: "platform:\(order.platform)", type: "received", from: nil, to: "received", reason: nil)]
            events.append(
                NewEvent(
                    at: at, actor: "router", type: status == .address_review ? "address_review" : "routed",
                    from: "received", to: status.rawValue,
                    reason: decision.map { d in d.storeID ?? d.unroutableReason ?? "" } ?? reviewNote ?? "no coordinates and no address"))
            var record = NewOrder(
                id: orderID, idempotencyKey: key, bodyHash: hash, platform: order.platform, platformOrderID: order.platform_order_id,
                status: status, storeSlot: slot, distanceMetres: distance, payload: payload, explanation: explanation,
                response: response, createdAt: at, lines: order.lines, reservations: slot == nil ? [] : partDemands,
                assignmentID: assignmentID, events: events)
            record.policyVersion = decision == nil ? nil : policyVersion
            record.facts = facts
            record.customerPoint = point
            record.statusAt = now
            for i in children.indices {
                children[i].customerPoint = point
                children[i].statusAt = now
                children[i].parentID = orderID
            }
            s.pending[key] = (hash, [done])
            s.pendingPlatform[platformKey] = key
            if status == .assigned {
                s.active[orderID] = ActiveOrderRow(
                    id: orderID, status: .assigned, storeSlot: slot, assignmentID: assignmentID, point: point, statusAt: now,
                    platform: order.platform, platformOrderID: order.platform_order_id, reserved: partDemands, distanceMetres: distance)
            }
            for c in childActive { s.active[c.id] = c }
            let parts = children
            let partReservations = childReserved
            let reserved = partDemands
            let chosenSlot = slot
            let outcomeLabel = status.rawValue
            writer.submit({ db in
                try Repository.insertOrder(db, record)
                for part in parts { try Repository.insertOrder(db, part) }
            }) { [self] result in
                let waiters: [OrderCompletion] = state.withLock { s in
                    let w = s.pending.removeValue(forKey: key)?.waiters ?? []
                    s.pendingPlatform.removeValue(forKey: platformKey)
                    switch result {
                    case .success:
                        remember(key, hash: hash, in: &s)
                        s.platformOrders.insert(platformHash, value: orderID)
                        for part in parts { remember(part.idempotencyKey, hash: part.bodyHash, in: &s) }
                    case .failure:
                        if let chosenSlot { s.ledger.release(store: chosenSlot, lines: reserved) }
                        s.active.removeValue(forKey: orderID)
                        for (ps, pd) in partReservations { s.ledger.release(store: ps, lines: pd) }
                        for part in parts { s.active.removeValue(forKey: part.id) }
                    }
                    return w
                }
                switch result {
                case .success:
                    metrics.order(outcome: outcomeLabel)
                    // The first request made the order; the same key sent again meanwhile is a replay, and says so.
                    for (i, w) in waiters.enumerated() { w(.success(OrderReceipt(orderID: orderID, answer: response, replay: i > 0))) }
                case .failure(let e):
                    log.error("order commit failed", [("order_id", .int(orderID)), ("error", .string("\(e)"))])
                    for w in waiters { w(.failure(.storageUnavailable)) }
                }
            }
            return .wait
        }
        switch outcome {
        case .refused(let why): done(.failure(why))
        case .wait: break
        case .replay: replay(key: key, done: done)
        case .lookUp: submit(order: order, checkPlatform: checkPlatform, fromPlatform: fromPlatform, done: done)
        case .duplicateOf(let holder): duplicate(order, of: holder, fromPlatform: fromPlatform, done: done)
        }
    }

    /// Which platform order an order event is about (the platform's own id, whatever the event's idempotency key).
    package static func platformKey(_ order: CanonicalOrder) -> String { platformKey(order.platform, order.platform_order_id) }
    package static func platformKey(_ platform: String, _ id: String) -> String { platform + "\u{0}" + id }
    /// The same, hashed for the committed window (this process's seeded hash: the window is rebuilt at start-up).
    package static func platformHash(_ platform: String, _ id: String) -> Int {
        var h = Hasher()
        h.combine(platform)
        h.combine(id)
        return h.finalize()
    }

    /// A routed event for a platform order that is already order `holder`: answered with that order, nothing stored.
    /// A hash that matched another platform order (about one in 10^14 a lookup) is routed after all.
    private func duplicate(_ order: CanonicalOrder, of holder: Int64, fromPlatform: Bool, done: @escaping OrderCompletion) {
        let rec: OrderRecord?
        do { rec = try readers.read { try Repository.order($0, id: holder) } } catch {
            return done(.failure(.storageUnavailable))
        }
        guard let rec, rec.platform == order.platform, rec.platformOrderID == order.platform_order_id else {
            return submit(order: order, checkPlatform: false, fromPlatform: fromPlatform, done: done)
        }
        duplicatePlatformOrders.add(1, ordering: .relaxed)
        log.info(
            "platform order already received: answered with its order",
            [
                ("platform", .string(order.platform)), ("platform_order_id", .string(order.platform_order_id)),
                ("event", .string(order.event)), ("idempotency_key", .string(order.idempotency_key)), ("order_id", .int(holder)),
            ])
        done(.success(OrderReceipt(replaying: rec)))
    }

    /// Records a committed idempotency key; once the window has let one go, new keys are looked up in the
    /// database first.
    package func remember(_ key: String, hash: String, in s: inout State) {
        s.committed.insert(key, hash: hash)
        if !s.committed.complete { windowComplete.store(false, ordering: .relaxed) }
    }

    /// Answers a retried idempotency key with the stored original receipt.
    private func replay(key: String, done: OrderCompletion) {
        guard let rec = try? readers.read({ try Repository.order($0, idempotencyKey: key) }) else { return done(.failure(.storageUnavailable)) }
        done(.success(OrderReceipt(replaying: rec)))
    }

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
            id: id, idempotencyKey: child.idempotency_key, bodyHash: Crypto.sha256Hex(payload), platform: order.platform,
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
