import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

/// Order routes: intake, lookups, the work queue, store actions, cancellation, address correction, routing again.
extension App {
    func postOrder(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let order: CanonicalOrder
        do { order = try CanonicalJSON.decodeOrder(r.body) } catch {
            throw APIError(400, error.field.isEmpty ? "invalid_json" : "invalid_field", error.message, field: error.field.isEmpty ? nil : error.field)
        }
        guard order.event == "order.created" || order.event == "order.paid" else {
            throw APIError(
                422, "unsupported_event", "POST /v1/orders takes order.created or order.paid; cancellations arrive through the platform webhooks",
                field: "event")
        }
        engine.submit(order: order) { reply.send($0.response) }
    }

    /// The parse-and-acknowledge baseline (`serve --bench-endpoints` only): the same auth, decoding
    /// and validation as POST /v1/orders, then an answer, with no routing and no write.
    func ackOrder(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        do { _ = try CanonicalJSON.decodeOrder(r.body) } catch {
            throw APIError(400, "invalid_field", error.message, field: error.field.isEmpty ? nil : error.field)
        }
        reply.send(jsonResponse(200, .object([("ok", .bool(true))])))
    }

    func getOrder(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let who = p.principal else { throw APIError.unauthorized }
        guard let id = Int64(p["id"]), id > 0 else { throw APIError.invalid("id", "order id must be a positive integer") }
        try reply.send(jsonResponse(200, orderDetail(id: id, for: who)))
    }

