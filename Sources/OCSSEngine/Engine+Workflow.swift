import Dispatch
package import OCSSCore
import OCSSPlatforms
import OCSSProj
package import OCSSStore
import Synchronization

/// Parameters of a store action.
package struct ActionInput: Sendable {
    package var reason: RejectReason?
    /// For out_of_stock rejections: the SKUs the store lacks (all reserved SKUs when empty).
    package var missingSKUs: [String] = []
    package var carrier: String?
    package var trackingNumber: String?
    package var note: String?
    /// Reject only the lines of `missingSKUs`; the rest stays with the store (a split).
    package var partial = false
    /// The order's canonical payload, for building the split-off part.
    package var payload: String?

    package init(
        reason: RejectReason? = nil, missingSKUs: [String] = [], carrier: String? = nil, trackingNumber: String? = nil, note: String? = nil,
        partial: Bool = false, payload: String? = nil
    ) {
        self.reason = reason
        self.missingSKUs = missingSKUs
        self.carrier = carrier
        self.trackingNumber = trackingNumber
        self.note = note
        self.partial = partial
        self.payload = payload
    }
}

/// Who acts.
package enum Actor: Sendable {
    case store(Int32)
    case admin
    case system(String)

    package var name: String {
        switch self {
        case .store(let s): "store:\(s)"
        case .admin: "admin"
        case .system(let w): "system:\(w)"
        }
    }
}

/// Store workflow: the state machine applied to in-memory active orders, with every change, its
/// event rows and outbox rows written in one transaction before anyone hears about it.
/// What a workflow action (a store's accept, reject, pick, pack, ship, deliver; a cancellation) completes with: the
/// engine's own words, which `App` maps to HTTP in one place (`ActionOutcome.response`).
package enum ActionOutcome: Sendable, Equatable {
    /// Done, or a repeat of what was done: the order's state (JSON text).
    case done(String)
    case refused(ActionRefusal)
}

package enum ActionRefusal: Error, Sendable, Equatable {
    case orderNotFound(Int64)
    /// Not possible from where the order is (its current status).
    case illegalTransition(orderID: Int64, status: String, message: String)
    /// A store acting on another store's order.
    case forbidden
    case invalidField(field: String, message: String)
    /// An address correction the gazetteer cannot place, with the places it might mean.
    case addressUnresolved(message: String, candidates: [AddressCandidate])
    /// The stored order could not be read back.
    case unreadableOrder
    /// Not stored; safe to repeat.
    case storageUnavailable
}

/// A place an unresolved address might mean: its administrative code and its name.
package struct AddressCandidate: Sendable, Equatable {
    package var adcode: String
    package var place: String
}

package typealias ActionCompletion = @Sendable (ActionOutcome) -> Void

extension Engine {
    /// The work one decision produces: DB writes, stores to wake, what to answer.
    package struct Effects: Sendable {
        var jobs: [@Sendable (Connection) throws -> Void] = []
        var outcome: String = ""
        /// Assignments these writes make (a reroute's): stores that accept every order accept them once committed.
        var assigned: [(orderID: Int64, assignmentID: Int64, slot: Int32)] = []
    }

