package import OCSSCore
import OCSSPlatforms
import OCSSProj
package import OCSSStore
import Synchronization

/// Addresses: geocoding at intake, the check of platform coordinates against the address, and the admin
/// correction that routes an order waiting in `address_review`.
extension Engine {
    /// How far (km) platform coordinates may lie from the seat of the county their address names before the
    /// order records a warning. Counties in the west are hundreds of kilometres across; eastern ones tens.
    package static let mismatchKilometres = 80.0

    package struct GeocodeFailure: Error {
        let message: String
        let match: GeoMatch?
    }

    /// The best single string to geocode: `text`, else the structured parts joined.
    package static func addressText(_ s: CanonicalOrder.Shipping) -> String? {
        if let t = s.text, !t.allSatisfy(\.isWhitespace) { return t }
        let parts = [s.province, s.city, s.district, s.town, s.detail].compactMap { $0 }.filter { !$0.isEmpty }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }

    /// A routable point for `text`, or why not. Never logs the text.
    package func geocode(_ text: String) -> Result<(GeoMatch, String), GeocodeFailure> {
        switch geocoder.resolve(text) {
        case .match(let m) where m.routable:
            metrics.geocode(result: "routable")
            let conf = Int((m.confidence * 100).rounded())
            return .success(
                (
                    m,
                    "geocoded \(m.level.rawValue) \(m.adcode) (\(Engine.place(m.names))), confidence \(conf)%, point at the \(m.pointLevel.rawValue) seat"
                ))
        case .match(let m):
            metrics.geocode(result: "review")
            let conf = Int((m.confidence * 100).rounded())
            var why = "the address resolves only to \(m.level.rawValue) \(m.adcode) (\(Engine.place(m.names))), confidence \(conf)%"
            if !m.alternatives.isEmpty {
                why =
                    "the address fits several places: " + ([m.adcode] + m.alternatives.map(\.adcode)).joined(separator: ", ")
                    + "; it does not say which"
            }
            return .failure(GeocodeFailure(message: why, match: m))
        case .miss(let why):
            metrics.geocode(result: "miss")
            return .failure(
                GeocodeFailure(
                    message: why == .foreignCountry ? "the address is outside China" : "the address names no place in China",
                    match: nil))
        }
    }

    package static func place(_ n: GeoNames) -> String {
        var parts: [String] = []
        for p in [n.province, n.city, n.district, n.town] { if let p, parts.last != p { parts.append(p) } }
        return parts.joined()
    }

    /// A warning when the platform's coordinates lie far from the county the address names (nil when they
    /// agree, or when the address does not resolve to a county).
    package func addressDisagreement(point: GeoPoint, shipping: CanonicalOrder.Shipping) -> String? {
        guard let text = Engine.addressText(shipping), let m = geocoder.geocode(text) else { return nil }
        return addressDisagreement(point: point, match: m)
    }

    package func addressDisagreement(point: GeoPoint, match m: GeoMatch) -> String? {
        guard m.routable else { return nil }
        let km = geodesy.distance(from: point, to: m.point) / 1000
        guard km > Engine.mismatchKilometres else { return nil }
        metrics.geocode(result: "mismatch")
        return "the coordinates lie \(Int(km.rounded())) km from \(m.adcode) (\(Engine.place(m.names))), which the address names"
    }

    /// The order's lines as ledger demands, or why they cannot be routed (a line without a merchant SKU, a SKU no
    /// store lists).
    package static func demands(of lines: [CanonicalOrder.Line], ledger: InventoryLedger) -> ([Demand], unmapped: String?) {
        var demands: [Demand] = []
        for (i, line) in lines.enumerated() {
            guard let sku = line.sku else { return (demands, "lines[\(i)] has no merchant sku") }
            guard let k = ledger.index(of: sku) else { return (demands, "sku_not_stocked:\(sku)") }
            demands.append(Demand(sku: k, quantity: Int32(line.quantity)))
        }
        return (demands, nil)
    }

    /// What an admin sends to correct an order's address.
    package struct AddressFix: Sendable {
        var text: String?
        var coordinates: CanonicalOrder.Coordinates?
        var actor = "admin"

        package init(text: String?, coordinates: CanonicalOrder.Coordinates?, actor: String = "admin") {
            self.text = text
            self.coordinates = coordinates
            self.actor = actor
        }
    }

    /// Where an existing order goes now, whole (no split): its demands and the decision from `point`, never to a
    /// store in `excluded`; unroutable, without searching, for a line no location lists. For an address correction and
    /// a retry of an unroutable order.
    package func planAgain(
        _ lines: [CanonicalOrder.Line], from point: GeoPoint, excluded: Set<Int32> = [], now: Double,
        s: inout State
    ) -> (demands: [Demand], decision: RoutingDecision) {
        let (demands, unmapped) = Engine.demands(of: lines, ledger: s.ledger)
        if let unmapped { return (demands, .unroutable(reason: unmapped, reachMetres: s.router.policy.reachMetres)) }
        let ctx = context(&s, point: point, now: now)
        return (
            demands,
            s.router.plan(
                at: point, lines: demands, index: s.index, ledger: s.ledger, stock: s.stock, excluded: excluded,
                allowSplit: false, context: ctx, scratch: s.scratch)
        )
    }

    /// Makes `decision` the order's explanation (written by `fx`) and the answer the order's state with it: the end of
    /// routing an order again (an address correction, a retry of an unroutable order).
    package func recordRouting(of o: ActiveOrderRow, decision: RoutingDecision, datum: String, store: Store?, s: inout State, fx: inout Effects) {
        let explanation = recordExplanation(of: o, decision: decision, datum: datum, store: store, s: &s, fx: &fx)
        fx.outcome = orderState(o, s: s).adding("explanation", .raw(explanation)).text
    }

