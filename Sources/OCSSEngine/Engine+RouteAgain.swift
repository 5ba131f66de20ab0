import OCSSCore
import OCSSPlatforms
import OCSSStore
import Synchronization

/// What changed that may let unroutable orders be routed now.
package enum RetryCause: Sendable {
    /// Stock arrived (inventory set, a snapshot, deltas) or the policy changed.
    case stock
    /// Stores were added, moved or reopened: orders with no store in reach are worth a try too.
    case stores

    /// The wider of a pending cause and a new one.
    package static func merged(_ pending: RetryCause?, _ new: RetryCause) -> RetryCause { pending == .stores || new == .stores ? .stores : .stock }
}

extension Engine {
    /// Orders at most this old are tried again by themselves; older ones wait for `POST /v1/orders/{id}/route`.
    package static let retryMaxAgeSeconds = 7.0 * 86_400
    /// Orders tried per pass.
    package static let retryBatch = 200
    /// Seconds between two passes at least: stock changes come in streams (a snapshot is dozens of parts, deltas
    /// arrive with every sale), and an order waiting for stock can wait seconds. Once a second, a snapshot under load
    /// retried the same 150 orders 2,217 times in 16 s.
    package static let retryInterval = 10.0

    /// `retryUnroutable()` if stock or stores changed, the last pass is `retryInterval` ago, and no snapshot is
    /// half applied (its stock is in flux until the final part) (the timer's call).
    package func retryUnroutableIfDue() {
        let now = monotonicSeconds()
        let due = state.withLock { s -> Bool in
            guard s.retryCause != nil, s.snapshotSessions.isEmpty, now - s.lastRetryPass >= Engine.retryInterval else { return false }
            s.lastRetryPass = now
            return true
        }
        if due { retryUnroutable() }
    }

    /// Notes that stock or stores changed; the next timer tick tries unroutable orders again.
    package func noteRoutingChange(_ cause: RetryCause) {
        state.withLock { s in s.retryCause = RetryCause.merged(s.retryCause, cause) }
    }

    /// One pass over the unroutable queue after a change (called from the timer): up to `retryBatch` orders from
    /// where the last pass stopped, oldest first, at most `retryMaxAgeSeconds` old, each routed as
    /// `POST /v1/orders/{id}/route` would, as `system:restock`. Orders with no store in reach are tried only after
    /// a change to the stores. Returns how many were tried.
    @discardableResult
    package func retryUnroutable() -> Int {
        guard
            let (cause, cursor) = state.withLock({ s -> (RetryCause, Int64)? in
                guard let c = s.retryCause else { return nil }
                s.retryCause = nil
                return (c, s.retryCursor)
            })
        else { return 0 }
        let rows: [Repository.OrderSummary]
        do {
            rows = try readers.read {
                try Repository.orders($0, status: OrderStatus.unroutable.rawValue, platform: nil, after: cursor, limit: Engine.retryBatch)
            }
        } catch {
            noteRoutingChange(cause)
            return 0
        }
        let full = rows.count == Engine.retryBatch
        state.withLock { s in
            s.retryCursor = full ? rows.last?.id ?? 0 : 0
            // The rest of the queue still waits for this change.
            if full { s.retryCause = RetryCause.merged(s.retryCause, cause) }
        }
        let oldest = rfc3339(clock.now() - Engine.retryMaxAgeSeconds)
        var tried = 0
        // A coverage gap (no store in reach, outside every service area) closes only when stores or policy change.
        let coverageGap: Set<String?> = ["no_store_in_reach", "outside_service_area"]
        for o in rows where o.createdAt >= oldest && (cause == .stores || !coverageGap.contains(o.unroutableReason)) {
            tried += 1
            routeAgain(orderID: o.id, actor: "system:restock") { [metrics] in metrics.unroutableRetry(result: $0.retryResult) }
        }
        return tried
    }

    /// What routing an unroutable order again came to: the engine's own answer, which the HTTP route and the retry
    /// pass each turn into what they need (a response, a metric) without reading one another's.
    package enum RouteAgainOutcome: Sendable {
        /// Assigned: the order's state with its new explanation (JSON text).
        case routed(state: String)
        /// Still no store can take it; nothing was written. The new explanation.
        case stillUnroutable(summary: String, explanation: JSON)
        case notFound
        /// Not unroutable (its current status), or being routed or cancelled by a concurrent request.
        case illegalTransition(status: String, message: String)
        case noCustomerPoint(status: String)
        case unreadableOrder
        case storageUnavailable
    }