    /// Applies `action` to order `orderID` (through assignment `assignmentID` when a store acts).
    package func act(orderID: Int64, assignmentID: Int64?, action: OrderAction, actor: Actor, input: ActionInput, done: @escaping ActionCompletion) {
        let now = clock.now()
        enum Decision { case answer(ActionOutcome); case commit(Effects); case cancelInactive }
        let decision: Decision = state.withLock { s -> Decision in
            guard var o = s.active[orderID] else {
                return action == .cancel ? .cancelInactive : .answer(inactive(orderID: orderID, action: action))
            }
            if let assignmentID, assignmentID != o.assignmentID {
                return .answer(conflict(o, "assignment \(assignmentID) is no longer current for order \(orderID)"))
            }
            if case .store(let slot) = actor, o.storeSlot != slot { return .answer(.refused(.forbidden)) }
            if OrderStateMachine.isRepeat(of: action, at: o.status) {
                if action == .ship, let t = input.trackingNumber, t != o.trackingNumber {
                    return .answer(conflict(o, "already shipped with another tracking number"))
                }
                return .answer(.done(orderState(o, s: s).text))
            }
            guard OrderStateMachine.target(of: action, from: o.status) != nil else {
                return .answer(conflict(o, "cannot \(action.rawValue) an order that is \(o.status.rawValue)"))
            }
            var fx = Effects()
            var split: JSON?
            switch action {
            case .reject:
                let named = Set(input.missingSKUs.compactMap { s.ledger.index(of: $0) })
                let moving = o.reserved.filter { named.contains($0.sku) }
                if input.partial {
                    guard !moving.isEmpty, moving.count < o.reserved.count, let payload = input.payload,
                        let parent = try? JSONCoding.decode(CanonicalOrder.self, Array(payload.utf8))
                    else {
                        return .answer(
                            .refused(.invalidField(field: "skus", message: "a partial rejection names some, not all, of the order's SKUs")))
                    }
                    split = splitOff(
                        &o, moving: moving, parent: parent, reason: input.reason ?? .out_of_stock, note: input.note,
                        actor: actor, now: now, s: &s, fx: &fx)
                } else {
                    reject(&o, reason: input.reason ?? .other, missing: input.missingSKUs, note: input.note, actor: actor, now: now, s: &s, fx: &fx)
                }
            case .cancel:
                finish(&o, to: .cancelled, actor: actor, reason: input.note, now: now, s: &s, fx: &fx)
            case .deliver:
                finish(&o, to: .delivered, actor: actor, reason: nil, now: now, s: &s, fx: &fx)
            case .ship:
                guard let carrier = input.carrier, let number = input.trackingNumber else {
                    return .answer(.refused(.invalidField(field: "tracking_number", message: "ship needs carrier and tracking_number")))
                }
                s.ledger.consume(store: o.storeSlot ?? -1, lines: o.reserved)
                o.carrier = carrier
                o.trackingNumber = number
                let id = o.id
                fx.jobs.append { db in
                    try Repository.releaseReservations(db, orderID: id, consume: true)
                    try Repository.setTracking(db, id: id, carrier: carrier, trackingNumber: number)
                }
                o.reserved = []
                move(&o, to: .shipped, actor: actor, reason: "\(carrier) \(number)", now: now, s: &s, fx: &fx)
            case .accept:
                let shipBy = now + s.sla(for: o.storeSlot).shipSeconds
                o.shipBy = shipBy
                let id = o.id
                fx.jobs.append { db in try Repository.setShipBy(db, id: id, shipBy: shipBy) }
                move(&o, to: .accepted, actor: actor, reason: nil, now: now, s: &s, fx: &fx)
            case .pick:
                move(&o, to: .picking, actor: actor, reason: nil, now: now, s: &s, fx: &fx)
            case .pack:
                move(&o, to: .packed, actor: actor, reason: nil, now: now, s: &s, fx: &fx)
            case .ready:
                move(&o, to: .ready, actor: actor, reason: nil, now: now, s: &s, fx: &fx)
            case .hand_over, .pickup:
                leaveStore(&o, to: action == .pickup ? .picked_up : .handed_over, actor: actor, now: now, s: &s, fx: &fx)
            }
            if [.delivered, .cancelled, .unroutable, .picked_up].contains(o.status) {
                s.active.removeValue(forKey: orderID)
            } else {
                s.active[orderID] = o
            }
            var outcome = orderState(o, s: s)
            if let split, case .object(let fields) = outcome { outcome = .object(fields + [("split", split)]) }
            fx.outcome = outcome.text
            return .commit(fx)
        }
        switch decision {
        case .answer(let outcome): done(outcome)
        case .commit(let fx): commit(fx, then: done)
        case .cancelInactive: cancelInactive(orderID: orderID, actor: actor, note: input.note, now: now, done: done)
        }
    }

