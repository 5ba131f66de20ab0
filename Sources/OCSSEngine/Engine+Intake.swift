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

/// An order on its way in: its canonical bytes and the keys it is known by.
struct IntakeItem {
    let order: CanonicalOrder
    let payload: String
    let hash: String
    var key: String { order.idempotency_key }
    let platformKey: String
    let platformHash: Int
    let checkPlatform: Bool
    let fromPlatform: Bool

    init(_ order: CanonicalOrder, checkPlatform: Bool, fromPlatform: Bool) {
        self.order = order
        let canonical = CanonicalJSON.encode(order)
        // The hash leaves out what only staff read (see `CanonicalJSON.decisionBytes`); the payload keeps it.
        hash = Crypto.sha256Hex(order.hasStaffFields ? CanonicalJSON.decisionBytes(order) : canonical)
        payload = String(decoding: canonical, as: UTF8.self)
        platformKey = Engine.platformKey(order)
        platformHash = Engine.platformHash(order.platform, order.platform_order_id)
        self.checkPlatform = checkPlatform
        self.fromPlatform = fromPlatform
    }
}

/// Where the customer is: the point in WGS84 and how it was found, or why it waits for review.
struct CustomerLocation {
    var point: GeoPoint?
    var datumNote: String?
    var reviewNote: String?
    var names: GeoNames?
}

/// What admission decided under the lock, when it did not let the order through to planning.
enum AdmissionVerdict {
    case refused(OrderRefusal)
    case replay
    /// `done` joined the waiters of the copy in flight (or the order was planned and is being recorded).
    case wait
    /// The window became incomplete meanwhile: look the key up in the database first.
    case lookUp
    case duplicateOf(Int64)
}

/// Admission's answer: through to planning (outside every service area or not), or settled.
enum Admission {
    case admitted(outOfArea: Bool)
    case settled(AdmissionVerdict)
}

/// What planning decided and reserved, under the lock: the order's id, status, store and any split parts.
struct IntakePlan {
    var orderID: Int64
    var status: OrderStatus = .address_review
    var decision: RoutingDecision?
    var slot: Int32?
    var assignmentID: Int64?
    var distance: Double?
    /// The first part's lines (the whole order's when not split).
    var reserved: [Demand]
    var children: [NewOrder] = []
    var childActive: [ActiveOrderRow] = []
    var childReserved: [(Int32, [Demand])] = []
    var policyVersion: Int64
}

extension Engine {
    /// Routes, reserves and durably records one canonical order, then completes `done` (after the commit) with the
    /// receipt, or the refusal. A retried idempotency key gets the original receipt, marked a replay; a different body
    /// under the same key is refused (`idempotencyConflict`).
    /// `checkPlatform` false: the committed platform-order window matched another platform order's hash; skip it.
    /// `fromPlatform`: the order came by a platform's webhook. Such an order is always recorded, even outside every
    /// service area (unroutable, `outside_service_area`): the buyer has paid, and a refusal would leave the order only on
    /// the platform, which retries and then disables the webhook. The merchant's own API may still be refused at intake.
    ///
    /// The stages: `locate` (outside the lock), `admitFromDatabase` (only while the key window is incomplete), then
    /// under the one lock `admit`, `planAndReserve` and `record`, and `commitAndAnswer` through the single writer.
    package func submit(order: CanonicalOrder, checkPlatform: Bool = true, fromPlatform: Bool = false, done: @escaping OrderCompletion) {
        let item = IntakeItem(order, checkPlatform: checkPlatform, fromPlatform: fromPlatform)
        let location: CustomerLocation
        switch locate(order) {
        case .success(let l): location = l
        case .failure(let why): return done(.failure(why))
        }
        let now = clock.now()
        let at = rfc3339(now)
        let facts = Engine.facts(of: order, names: location.names, at: at)
        let lookedUp = !windowComplete.load(ordering: .relaxed)
        if lookedUp && admitFromDatabase(item, done: done) { return }

        let verdict: AdmissionVerdict = state.withLock { s -> AdmissionVerdict in
            let outOfArea: Bool
            switch admit(item, location, lookedUp: lookedUp, &s, done: done) {
            case .admitted(let o): outOfArea = o
            case .settled(let verdict): return verdict
            }
            let plan = planAndReserve(item, location, outOfArea: outOfArea, &s, now: now, at: at)
            let (row, answer) = record(item, location, plan, &s, facts: facts, at: at, now: now)
            commitAndAnswer(item, plan, row, answer: answer, &s, now: now, done: done)
            return .wait
        }
        switch verdict {
        case .refused(let why): done(.failure(why))
        case .wait: break
        case .replay: replay(key: item.key, done: done)
        case .lookUp: submit(order: order, checkPlatform: checkPlatform, fromPlatform: fromPlatform, done: done)
        case .duplicateOf(let holder): duplicate(order, of: holder, fromPlatform: fromPlatform, done: done)
        }
    }