    /// Makes `decision` the order's explanation (written by `fx`), so that what the order says about its routing (the
    /// queue's summary and `unroutable_reason`) is always its latest decision; the explanation's text.
    @discardableResult
    package func recordExplanation(
        of o: ActiveOrderRow, decision: RoutingDecision, datum: String, store: Store?, s: inout State, fx: inout Effects
    ) -> String {
        let (orderID, policyVersion) = (o.id, s.policyVersion)
        let explanation = explain(
            decision: decision, datum: datum, store: store, distance: o.distanceMetres, status: o.status,
            policyVersion: policyVersion, traceLimit: s.router.policy.traceLimit
        ).text
        fx.jobs.append { db in try Repository.setExplanation(db, id: orderID, explanation: explanation, policyVersion: policyVersion) }
        return explanation
    }

    /// Routes an order waiting in `address_review` from a corrected address or coordinates: one transaction
    /// records the correction, the reservation, the assignment and the events; the store's feed is woken.
    package func correctAddress(orderID: Int64, fix: AddressFix, done: @escaping ActionCompletion) {
        let rec: OrderRecord?
        do { rec = try readers.read { try Repository.order($0, id: orderID) } } catch {
            return done(.refused(.storageUnavailable))
        }
        guard let rec else { return done(.refused(.orderNotFound(orderID))) }
        guard rec.status == OrderStatus.address_review.rawValue else {
            return done(
                .refused(
                    .illegalTransition(orderID: orderID, status: rec.status, message: "only an order in address_review takes an address correction")))
        }
        guard let order = try? JSONCoding.decode(CanonicalOrder.self, Array(rec.payload.utf8)) else { return done(.refused(.unreadableOrder)) }
        // Where to route from.
        let point: GeoPoint
        var note: String
        if let c = fix.coordinates {
            do {
                point = try crs.toWGS84(lat: c.lat, lon: c.lon, crs: c.crs)
            } catch {
                return done(.refused(.invalidField(field: "coordinates", message: error.description)))
            }
            note = "corrected coordinates (\(c.crs.uppercased() == "WGS84" ? "WGS84" : "\(c.crs) -> WGS84"))"
            var shipping = order.shipping
            if let t = fix.text { shipping.text = t }
            if let warning = addressDisagreement(point: point, shipping: shipping) { note += "; warning: " + warning }
        } else if let text = fix.text {
            switch geocode(text) {
            case .success(let (m, n)):
                point = m.point
                note = "corrected address, " + n
            case .failure(let f):
                let candidates =
                    f.match.map { m in
                        ([(m.adcode, m.names)] + m.alternatives.map { ($0.adcode, $0.names) }).map {
                            AddressCandidate(adcode: $0.0, place: Engine.place($0.1))
                        }
                    } ?? []
                return done(.refused(.addressUnresolved(message: f.message, candidates: candidates)))
            }
        } else {
            return done(.refused(.invalidField(field: "text", message: "send text (an address) or coordinates")))
        }
        metrics.geocode(result: "corrected")
        let now = clock.now()
        let at = rfc3339(now)
        let actor = fix.actor
        let fixNote = note
        enum Decision { case answer(ActionOutcome); case commit(Effects) }
        let decision: Decision = state.withLock { s -> Decision in
            guard !s.cancelledInactive.contains(orderID) else {
                return .answer(
                    .refused(.illegalTransition(orderID: orderID, status: OrderStatus.cancelled.rawValue, message: "order \(orderID) was cancelled")))
            }
            guard s.active[orderID] == nil, s.corrected.insert(orderID).inserted else {
                return .answer(
                    .refused(.illegalTransition(orderID: orderID, status: "assigned", message: "order \(orderID) is already being routed")))
            }
            let (demands, decision) = planAgain(order.lines, from: point, now: now, s: &s)
            var o = ActiveOrderRow(
                id: orderID, status: .address_review, storeSlot: nil, assignmentID: nil, point: point, statusAt: now,
                platform: order.platform, platformOrderID: order.platform_order_id, reserved: [], distanceMetres: nil)
            var fx = Effects()
            fx.jobs.append { db in
                try Repository.setOrderRouting(db, id: orderID, point: point, assignmentID: nil, at: now)
                try Repository.insertEvent(
                    db, orderID: orderID,
                    NewEvent(
                        at: at, actor: actor, type: "address_corrected",
                        from: "address_review", to: "address_review", reason: fixNote))
            }
            var store: Store?
            if let next = decision.storeSlot, assign(&o, to: next, demands: demands, point: point, now: now, s: &s, fx: &fx) {
                store = s.index.stores[Int(next)]
                let dist = o.distanceMetres ?? 0
                fx.jobs.append { db in try Rollups.routedAfterReview(db, orderID: orderID, slot: next, distance: dist) }
                move(&o, to: .assigned, actor: .system("router"), reason: decision.storeID, now: now, s: &s, fx: &fx)
                s.active[orderID] = o
            } else {
                move(
                    &o, to: .unroutable, actor: .system("router"), reason: decision.unroutableReason ?? "no_store_in_reach", now: now, s: &s, fx: &fx)
            }
            recordRouting(of: o, decision: decision, datum: fixNote, store: store, s: &s, fx: &fx)
            return .commit(fx)
        }
        switch decision {
        case .answer(let outcome): done(outcome)
        case .commit(let fx):
            commit(fx) { [self] outcome in
                // A correction that was not stored may be sent again.
                if case .refused = outcome { _ = state.withLock { $0.corrected.remove(orderID) } }
                done(outcome)
            }
        }
    }
}