    /// The platform cancelled (or refunded) one of its orders: every order it became is cancelled, the parts split off
    /// it included, with one answer. One still being committed is cancelled once it is. One ocss has not received is
    /// recorded (`platform_cancellations`), so a routed event for it arriving later (a retry after an outage, an
    /// out-of-order delivery) is refused instead of routed.
    /// `lookedAgain`: the committed window said the order exists but the database read did not find it; a second
    /// such answer is a hash that matched another platform order, and the cancellation is recorded.
    package func cancelPlatformOrder(
        platform: String, platformOrderID: String, event: String, lookedAgain: Bool = false,
        done: @escaping ActionCompletion
    ) {
        let found: [Int64]
        do { found = try readers.read { try Repository.orders($0, platform: platform, platformOrderID: platformOrderID) } } catch {
            return done(.refused(.storageUnavailable))
        }
        let actor = Actor.system("platform:\(platform)")
        if !found.isEmpty {
            let all = AllOutcomes(count: found.count, then: done)
            for id in found { act(orderID: id, assignmentID: nil, action: .cancel, actor: actor, input: ActionInput(note: event), done: all.add) }
            return
        }
        let key = Engine.platformKey(platform, platformOrderID)
        enum Decision { case waiting, again, record }
        let decision: Decision = state.withLock { s -> Decision in
            if let holder = s.pendingPlatform[key], s.pending[holder] != nil {
                // Once that order is settled (committed or not), cancel it as if it had been there all along.
                s.pending[holder]!.waiters.append { [self] _ in
                    cancelPlatformOrder(platform: platform, platformOrderID: platformOrderID, event: event, done: done)
                }
                return .waiting
            }
            // Committed since the read above: read again (once).
            if !lookedAgain, s.platformOrders[Engine.platformHash(platform, platformOrderID)] != nil { return .again }
            s.cancelledPlatformOrders.insert(key)
            return .record
        }
        switch decision {
        case .waiting: break
        case .again: cancelPlatformOrder(platform: platform, platformOrderID: platformOrderID, event: event, lookedAgain: true, done: done)
        case .record:
            let at = rfc3339(clock.now())
            writer.submit({ db in
                try Repository.insertPlatformCancellation(db, platform: platform, platformOrderID: platformOrderID, event: event, at: at)
            }) { [self] result in
                switch result {
                case .success:
                    log.info(
                        "platform cancelled an order ocss has not received: a routed event for it will be refused",
                        [
                            ("platform", .string(platform)), ("platform_order_id", .string(platformOrderID)), ("event", .string(event)),
                        ])
                    done(
                        .done(
                            JSON.object([
                                ("platform", .string(platform)), ("platform_order_id", .string(platformOrderID)),
                                ("status", .string("cancelled_before_received")),
                            ]).text))
                case .failure:
                    _ = state.withLock { $0.cancelledPlatformOrders.remove(key) }
                    done(.refused(.storageUnavailable))
                }
            }
        }
    }

    /// Whether the platform cancelled this order of its own before ocss received it.
    package func cancelledBeforeReceipt(platform: String, platformOrderID: String) -> Bool {
        state.withLock { $0.cancelledPlatformOrders.contains(Engine.platformKey(platform, platformOrderID)) }
    }

    /// Cancels an order that holds no stock (waiting for address review, unroutable), or answers 404/409. The order
    /// is recorded in `cancelledInactive`, so an address correction or a retry arriving later is refused; one already
    /// under way either routed it (then it is cancelled as an active order) or commits before this cancellation.
    private func cancelInactive(orderID: Int64, actor: Actor, note: String?, now: Double, done: @escaping ActionCompletion) {
        let rec: OrderRecord?
        do { rec = try readers.read { try Repository.order($0, id: orderID) } } catch {
            return done(.refused(.storageUnavailable))
        }
        guard let rec else { return done(.refused(.orderNotFound(orderID))) }
        let status = OrderStatus(rawValue: rec.status) ?? .received
        guard OrderStateMachine.target(of: .cancel, from: status) != nil, !OrderStateMachine.holdsReservation(status) else {
            return done(inactive(orderID: orderID, status: status, action: .cancel))
        }
        enum Decision { case commit(Effects); case active }
        let decision: Decision = state.withLock { s -> Decision in
            if s.active[orderID] != nil { return .active }
            s.cancelledInactive.insert(orderID)
            var o = ActiveOrderRow(
                id: orderID, status: status, storeSlot: nil, assignmentID: nil, point: nil, statusAt: now,
                platform: rec.platform, platformOrderID: rec.platformOrderID, reserved: [], distanceMetres: nil)
            var fx = Effects()
            move(&o, to: .cancelled, actor: actor, reason: note, now: now, s: &s, fx: &fx)
            fx.outcome = orderState(o, s: s).text
            return .commit(fx)
        }
        switch decision {
        case .active: act(orderID: orderID, assignmentID: nil, action: .cancel, actor: actor, input: ActionInput(note: note), done: done)
        case .commit(let fx): commit(fx, then: done)
        }
    }