    /// Stage 1, outside the lock (PROJ and the geocoder are slower than routing): the customer's point in WGS84 from
    /// the platform's coordinates, or from the address text; an address the geocoder cannot place is a review note.
    func locate(_ order: CanonicalOrder) -> Result<CustomerLocation, OrderRefusal> {
        var l = CustomerLocation()
        if let c = order.shipping.coordinates {
            do {
                l.point = try crs.toWGS84(lat: c.lat, lon: c.lon, crs: c.crs)
                l.datumNote = c.crs.uppercased() == "WGS84" ? "WGS84" : "\(c.crs) -> WGS84"
            } catch {
                return .failure(.invalidCoordinates(message: error.description))
            }
            if let text = Engine.addressText(order.shipping), let m = geocoder.geocode(text) {
                l.names = m.names
                if let p = l.point, let warning = addressDisagreement(point: p, match: m) { l.datumNote! += "; warning: " + warning }
            }
        } else if let text = Engine.addressText(order.shipping) {
            switch geocode(text) {
            case .success(let (m, note)):
                l.point = m.point
                l.datumNote = note
                l.names = m.names
            case .failure(let why):
                l.reviewNote = why.message
                l.names = why.match?.names
            }
        }
        return .success(l)
    }

    /// Stage 2a, while the in-memory key window is incomplete: a key older than it is only in the database, and so is
    /// a platform order that already became an order under another key. True when `done` was answered here.
    func admitFromDatabase(_ item: IntakeItem, done: @escaping OrderCompletion) -> Bool {
        idempotencyLookups.add(1, ordering: .relaxed)
        do {
            let (stored, holder) = try readers.read { db in
                (
                    try Repository.bodyHash(db, idempotencyKey: item.key),
                    try Repository.order(db, platform: item.order.platform, platformOrderID: item.order.platform_order_id)
                )
            }
            if let stored {
                if stored == item.hash { replay(key: item.key, done: done) } else { done(.failure(.idempotencyConflict)) }
                return true
            }
            if let holder {
                duplicate(item.order, of: holder, fromPlatform: item.fromPlatform, done: done)
                return true
            }
            return false
        } catch {
            done(.failure(.storageUnavailable))
            return true
        }
    }

    /// Stage 2b, under the lock: idempotency (committed and in flight), platform cancellations and duplicates, the
    /// service area. Lets the order through (saying whether it is outside every area, which a platform's order may
    /// be) or says what became of it.
    func admit(
        _ item: IntakeItem, _ location: CustomerLocation, lookedUp: Bool, _ s: inout State, done: @escaping OrderCompletion
    ) -> Admission {
        let key = item.key
        if let h = s.committed[key] {
            return .settled(h == IdempotencyWindow.digest(hex: item.hash) ? .replay : .refused(.idempotencyConflict))
        }
        if let p = s.pending[key] {
            guard p.hash == item.hash else { return .settled(.refused(.idempotencyConflict)) }
            s.pending[key]!.waiters.append(done)
            return .settled(.wait)
        }
        // The window became incomplete since the check above: the key may be an evicted one.
        if !s.committed.complete && !lookedUp { return .settled(.lookUp) }
        if s.cancelledPlatformOrders.contains(item.platformKey) { return .settled(.refused(.platformOrderCancelled)) }
        if let holder = s.pendingPlatform[item.platformKey], holder != key, s.pending[holder] != nil {
            duplicatePlatformOrders.add(1, ordering: .relaxed)
            s.pending[holder]!.waiters.append(done)
            return .settled(.wait)
        }
        if item.checkPlatform, let holder = s.platformOrders[item.platformHash] { return .settled(.duplicateOf(holder)) }
        // Out of every service area: refused now, not discovered later (nothing stored, no id used); a platform's
        // order is recorded as unroutable instead.
        var outOfArea = false
        if let point = location.point, s.router.policy.refuseOutOfArea, !s.index.stores.isEmpty,
            !s.router.serves(point, index: s.index, scratch: s.scratch)
        {
            outOfArea = true
        }
        if outOfArea && !item.fromPlatform {
            let field = item.order.shipping.coordinates != nil ? "shipping.coordinates" : "shipping.text"
            return .settled(.refused(.outsideServiceArea(field: field)))
        }
        return .admitted(outOfArea: outOfArea)
    }