    /// `GET /v1/orders?status=&platform=&after=&limit=` (admin): the work queues, oldest first. Orders waiting in
    /// `address_review` or `unroutable` are otherwise known only by the id in the answer their platform received.
    func listOrders(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let status = r.query["status"]
        if let status, OrderStatus(rawValue: status) == nil {
            throw APIError.invalid("status", "status is one of " + OrderStatus.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let platform = r.query["platform"]
        if let platform, platform.isEmpty || platform.unicodeScalars.count > 64 {
            throw APIError.invalid("platform", "platform is 1-64 characters")
        }
        let after = Int64(try intParameter(r, "after", default: 0, range: 0...Int.max))
        let limit = try intParameter(r, "limit", default: 100, range: 1...500)
        let rows = try engine.readers.read { try Repository.orders($0, status: status, platform: platform, after: after, limit: limit) }
        reply.send(
            jsonResponse(
                200,
                .object([
                    (
                        "orders",
                        .array(
                            rows.map { o in
                                .object([
                                    ("order_id", .int(o.id)), ("status", .string(o.status)), ("platform", .string(o.platform)),
                                    ("platform_order_id", .string(o.platformOrderID)),
                                    ("store_id", .str(o.storeSlot.flatMap { engine.store(slot: $0)?.id })),
                                    ("parent_id", o.parentID.map { .int($0) } ?? .null),
                                    ("created_at", .string(o.createdAt)), ("status_at", .str(o.statusAt.map(rfc3339))),
                                    ("summary", .str(o.summary)), ("unroutable_reason", .str(o.unroutableReason)),
                                ])
                            })
                    ),
                    ("next_cursor", .string(String(rows.last?.id ?? after))),
                ])))
    }

    /// `POST /v1/orders/{id}/route` (admin): routes an unroutable order again, once stock has arrived.
    func routeAgain(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = Int64(p["id"]), id > 0 else { throw APIError.invalid("id", "order id must be a positive integer") }
        engine.routeAgain(orderID: id, actor: "admin") { reply.send($0.response(orderID: id)) }
    }

    /// `GET /v1/platforms/{platform}/orders/{platform_order_id}`: for platforms and merchants that poll.
    func platformOrder(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = try engine.readers.read({ try Repository.order($0, platform: p["platform"], platformOrderID: p["platform_order_id"]) }) else {
            if engine.cancelledBeforeReceipt(platform: p["platform"], platformOrderID: p["platform_order_id"]) {
                return reply.send(
                    jsonResponse(
                        200,
                        .object([
                            ("order_id", .null), ("status", .string("cancelled")), ("platform", .string(p["platform"])),
                            ("platform_order_id", .string(p["platform_order_id"])),
                            ("note", .string("the platform cancelled this order before ocss received it; nothing was routed")),
                        ])))
            }
            throw APIError.notFound("order \(p["platform_order_id"]) of platform \(p["platform"])")
        }
        try reply.send(jsonResponse(200, orderDetail(id: id, for: .admin)))
    }

    func orderDetail(id: Int64, for who: Principal) throws -> JSON {
        let (record, tracking, parts) = try engine.readers.read { db in
            (try Repository.order(db, id: id), try Repository.tracking(db, id: id), try Repository.parts(db, of: id))
        }
        guard let o = record else { throw APIError.notFound("order \(id)") }
        if case .store(let slot) = who, o.storeSlot != slot { throw APIError.forbidden }
        let store = o.storeSlot.flatMap { engine.store(slot: $0) }
        return .object([
            ("order_id", .int(o.id)),
            ("status", .string(o.status)),
            ("platform", .string(o.platform)),
            ("platform_order_id", .string(o.platformOrderID)),
            ("idempotency_key", .string(o.idempotencyKey)),
            ("created_at", .string(o.createdAt)),
            (
                "assignment",
                store.map { .object([("store_id", .string($0.id)), ("store_name", .string($0.name)), ("distance_m", .num(o.distanceMetres))]) }
                    ?? .null
            ),
            ("tracking", tracking.number.map { .object([("carrier", .str(tracking.carrier)), ("number", .string($0))]) } ?? .null),
            ("parts", .array(parts.map { .object([("order_id", .int($0.0)), ("status", .string($0.1))]) })),
            ("explanation", .raw(o.explanation)),
            ("order", .raw(who.isAdmin ? o.payload : (o.maskedPayload ?? App.masked(payload: o.payload)))),
            (
                "events",
                .array(
                    o.events.map { e in
                        .object([
                            ("at", .string(e.at)), ("actor", .string(e.actor)), ("type", .string(e.type)), ("from", .str(e.from)),
                            ("to", .str(e.to)), ("reason", .str(e.reason)),
                        ])
                    })
            ),
        ])
    }

    struct ActionBody: Decodable {
        var partial: Bool?
        var reason: String?
        var skus: [String]?
        var note: String?
        var carrier: String?
        var tracking_number: String?
    }

    func actionInput(_ r: Request) throws -> ActionInput {
        guard !r.body.isEmpty else { return ActionInput() }
        try requireJSON(r)
        let b = try decode(ActionBody.self, r.body)
        var input = ActionInput(
            missingSKUs: b.skus ?? [], carrier: b.carrier, trackingNumber: b.tracking_number, note: b.note,
            partial: b.partial ?? false)
        if let reason = b.reason {
            guard let v = RejectReason(rawValue: reason), v != .sla_timeout, v != .stock_shortfall else {
                throw APIError.invalid("reason", "reason is out_of_stock, closed, too_busy or other")
            }
            input.reason = v
        }
        if let n = b.note, n.unicodeScalars.count > 500 { throw APIError.invalid("note", "at most 500 characters") }
        if let c = b.carrier, c.isEmpty || c.unicodeScalars.count > 64 { throw APIError.invalid("carrier", "1 to 64 characters") }
        if let t = b.tracking_number, t.isEmpty || t.unicodeScalars.count > 64 { throw APIError.invalid("tracking_number", "1 to 64 characters") }
        return input
    }

    /// `POST /v1/assignments/{id}/{accept|reject|pick|pack|ship|deliver}` with the store's token.
    func assignmentAction(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let who = p.principal else { throw APIError.unauthorized }
        guard let aid = Int64(p["id"]), aid > 0 else { throw APIError.invalid("id", "assignment id must be a positive integer") }
        guard let action = OrderAction(rawValue: p["action"]), action != .cancel else {
            throw APIError(404, "not_found", "unknown action '\(p["action"])': accept, reject, pick, pack, ship or deliver")
        }
        guard let a = try engine.readers.read({ try Repository.assignment($0, id: aid) }) else { throw APIError.notFound("assignment \(aid)") }
        if case .store(let slot) = who, slot != a.slot { throw APIError.forbidden }
        var input = try actionInput(r)
        if input.partial {
            guard action == .reject else { throw APIError.invalid("partial", "only a reject can be partial") }
            guard !input.missingSKUs.isEmpty else { throw APIError.invalid("skus", "a partial rejection names the SKUs the store cannot fill") }
            input.payload = try engine.readers.read { try Repository.order($0, id: a.orderID) }?.payload
        }
        if action == .ship && (input.carrier == nil || input.trackingNumber == nil) {
            throw APIError.invalid(input.carrier == nil ? "carrier" : "tracking_number", "ship needs carrier and tracking_number")
        }
        let actor: Actor = if case .store(let slot) = who { .store(slot) } else { .admin }
        engine.act(orderID: a.orderID, assignmentID: aid, action: action, actor: actor, input: input) { reply.send($0.response) }
    }

    /// `POST /v1/orders/{id}/cancel` (admin): any time before shipped; releases the reservation.
    func cancelOrder(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = Int64(p["id"]), id > 0 else { throw APIError.invalid("id", "order id must be a positive integer") }
        let input = try actionInput(r)
        engine.act(orderID: id, assignmentID: nil, action: .cancel, actor: .admin, input: input) { reply.send($0.response) }
    }

    struct AddressBody: Decodable {
        var text: String?
        var coordinates: CanonicalOrder.Coordinates?
    }

    /// `POST /v1/orders/{id}/address` (admin): a corrected address text and/or coordinates for an order waiting in
    /// `address_review`; it is routed at once. Coordinates win over text when both are sent (the text is then
    /// only checked against them).
    func correctAddress(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        guard let id = Int64(p["id"]), id > 0 else { throw APIError.invalid("id", "order id must be a positive integer") }
        let body = try decode(AddressBody.self, r.body)
        if let t = body.text, t.unicodeScalars.count > 500 { throw APIError.invalid("text", "at most 500 characters") }
        if body.text?.allSatisfy(\.isWhitespace) ?? true, body.coordinates == nil {
            throw APIError.invalid("text", "send text (an address) or coordinates")
        }
        if let c = body.coordinates, let problem = CoordinateSystem.rangeProblem(lat: c.lat, lon: c.lon, crs: c.crs) {
            throw APIError.invalid("coordinates", problem)
        }
        engine.correctAddress(orderID: id, fix: Engine.AddressFix(text: body.text, coordinates: body.coordinates)) { reply.send($0.response) }
    }

    /// `GET /v1/geocode?q=ADDRESS` (admin or store token): what the geocoder makes of an address.
    func geocode(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let q = r.query["q"], !q.allSatisfy(\.isWhitespace) else { throw APIError.invalid("q", "q is the address to geocode") }
        guard q.unicodeScalars.count <= 500 else { throw APIError.invalid("q", "at most 500 characters") }
        reply.send(jsonResponse(200, GeocodeAnswer.json(id: .null, address: q, outcome: engine.geocoder.resolve(q))))
    }
}