    /// Answers an action on an order that is not active: 200 when it repeats the one that got the order there,
    /// else 409 (404 for no such order).
    private func inactive(orderID: Int64, action: OrderAction) -> ActionOutcome {
        guard let rec = try? readers.read({ try Repository.order($0, id: orderID) }) else { return .refused(.orderNotFound(orderID)) }
        return inactive(orderID: orderID, status: OrderStatus(rawValue: rec.status) ?? .received, action: action)
    }

    /// The same for an order whose stored status is known.
    private func inactive(orderID: Int64, status: OrderStatus, action: OrderAction) -> ActionOutcome {
        if OrderStateMachine.isRepeat(of: action, at: status) {
            return .done(JSON.object([("order_id", .int(orderID)), ("status", .string(status.rawValue))]).text)
        }
        return .refused(
            .illegalTransition(orderID: orderID, status: status.rawValue, message: "cannot \(action.rawValue) an order that is \(status.rawValue)"))
    }

    private func conflict(_ o: ActiveOrderRow, _ message: String) -> ActionOutcome {
        .refused(.illegalTransition(orderID: o.id, status: o.status.rawValue, message: message))
    }

    /// Commits `fx` and completes with the order's state, or `storageUnavailable`.
    package func commit(_ fx: Effects, then done: @escaping ActionCompletion) {
        commit(fx) { result in
            switch result {
            case .success(let state): done(.done(state))
            case .failure: done(.refused(.storageUnavailable))
            }
        }
    }

    /// Commits `fx`'s writes in one transaction; `done` gets its outcome text, or the storage error (memory is then
    /// reloaded from the file).
    package func commit(_ fx: Effects, done: @escaping @Sendable (Result<String, any Error>) -> Void) {
        let jobs = fx.jobs, outcome = fx.outcome
        writer.submit({ db in for j in jobs { try j(db) } }) { [self] r in
            switch r {
            case .success:
                done(.success(outcome))
                wakeOutbox()
                autoAccept(fx.assigned)
            case .failure(let e):
                log.error("workflow commit failed; reloading state", [("error", .string("\(e)"))])
                try? reload()
                done(.failure(e))
            }
        }
    }

    /// A plain state change with its event (and outbox row when the customer sees it).
    package func move(_ o: inout ActiveOrderRow, to next: OrderStatus, actor: Actor, reason: String?, now: Double, s: inout State, fx: inout Effects)
    {
        let from = o.status
        o.status = next
        o.statusAt = now
        let (id, slot, aid, dist) = (o.id, o.storeSlot, o.assignmentID, o.storeSlot == nil ? nil : o.distanceMetres)
        let event = NewEvent(at: rfc3339(now), actor: actor.name, type: next.rawValue, from: from.rawValue, to: next.rawValue, reason: reason)
        let outbox = OrderStateMachine.isCustomerVisible(next) ? outboxPayload(o, s: s, now: now) : nil
        var targets = ["webhook"]
        // A change the platform made itself (its cancellation) is not sent back to it: cancelling an order it already
        // cancelled is refused, and the message would be retried eight times and parked as dead.
        let fromPlatform = actor.name.hasPrefix("system:platform:" + o.platform)
        if s.platformTargets.contains(o.platform) && StatusCalls.hasCall(platform: o.platform, event: next.rawValue) && !fromPlatform {
            targets.append(o.platform)
        }
        let sendTo = targets
        fx.jobs.append { db in
            try Repository.setOrderState(db, id: id, status: next, at: now, storeSlot: slot, assignmentID: aid, distanceMetres: dist)
            if let aid { try Repository.setAssignmentStatus(db, id: aid, status: next.rawValue, reason: reason) }
            try Repository.insertEvent(db, orderID: id, event)
            if let outbox {
                for target in sendTo {
                    try Repository.insertOutbox(db, orderID: id, event: next.rawValue, target: target, payload: outbox, at: event.at, due: now)
                }
            }
        }
    }