    /// Stage 3, under the lock: an order id, the router's plan, and the stock reserved for it (every part of a split,
    /// or nothing: a reservation that fails after `canFill` said yes routes nowhere rather than oversell).
    func planAndReserve(
        _ item: IntakeItem, _ location: CustomerLocation, outOfArea: Bool, _ s: inout State, now: Double, at: String
    ) -> IntakePlan {
        let (demands, unmapped) = Engine.demands(of: item.order.lines, ledger: s.ledger)
        var plan = IntakePlan(orderID: s.nextOrderID, reserved: demands, policyVersion: s.policyVersion)
        s.nextOrderID += 1
        guard let point = location.point else { return plan }
        let t0 = monotonicSeconds()
        defer { metrics.routing(seconds: monotonicSeconds() - t0) }
        if let unmapped {
            plan.status = .unroutable
            plan.decision = .unroutable(reason: unmapped, reachMetres: s.router.policy.reachMetres)
            return plan
        }
        if outOfArea {
            plan.status = .unroutable
            plan.decision = .unroutable(reason: "outside_service_area", reachMetres: s.router.policy.reachMetres)
            return plan
        }
        let ctx = context(&s, point: point, now: now)
        var d = s.router.plan(
            at: point, lines: demands, index: s.index, ledger: s.ledger, stock: s.stock, context: ctx, scratch: s.scratch)
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
        plan.decision = d
        guard let (firstSlot, firstDemands) = taken.first else {
            plan.status = .unroutable
            return plan
        }
        plan.status = .assigned
        plan.slot = firstSlot
        plan.reserved = firstDemands
        plan.distance = geodesy.distance(from: point, to: s.index.stores[Int(firstSlot)].location)
        plan.assignmentID = s.nextAssignmentID
        s.nextAssignmentID += 1
        countAssignment(&s, slot: firstSlot, now: now)
        for (n, (partSlot, want)) in taken.enumerated().dropFirst() {
            let part = makePart(
                of: item.order, parentID: plan.orderID, number: n, lineIndexes: parts[n].1, slot: partSlot, demands: want,
                point: point, hash: item.hash, at: at, now: now, policyVersion: plan.policyVersion, s: &s)
            plan.children.append(part.record)
            plan.childActive.append(part.active)
            plan.childReserved.append((partSlot, want))
        }
        return plan
    }

    /// Stage 4, under the lock: the order's explanation, its answer (the bytes every replay gets), its events and the
    /// rows to insert.
    func record(
        _ item: IntakeItem, _ location: CustomerLocation, _ plan: IntakePlan, _ s: inout State, facts: OrderFacts, at: String,
        now: Double
    ) -> (NewOrder, answer: String) {
        let store = plan.slot.map { s.index.stores[Int($0)] }
        var explanationJSON = explain(
            decision: plan.decision, datum: location.datumNote, store: store, distance: plan.distance, status: plan.status,
            policyVersion: plan.policyVersion, traceLimit: s.router.policy.traceLimit, review: location.reviewNote)
        if !plan.children.isEmpty {
            explanationJSON = explanationJSON.adding(
                "parts",
                .array(
                    [
                        JSON.object([
                            ("order_id", .int(plan.orderID)), ("store_id", .str(store?.id)), ("assignment_id", .int(plan.assignmentID ?? 0)),
                        ])
                    ]
                        + plan.children.map { c in
                            .object([
                                ("order_id", .int(c.id)), ("store_id", .str(c.storeSlot.map { s.index.stores[Int($0)].id })),
                                ("assignment_id", .int(c.assignmentID ?? 0)),
                            ])
                        }))
        }
        let explanation = explanationJSON.text
        let answer = JSON.object([
            ("order_id", .int(plan.orderID)),
            ("status", .string(plan.status.rawValue)),
            (
                "assignment",
                plan.assignmentID.map { aid in
                    .object([
                        ("assignment_id", .int(aid)), ("store_id", .str(store?.id)), ("store_name", .str(store?.name)),
                        ("distance_m", .num(plan.distance)),
                    ])
                } ?? .null
            ),
            ("explanation", .raw(explanation)),
        ]).text
        let order = item.order
        var events = [NewEvent(at: at, actor: "platform:\(order.platform)", type: "received", from: nil, to: "received", reason: nil)]
        events.append(
            NewEvent(
                at: at, actor: "router", type: plan.status == .address_review ? "address_review" : "routed",
                from: "received", to: plan.status.rawValue,
                reason: plan.decision.map { d in d.storeID ?? d.unroutableReason ?? "" } ?? location.reviewNote ?? "no coordinates and no address"))
        var row = NewOrder(
            id: plan.orderID, idempotencyKey: item.key, bodyHash: item.hash, platform: order.platform,
            platformOrderID: order.platform_order_id, status: plan.status, storeSlot: plan.slot, distanceMetres: plan.distance,
            payload: item.payload, explanation: explanation, response: answer, createdAt: at, lines: order.lines,
            reservations: plan.slot == nil ? [] : plan.reserved, assignmentID: plan.assignmentID, events: events)
        row.policyVersion = plan.decision == nil ? nil : plan.policyVersion
        row.facts = facts
        row.customerPoint = location.point
        row.statusAt = now
        return (row, answer)
    }