    /// Routes an `unroutable` order again, after stock arrived or a store reopened: from the point it was routed from,
    /// never to a store that rejected it. One transaction records the request, the reservation, the assignment and the
    /// new explanation, and the store's feed is woken. When still no store can take it, nothing is written, so asking
    /// again costs nothing and counts nothing.
    package func routeAgain(orderID: Int64, actor: String, done: @escaping @Sendable (RouteAgainOutcome) -> Void) {
        let read: (OrderRecord?, (point: GeoPoint?, rejectedBy: Set<Int32>, everAssigned: Bool))
        do {
            read = try readers.read { db in (try Repository.order(db, id: orderID), try Repository.routingInputs(db, id: orderID)) }
        } catch {
            return done(.storageUnavailable)
        }
        guard let rec = read.0 else { return done(.notFound) }
        guard rec.status == OrderStatus.unroutable.rawValue else {
            return done(
                .illegalTransition(
                    status: rec.status,
                    message: "only an unroutable order is routed again (an order in address_review takes an address correction)"))
        }
        guard let point = read.1.point else { return done(.noCustomerPoint(status: rec.status)) }
        guard let order = try? JSONCoding.decode(CanonicalOrder.self, Array(rec.payload.utf8)) else { return done(.unreadableOrder) }
        let (rejectedBy, everAssigned) = (read.1.rejectedBy, read.1.everAssigned)
        let now = clock.now()
        let at = rfc3339(now)
        enum Decision { case answer(RouteAgainOutcome); case commit(Effects) }
        let decision: Decision = state.withLock { s -> Decision in
            // Cancelled (or being corrected) since the read, already routed by a concurrent request, or being routed now.
            guard s.active[orderID] == nil, !s.cancelledInactive.contains(orderID), s.routingAgain.insert(orderID).inserted else {
                return .answer(.illegalTransition(status: rec.status, message: "order \(orderID) is being routed or was cancelled meanwhile"))
            }
            let (demands, decision) = planAgain(order.lines, from: point, excluded: rejectedBy, now: now, s: &s)
            let note = "routed again at the request of \(actor)"
            var o = ActiveOrderRow(
                id: orderID, status: .unroutable, storeSlot: nil, assignmentID: nil, point: point, statusAt: now,
                platform: order.platform, platformOrderID: order.platform_order_id, reserved: [], rejectedBy: rejectedBy,
                distanceMetres: nil)
            var fx = Effects()
            guard let next = decision.storeSlot, assign(&o, to: next, demands: demands, point: point, now: now, s: &s, fx: &fx) else {
                s.routingAgain.remove(orderID)
                let explanation = explain(
                    decision: decision, datum: note, store: nil, distance: nil, status: .unroutable,
                    policyVersion: s.policyVersion, traceLimit: s.router.policy.traceLimit)
                return .answer(.stillUnroutable(summary: decision.summary, explanation: explanation))
            }
            // No status in the request's own event: analytics count every event that ends in unroutable.
            fx.jobs.insert(
                { db in
                    try Repository.insertEvent(
                        db, orderID: orderID,
                        NewEvent(
                            at: at, actor: actor, type: "route_requested",
                            from: "unroutable", to: nil, reason: nil))
                }, at: 0)
            let store = s.index.stores[Int(next)]
            if !everAssigned {
                // Never held by a store: it joins the routed orders and that store's sales, as a corrected address does.
                let dist = o.distanceMetres ?? 0
                fx.jobs.append { db in try Rollups.routedAfterReview(db, orderID: orderID, slot: next, distance: dist) }
            }
            move(&o, to: .assigned, actor: .system("router"), reason: decision.storeID, now: now, s: &s, fx: &fx)
            s.active[orderID] = o
            recordRouting(of: o, decision: decision, datum: note, store: store, s: &s, fx: &fx)
            return .commit(fx)
        }
        switch decision {
        case .answer(let outcome): done(outcome)
        case .commit(let fx):
            commit(fx) { [self] result in
                _ = state.withLock { $0.routingAgain.remove(orderID) }
                switch result {
                case .success(let stateJSON): done(.routed(state: stateJSON))
                case .failure: done(.storageUnavailable)
                }
            }
        }
    }
}

extension Engine.RouteAgainOutcome {
    /// What a retry pass counts it as.
    package var retryResult: String {
        switch self {
        case .routed: "routed"
        case .stillUnroutable: "still_unroutable"
        default: "skipped"
        }
    }
}