    /// Delivered or cancelled: releases what is still reserved and leaves the active set.
    package func finish(
        _ o: inout ActiveOrderRow, to next: OrderStatus, actor: Actor, reason: String?, now: Double, s: inout State, fx: inout Effects
    ) {
        settleReservation(&o, consume: false, s: &s, fx: &fx)
        move(&o, to: next, actor: actor, reason: reason, now: now, s: &s, fx: &fx)
    }

    /// Ends the order's reservation: given back to the shelf, or (`consume`) turned into a sale: the goods left.
    func settleReservation(_ o: inout ActiveOrderRow, consume: Bool, s: inout State, fx: inout Effects) {
        guard let slot = o.storeSlot, !o.reserved.isEmpty else { return }
        if consume { s.ledger.consume(store: slot, lines: o.reserved) } else { s.ledger.release(store: slot, lines: o.reserved) }
        let id = o.id
        fx.jobs.append { db in try Repository.releaseReservations(db, orderID: id, consume: consume) }
        o.reserved = []
    }

    /// A store gives the order back: release its stock, maybe mark SKUs unavailable there, and
    /// route again excluding every store that rejected it.
    package func reject(
        _ o: inout ActiveOrderRow, reason: RejectReason, missing: [String], note: String?, actor: Actor, now: Double,
        s: inout State, fx: inout Effects
    ) {
        guard let slot = o.storeSlot else { return }
        let id = o.id, oldAssignment = o.assignmentID
        let demands = o.reserved
        s.ledger.release(store: slot, lines: demands)
        var zeroed: [SKUIndex] = []
        if reason == .out_of_stock {
            let named = missing.compactMap { s.ledger.index(of: $0) }
            zeroed = named.isEmpty ? demands.map(\.sku) : named
            for k in zeroed {
                let reserved = s.ledger.row(store: slot, sku: k)?.reserved ?? 0
                s.ledger.setOnHand(store: slot, sku: k, quantity: reserved)
            }
        }
        o.rejectedBy.insert(slot)
        let from = o.status
        let why = reason.rawValue + (note.map { ": \($0)" } ?? "")
        let at = rfc3339(now)
        let unavailable = zeroed
        fx.jobs.append { db in
            try Repository.releaseReservations(db, orderID: id, consume: false)
            for k in unavailable { try Repository.zeroAvailability(db, slot: slot, sku: k) }
            if let oldAssignment { try Repository.setAssignmentStatus(db, id: oldAssignment, status: "rejected", reason: why) }
            try Repository.insertEvent(
                db, orderID: id, NewEvent(at: at, actor: actor.name, type: "rejected", from: from.rawValue, to: "rejected", reason: why))
        }
        // Route again.
        guard let point = o.point else {
            o.storeSlot = nil
            o.assignmentID = nil
            o.reserved = []
            move(&o, to: .unroutable, actor: .system("router"), reason: "no customer point to reroute from", now: now, s: &s, fx: &fx)
            return
        }
        let ctx = context(&s, point: point, now: now)
        let d = s.router.plan(
            at: point, lines: demands, index: s.index, ledger: s.ledger, stock: s.stock, excluded: o.rejectedBy,
            allowSplit: false, context: ctx, scratch: s.scratch)
        let datum = "the order's point, routed again after \(s.index.stores[Int(slot)].id) gave it back (\(reason.rawValue))"
        if let next = d.storeSlot, assign(&o, to: next, demands: demands, point: point, now: now, s: &s, fx: &fx) {
            o.status = .rejected
            move(&o, to: .assigned, actor: .system("router"), reason: d.storeID, now: now, s: &s, fx: &fx)
            recordExplanation(of: o, decision: d, datum: datum, store: s.index.stores[Int(next)], s: &s, fx: &fx)
        } else {
            o.storeSlot = nil
            o.assignmentID = nil
            o.reserved = []
            o.status = .rejected
            var d = d
            if d.storeSlot != nil { d.reservationFailed() }  // the plan's store could not reserve after all
            move(&o, to: .unroutable, actor: .system("router"), reason: d.unroutableReason ?? "no_store_in_reach", now: now, s: &s, fx: &fx)
            recordExplanation(of: o, decision: d, datum: datum, store: nil, s: &s, fx: &fx)
        }
    }