    /// Stage 5: registers the order as in flight (its key, its platform order, its active rows), queues its rows on
    /// the single writer, and answers after the commit: every waiter gets the receipt, or `storageUnavailable` with the
    /// reservations given back.
    func commitAndAnswer(
        _ item: IntakeItem, _ plan: IntakePlan, _ row: NewOrder, answer: String, _ s: inout State, now: Double,
        done: @escaping OrderCompletion
    ) {
        let key = item.key
        // A split's other parts: children of this order, at the same point and moment.
        var parts = plan.children
        for i in parts.indices {
            parts[i].customerPoint = row.customerPoint
            parts[i].statusAt = now
            parts[i].parentID = plan.orderID
        }
        s.pending[key] = (item.hash, [done])
        s.pendingPlatform[item.platformKey] = key
        let orderID = plan.orderID
        if plan.status == .assigned {
            s.active[orderID] = ActiveOrderRow(
                id: orderID, status: .assigned, storeSlot: plan.slot, assignmentID: plan.assignmentID, point: row.customerPoint,
                statusAt: now, platform: item.order.platform, platformOrderID: item.order.platform_order_id,
                reserved: plan.reserved, distanceMetres: plan.distance)
        }
        for c in plan.childActive { s.active[c.id] = c }
        let (platformKey, platformHash, hash) = (item.platformKey, item.platformHash, item.hash)
        let (chosenSlot, reserved, partReservations) = (plan.slot, plan.reserved, plan.childReserved)
        let outcomeLabel = plan.status.rawValue
        let committedParts = parts
        let first: [(orderID: Int64, assignmentID: Int64, slot: Int32)] =
            plan.assignmentID.flatMap { aid in plan.slot.map { [(orderID, aid, $0)] } } ?? []
        // Only stores that accept every order (known here, under the lock): most orders carry nothing to do after the
        // commit.
        let assigned = (first + parts.compactMap { p in p.assignmentID.flatMap { aid in p.storeSlot.map { (p.id, aid, $0) } } })
            .filter { s.index.stores[Int($0.slot)].rules.autoAccept }
        writer.submit({ db in
            try Repository.insertOrder(db, row)
            for part in committedParts { try Repository.insertOrder(db, part) }
        }) { [self] result in
            let waiters: [OrderCompletion] = state.withLock { s in
                let w = s.pending.removeValue(forKey: key)?.waiters ?? []
                s.pendingPlatform.removeValue(forKey: platformKey)
                switch result {
                case .success:
                    remember(key, hash: hash, in: &s)
                    s.platformOrders.insert(platformHash, value: orderID)
                    for part in committedParts { remember(part.idempotencyKey, hash: part.bodyHash, in: &s) }
                case .failure:
                    if let chosenSlot { s.ledger.release(store: chosenSlot, lines: reserved) }
                    s.active.removeValue(forKey: orderID)
                    for (ps, pd) in partReservations { s.ledger.release(store: ps, lines: pd) }
                    for part in committedParts { s.active.removeValue(forKey: part.id) }
                }
                return w
            }
            switch result {
            case .success:
                metrics.order(outcome: outcomeLabel)
                // The first request made the order; the same key sent again meanwhile is a replay, and says so.
                for (i, w) in waiters.enumerated() { w(.success(OrderReceipt(orderID: orderID, answer: answer, replay: i > 0))) }
                autoAccept(assigned)
            case .failure(let e):
                log.error("order commit failed", [("order_id", .int(orderID)), ("error", .string("\(e)"))])
                for w in waiters { w(.failure(.storageUnavailable)) }
            }
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

}