    /// Reserves `demands` at `next` for an existing order and gives it a new assignment (written by `fx`, the store
    /// woken after the commit). False, changing nothing, when the stock is no longer there.
    package func assign(
        _ o: inout ActiveOrderRow, to next: Int32, demands: [Demand], point: GeoPoint, now: Double,
        s: inout State, fx: inout Effects
    ) -> Bool {
        guard (try? s.ledger.reserve(store: next, lines: demands)) != nil else { return false }
        countAssignment(&s, slot: next, now: now)
        let aid = s.nextAssignmentID
        s.nextAssignmentID += 1
        let dist = geodesy.distance(from: point, to: s.index.stores[Int(next)].location)
        o.storeSlot = next
        o.assignmentID = aid
        o.reserved = demands
        o.shipBy = nil
        o.distanceMetres = dist
        let id = o.id, at = rfc3339(now)
        fx.assigned.append((id, aid, next))
        fx.jobs.append { db in
            try Repository.reserve(db, orderID: id, slot: next, lines: demands)
            try Repository.insertAssignment(db, id: aid, orderID: id, slot: next, distanceMetres: dist, at: at)
        }
        return true
    }

    package func outboxPayload(_ o: ActiveOrderRow, s: borrowing State, now: Double) -> String {
        let store = o.storeSlot.map { s.index.stores[Int($0)] }
        return JSON.object([
            ("event_id", .string("ocss-\(o.id)-\(o.status.rawValue)")),
            ("event", .string(o.status.rawValue)),
            ("at_epoch", .double(now)),
            ("order_id", .int(o.id)),
            ("platform", .string(o.platform)),
            ("platform_order_id", .string(o.platformOrderID)),
            ("status", .string(o.status.rawValue)),
            ("store_id", .str(store?.id)),
            ("carrier", .str(o.carrier)),
            ("tracking_number", .str(o.trackingNumber)),
            ("at", .string(rfc3339(now))),
        ]).text
    }

    package func orderState(_ o: ActiveOrderRow, s: borrowing State) -> JSON {
        let store = o.storeSlot.map { s.index.stores[Int($0)] }
        return .object([
            ("order_id", .int(o.id)),
            ("status", .string(o.status.rawValue)),
            (
                "assignment",
                o.assignmentID.map { aid in
                    .object([("assignment_id", .int(aid)), ("store_id", .str(store?.id)), ("distance_m", .num(o.distanceMetres))])
                } ?? .null
            ),
            ("tracking", o.trackingNumber.map { .object([("carrier", .str(o.carrier)), ("number", .string($0))]) } ?? .null),
        ])
    }
}

/// One outcome for several actions (a platform cancellation of an order and its parts): once all have completed, the
/// first refusal a retry could fix (not stored) if any, else the first outcome (the order's own).
package final class AllOutcomes: Sendable {
    private let state: Mutex<(remaining: Int, first: ActionOutcome?, failure: ActionOutcome?)>
    private let then: ActionCompletion

    package init(count: Int, then: @escaping ActionCompletion) {
        state = Mutex((count, nil, nil))
        self.then = then
    }

    package func add(_ outcome: ActionOutcome) {
        let done: ActionOutcome? = state.withLock { s in
            if s.first == nil { s.first = outcome }
            if outcome == .refused(.storageUnavailable) && s.failure == nil { s.failure = outcome }
            s.remaining -= 1
            return s.remaining == 0 ? s.failure ?? s.first : nil
        }
        if let done { then(done) }
    }
}
