import Dispatch
import OCSSCore
public import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization

/// Who is calling.
enum Principal: Equatable, Sendable {
    case admin
    case store(Int32)

    var isAdmin: Bool { self == .admin }
}

/// The route table and handlers: the HTTP face of the engine.
public final class App: Responder {
    let engine: Engine
    let adminTokenHash: [UInt8]
    let metrics: Metrics
    let log: Logger
    let openAPI: String?
    let requestCounter = Atomic<Int>(0)
    /// Resolved bearer tokens (only valid ones are kept).
    let knownTokens = Mutex<[String: (who: Principal, generation: Int)]>([:])
    let startedAt = monotonicSeconds()
    let maxWaitSeconds: Double
    let benchEndpoints: Bool
    /// Seconds a platform's signed timestamp may be from now (0: no check).
    let webhookFreshnessSeconds: Int
    /// Failed credentials per client address.
    let authThrottle: AuthThrottle
    /// The last write probe of `/healthz`: when (monotonic seconds) and its error, if it failed.
    let healthProbe = Mutex<(at: Double, error: String?)?>(nil)
    /// The service's retention, for `/metrics` (none when the app runs without a service).
    let retention: Retention?
    /// Dashboard sessions and one-time login links: SHA-256 of the token -> expiry (epoch seconds).
    let sessions = Mutex<[String: Double]>([:])
    let loginLinks = Mutex<[String: Double]>([:])

    public init(engine: Engine, adminToken: String, openAPI: String?, maxWaitSeconds: Double = 30, benchEndpoints: Bool = false,
                retention: Retention? = nil, webhookFreshnessSeconds: Int = 600, authFailuresPerMinute: Int = 20) {
        self.benchEndpoints = benchEndpoints
        authThrottle = AuthThrottle(limit: authFailuresPerMinute)
        self.webhookFreshnessSeconds = webhookFreshnessSeconds
        self.retention = retention
        self.engine = engine
        adminTokenHash = Array(Crypto.sha256Hex(Array(adminToken.utf8)).utf8)
        metrics = engine.metrics
        log = engine.log
        self.openAPI = openAPI
        self.maxWaitSeconds = maxWaitSeconds
    }

    public func respond(to request: Request, reply: Reply) {
        let t0 = monotonicSeconds()
        let id = request.header("x-request-id") ?? "r\(requestCounter.add(1, ordering: .relaxed).newValue)"
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        // HEAD is GET without the body (libmicrohttpd leaves the body out): load balancers probe /healthz with it.
        let found = App.routes.match(request.method == "HEAD" ? "GET" : request.method, segments, benchEndpoints: benchEndpoints)
        let route: String
        switch found {
        case .found(let r, _): route = r.template
        case .methodNotAllowed: route = "method_not_allowed"
        case .notFound: route = "unmatched"
        }
        let metrics = self.metrics, log = self.log
        // A request that presents credentials (a bearer token, the login form, a one-time link) from an address that
        // failed too often is refused before they are checked; its 401 counts as a failure.
        let presents = request.header("authorization") != nil || route == "/login"
        let client = AuthThrottle.client(request.remoteAddress, forwardedFor: request.header("x-forwarded-for"))
        let throttle = authThrottle, clock = engine.clock
        // Wrap the reply so every answer is counted and logged once, whenever it is sent.
        let counted = ReplyCounter(reply: reply) { status in
            if presents && status == 401 { throttle.failed(client, now: clock.now()) }
            let dt = monotonicSeconds() - t0
            metrics.request(route: route, status: status, seconds: dt)
            log.info("request", [("request_id", .string(id)), ("method", .string(request.method)), ("route", .string(route)),
                                 ("status", .int(Int64(status))), ("ms", .double(dt * 1000))])
        }
        let matched: Route, params: [String: String]
        switch found {
        case .found(let r, let p): (matched, params) = (r, p)
        case .methodNotAllowed(let allowed):
            let e = APIError(405, "method_not_allowed", "\(request.method) is not allowed here; use \(allowed.joined(separator: " or "))")
            return counted.send(jsonResponse(405, e.body, headers: [("Allow", allowed.joined(separator: ", "))]))
        case .notFound:
            return counted.send(APIError(404, "not_found", "no route for \(request.method) \(request.path)").response)
        }
        if presents && !(route == "/login" && request.method == "GET" && request.query["once"] == nil),
           let wait = throttle.retryAfter(client, now: clock.now()) {
            throttle.throttled.add(1, ordering: .relaxed)
            let e = APIError(429, "too_many_auth_failures", "too many failed credentials from this address; retry in \(wait) s",
                             field: request.header("authorization") != nil ? "Authorization" : "token")
            return counted.send(jsonResponse(429, e.body, headers: [("Retry-After", String(wait))]))
        }
        do {
            try matched.handler(self)(request, try authorize(request, matched.access, params), counted)
        } catch let e as APIError {
            counted.send(e.response)
        } catch {
            log.error("handler failed", [("request_id", .string(id)), ("error", .string("\(error)"))])
            counted.send(APIError(500, "internal", "internal error (request \(id))").response)
        }
    }

    /// The route's access, checked: who is calling, and for a store's route that store's slot.
    func authorize(_ r: Request, _ access: Access, _ params: [String: String]) throws(APIError) -> RouteContext {
        var ctx = RouteContext(params: params)
        switch access {
        case .open: break
        case .admin: try requireAdmin(r)
        case .token:
            guard let who = principal(r) else { throw .unauthorized }
            ctx.principal = who
        case .store(let name):
            ctx.storeSlot = try requireStoreAccess(r, storeID: params[name] ?? "")
            ctx.principal = principal(r)
        }
        return ctx
    }

    // MARK: auth

    func principal(_ r: Request) -> Principal? {
        guard let h = r.header("authorization"), h.hasPrefix("Bearer ") else { return nil }
        let token = String(h.dropFirst(7))
        // A token once resolved keeps its principal until some token is revoked (the engine's token generation
        // moves): skip the hash until then. A lookup that raced a revocation is used once, not remembered.
        let generation = engine.tokenGeneration.load(ordering: .acquiring)
        if let known = knownTokens.withLock({ $0[token] }), known.generation == generation { return known.who }
        let hash = Array(Crypto.sha256Hex(Array(token.utf8)).utf8)
        let who: Principal? = Crypto.constantTimeEqual(hash, adminTokenHash) ? .admin
            : engine.slot(forTokenHash: String(decoding: hash, as: UTF8.self)).map { .store($0) }
        if let who, engine.tokenGeneration.load(ordering: .acquiring) == generation {
            knownTokens.withLock { cache in
                if cache.count >= 10_000 { cache.removeAll(keepingCapacity: true) }
                cache[token] = (who, generation)
            }
        }
        return who
    }

    func requireAdmin(_ r: Request) throws(APIError) {
        guard let p = principal(r) else { throw .unauthorized }
        guard p == .admin else { throw .forbidden }
    }

    /// Admin, or the token of the store in the path.
    func requireStoreAccess(_ r: Request, storeID: String) throws(APIError) -> Int32 {
        guard let p = principal(r) else { throw .unauthorized }
        guard let (slot, _) = engine.store(id: storeID) else {
            if p == .admin { throw .notFound("store '\(storeID)'") }
            throw .forbidden
        }
        if p == .admin || p == .store(slot) { return slot }
        throw .forbidden
    }

    func requireJSON(_ r: Request) throws(APIError) {
        let ct = (r.header("content-type") ?? "").lowercased()
        guard ct.hasPrefix("application/json") else {
            throw APIError(415, "unsupported_media_type", "send Content-Type: application/json", field: "Content-Type")
        }
    }

    // MARK: handlers

    /// `GET /healthz`: ok only when the database can be read and written. Reads can succeed while every write fails
    /// (a full disk, a WAL or SHM that cannot be written): orders are then refused, so say so. A quiet service has
    /// made no write that would have failed, so a probe write goes through the writer at most every 5 s.
    func health(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        @Sendable func degraded(_ error: String, _ extra: [(String, JSON)] = []) -> Response {
            jsonResponse(503, .object([("status", .string("degraded")), ("error", .string(error)), ("version", .string(BuildInfo.version))] + extra))
        }
        if let f = engine.writer.storageFailure {
            return reply.send(degraded("writes failing: " + f.message, [("failed_writes", .int(Int64(f.writes)))]))
        }
        do { _ = try engine.readers.read { try $0.query("SELECT 1") { $0.int(0) } } } catch {
            return reply.send(degraded("database unreadable: \(error)"))
        }
        let ok: @Sendable () -> Response = { [self] in
            jsonResponse(200, .object([("status", .string("ok")), ("version", .string(BuildInfo.version)), ("stores", .int(Int64(engine.storeCount))),
                                       ("uptime_s", .double(monotonicSeconds() - startedAt))]))
        }
        let now = monotonicSeconds()
        if let last = healthProbe.withLock({ $0 }), now - last.at < 5 {
            return reply.send(last.error.map { degraded("database not writable: " + $0) } ?? ok())
        }
        let at = rfc3339(engine.clock.now())
        engine.writer.submit({ db in try Repository.setSetting(db, "health.probe", at) }) { [self] result in
            var error: String?
            if case .failure(let e) = result { error = "\(e)" }
            healthProbe.withLock { $0 = (now, error) }
            reply.send(error.map { degraded("database not writable: " + $0) } ?? ok())
        }
    }

    func metricsText(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let w = engine.writer.stats
        let outbox = (try? engine.readers.read { try Repository.outboxBacklog($0) }) ?? (pending: 0, dead: 0)
        let waiting = (try? engine.readers.read { try Repository.orderCounts($0, statuses: ["address_review", "unroutable"]) }) ?? [:]
        let text = "# HELP ocss_build_info The running build (value 1).\n# TYPE ocss_build_info gauge\n"
            + "ocss_build_info{version=\"\(BuildInfo.version)\"} 1\n" + metrics.render(extra: [
            ("ocss_outbox_pending", "Outbox messages waiting to be sent.", Double(outbox.pending)),
            ("ocss_outbox_dead", "Outbox messages parked after their last retry (POST /v1/outbox/{id}/retry).", Double(outbox.dead)),
            ("ocss_stores", "Stores in the routing index.", Double(engine.storeCount)),
            ("ocss_orders_address_review", "Orders waiting for an address correction (GET /v1/orders?status=address_review).",
             Double(waiting["address_review"] ?? 0)),
            ("ocss_orders_unroutable", "Orders no store could take yet (GET /v1/orders?status=unroutable; retried after restocks).",
             Double(waiting["unroutable"] ?? 0)),
            ("ocss_writer_batches_total", "Transactions committed by the group-commit writer.", Double(w.batches)),
            ("ocss_writer_jobs_total", "Writes committed by the group-commit writer.", Double(w.jobs)),
            ("ocss_writer_storage_failures_total", "Writes that failed on a storage error (disk full, I/O, read-only).",
             Double(engine.writer.storageFailures)),
            ("ocss_feed_waiters", "Long polls waiting for assignments.", Double(engine.feed.count)),
            ("ocss_idempotency_keys_in_memory", "Newest idempotency keys held in memory (--idempotency-window).",
             Double(engine.state.withLock { $0.committed.count })),
            ("ocss_outbox_pruned_total", "Sent outbox messages deleted after the retention (outbox_retention_days).",
             Double(retention?.outboxDeleted.load(ordering: .relaxed) ?? 0)),
            ("ocss_redemption_attempts_pruned_total", "Redemption attempts deleted after the retention (redemption_audit_retention_days).",
             Double(retention?.attemptsDeleted.load(ordering: .relaxed) ?? 0)),
            ("ocss_idempotency_lookups_total", "Idempotency keys looked up in the database because older keys left memory.",
             Double(engine.idempotencyLookups.load(ordering: .relaxed))),
            ("ocss_auth_failures_total", "Requests refused 401 for the credentials they presented (bearer token, login).",
             Double(authThrottle.failures.load(ordering: .relaxed))),
            ("ocss_auth_throttled_total", "Requests refused 429 because their address failed credentials too often.",
             Double(authThrottle.throttled.load(ordering: .relaxed))),
            ("ocss_duplicate_platform_orders_total", "Routed events for a platform order that was already an order (another key), answered with it.",
             Double(engine.duplicatePlatformOrders.load(ordering: .relaxed))),
        ])
        reply.send(Response(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(text.utf8)))
    }

    func openAPIText(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let openAPI else { throw APIError(404, "not_found", "openapi.yaml is not installed next to this binary") }
        reply.send(Response(status: 200, headers: [("Content-Type", "application/yaml")], body: Array(openAPI.utf8)))
    }

    func postOrder(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let order: CanonicalOrder
        do { order = try CanonicalJSON.decodeOrder(r.body) } catch {
            throw APIError(400, error.field.isEmpty ? "invalid_json" : "invalid_field", error.message, field: error.field.isEmpty ? nil : error.field)
        }
        guard order.event == "order.created" || order.event == "order.paid" else {
            throw APIError(422, "unsupported_event", "POST /v1/orders takes order.created or order.paid; cancellations arrive through the platform webhooks", field: "event")
        }
        engine.submit(order: order, reply: reply)
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
        reply.send(jsonResponse(200, .object([
            ("orders", .array(rows.map { o in
                .object([
                    ("order_id", .int(o.id)), ("status", .string(o.status)), ("platform", .string(o.platform)),
                    ("platform_order_id", .string(o.platformOrderID)),
                    ("store_id", .str(o.storeSlot.flatMap { engine.store(slot: $0)?.id })),
                    ("parent_id", o.parentID.map { .int($0) } ?? .null),
                    ("created_at", .string(o.createdAt)), ("status_at", .str(o.statusAt.map(rfc3339))),
                    ("summary", .str(o.summary)), ("unroutable_reason", .str(o.unroutableReason)),
                ])
            })),
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
                return reply.send(jsonResponse(200, .object([
                    ("order_id", .null), ("status", .string("cancelled")), ("platform", .string(p["platform"])), ("platform_order_id", .string(p["platform_order_id"])),
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
            ("assignment", store.map { .object([("store_id", .string($0.id)), ("store_name", .string($0.name)), ("distance_m", .num(o.distanceMetres))]) } ?? .null),
            ("tracking", tracking.number.map { .object([("carrier", .str(tracking.carrier)), ("number", .string($0))]) } ?? .null),
            ("parts", .array(parts.map { .object([("order_id", .int($0.0)), ("status", .string($0.1))]) })),
            ("explanation", .raw(o.explanation)),
            ("order", .raw(who.isAdmin ? o.payload : (o.maskedPayload ?? App.masked(payload: o.payload)))),
            ("events", .array(o.events.map { e in
                .object([("at", .string(e.at)), ("actor", .string(e.actor)), ("type", .string(e.type)), ("from", .str(e.from)),
                         ("to", .str(e.to)), ("reason", .str(e.reason))])
            })),
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
        var input = ActionInput(missingSKUs: b.skus ?? [], carrier: b.carrier, trackingNumber: b.tracking_number, note: b.note,
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
        engine.act(orderID: a.orderID, assignmentID: aid, action: action, actor: actor, input: input, reply: reply)
    }

    /// `POST /v1/orders/{id}/cancel` (admin): any time before shipped; releases the reservation.
    func cancelOrder(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = Int64(p["id"]), id > 0 else { throw APIError.invalid("id", "order id must be a positive integer") }
        let input = try actionInput(r)
        engine.act(orderID: id, assignmentID: nil, action: .cancel, actor: .admin, input: input, reply: reply)
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
        engine.correctAddress(orderID: id, fix: Engine.AddressFix(text: body.text, coordinates: body.coordinates), reply: reply)
    }

    /// `GET /v1/geocode?q=ADDRESS` (admin or store token): what the geocoder makes of an address.
    func geocode(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let q = r.query["q"], !q.allSatisfy(\.isWhitespace) else { throw APIError.invalid("q", "q is the address to geocode") }
        guard q.unicodeScalars.count <= 500 else { throw APIError.invalid("q", "at most 500 characters") }
        reply.send(jsonResponse(200, GeocodeCommand.json(id: .null, address: q, outcome: engine.geocoder.resolve(q))))
    }

    struct SnapshotBody: Decodable {
        struct Row: Decodable {
            var store_id: String?
            var sku: String
            var qty: Int
        }
        var version: Int64
        var store_id: String?
        var rows: [Row]
        /// Multi-part snapshots: parts 0, 1, ... of one version, the last with `final: true`.
        var part: Int?
        var final: Bool?
    }

    /// `PUT /v1/inventory/snapshot` (admin): the whole catalogue of one store (`store_id`) or of every
    /// store, with a version that must be newer than the one applied; on-hand only, reservations kept.
    func putSnapshot(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(SnapshotBody.self, r.body)
        guard b.version >= 1 else { throw APIError.invalid("version", "version must be a positive integer") }
        let scopeSlots: [Int32]
        let scope: String
        if let id = b.store_id {
            guard let (slot, _) = engine.store(id: id) else { throw APIError.invalid("store_id", "unknown store '\(id)'") }
            scopeSlots = [slot]
            scope = "store:\(id)"
        } else {
            scopeSlots = (0..<engine.storeCount).map { Int32($0) }
            scope = "all"
        }
        var rows: [Engine.SnapshotRow] = []
        rows.reserveCapacity(b.rows.count)
        // One store and SKU listed twice is an export's mistake: say which rows, rather than keep one of them silently.
        var firstRow: [String: Int] = [:]
        firstRow.reserveCapacity(b.rows.count)
        for (i, row) in b.rows.enumerated() {
            let storeID = row.store_id ?? b.store_id
            guard let storeID else { throw APIError.invalid("rows[\(i)].store_id", "a whole-catalogue snapshot names the store of every row") }
            if let top = b.store_id, storeID != top { throw APIError.invalid("rows[\(i)].store_id", "row belongs to another store than the snapshot") }
            guard let (slot, _) = engine.store(id: storeID) else { throw APIError.invalid("rows[\(i)].store_id", "unknown store '\(storeID)'") }
            guard !row.sku.isEmpty, row.sku.unicodeScalars.count <= 128 else { throw APIError.invalid("rows[\(i)].sku", "sku must be 1 to 128 characters") }
            guard (0...1_000_000_000).contains(row.qty) else { throw APIError.invalid("rows[\(i)].qty", "qty must be between 0 and 1000000000") }
            if let j = firstRow.updateValue(i, forKey: "\(slot)\u{0}\(row.sku)") {
                throw APIError.invalid("rows[\(i)].sku", "store '\(storeID)' and sku '\(row.sku)' are already in rows[\(j)]")
            }
            rows.append(.init(slot: slot, sku: row.sku, quantity: Int32(row.qty)))
        }
        let rowCount = rows.count
        let part = b.part ?? 0
        guard (0...100_000).contains(part) else { throw APIError.invalid("part", "part must be 0 to 100000") }
        engine.applySnapshot(scope: scope, scopeSlots: scopeSlots, version: b.version, rows: rows, part: part, final: b.final ?? true) { result in
            func answer(_ applied: Bool, _ previous: Int64?, _ extra: [(String, JSON)]) -> Response {
                jsonResponse(200, .object([("applied", .bool(applied)), ("scope", .string(scope)), ("version", .int(b.version)),
                                           ("previous_version", previous.map { .int($0) } ?? .null), ("rows", .int(Int64(rowCount))),
                                           ("part", .int(Int64(part)))] + extra))
            }
            switch result {
            case .success(.applied(let previous, let rerouted)):
                reply.send(answer(true, previous, [("complete", .bool(true)), ("rerouted_orders", .int(Int64(rerouted))), ("reason", .null)]))
            case .success(.partApplied(let next)):
                reply.send(answer(true, nil, [("complete", .bool(false)), ("next_part", .int(Int64(next))), ("reason", .null)]))
            case .success(.stale(let applied)):
                reply.send(answer(false, applied, [("complete", .bool(false)),
                    ("reason", .string("version \(b.version) is not newer than the applied version \(applied); ignored"))]))
            case .success(.outOfOrder(let expected)):
                reply.send(APIError(409, "snapshot_part_out_of_order",
                                    "expected part \(expected) of version \(b.version) for \(scope) (parts are sent in order; after a restart start again from part 0)",
                                    field: "part").response)
            case .failure: reply.send(APIError.storageUnavailable("the snapshot").response)
            }
        }
    }

    struct DeltasBody: Decodable {
        struct Delta: Decodable {
            var id: String
            var store_id: String
            var sku: String
            var change: Int
        }
        var deltas: [Delta]
    }

    /// `POST /v1/inventory/deltas` (admin): on-hand changes, each applied once by its id.
    func postDeltas(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(DeltasBody.self, r.body)
        guard b.deltas.count <= 100_000 else { throw APIError.invalid("deltas", "at most 100000 deltas per request") }
        var deltas: [Engine.Delta] = []
        for (i, d) in b.deltas.enumerated() {
            guard !d.id.isEmpty, d.id.unicodeScalars.count <= 128 else { throw APIError.invalid("deltas[\(i)].id", "id must be 1 to 128 characters") }
            guard let (slot, _) = engine.store(id: d.store_id) else { throw APIError.invalid("deltas[\(i)].store_id", "unknown store '\(d.store_id)'") }
            guard !d.sku.isEmpty, d.sku.unicodeScalars.count <= 128 else { throw APIError.invalid("deltas[\(i)].sku", "sku must be 1 to 128 characters") }
            guard (-1_000_000_000...1_000_000_000).contains(d.change) else { throw APIError.invalid("deltas[\(i)].change", "change must be within ±1000000000") }
            deltas.append(.init(id: d.id, slot: slot, sku: d.sku, change: Int32(d.change)))
        }
        let total = deltas.count
        engine.applyDeltas(deltas) { result in
            switch result {
            case .success(let duplicates):
                reply.send(jsonResponse(200, .object([("applied", .int(Int64(total - duplicates.count))),
                                                      ("duplicates", .array(duplicates.map { .string($0) }))])))
            case .failure(let e as APIError): reply.send(e.response)
            case .failure: reply.send(APIError.storageUnavailable("the deltas").response)
            }
        }
    }

    struct WebhookBody: Decodable {
        var url: String
        var secret: String
    }

    func putWebhook(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(WebhookBody.self, r.body)
        guard b.url.hasPrefix("http://") || b.url.hasPrefix("https://"), b.url.utf8.count <= 2048 else {
            throw APIError.invalid("url", "url must be http:// or https://")
        }
        guard b.secret.unicodeScalars.count >= 16, b.secret.utf8.count <= 512 else {
            throw APIError.invalid("secret", "secret must be 16 to 512 characters")
        }
        engine.writer.submit({ db in
            try Repository.setSetting(db, "webhook.url", b.url)
            try Repository.setSetting(db, "webhook.secret", b.secret)
        }) { [engine] result in
            switch result {
            case .success:
                engine.wakeOutbox()
                reply.send(jsonResponse(200, .object([("url", .string(b.url)), ("configured", .bool(true))])))
            case .failure: reply.send(APIError.storageUnavailable().response)
            }
        }
    }

    /// `POST /v1/platforms/{platform}/webhook`: the platform's own payload, verified over the raw
    /// bytes with the app secret from the platform's credentials, answered with its success body.
    func platformWebhook(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let adapter = Adapters.adapter(for: p["platform"]) else {
            throw APIError(404, "not_found", "no adapter for platform '\(p["platform"])'", field: "platform")
        }
        guard adapter.accepts(contentType: r.header("content-type")) else {
            throw APIError(415, "unsupported_media_type", "\(p["platform"]) sends \(adapter.contentTypes.joined(separator: " or "))", field: "Content-Type")
        }
        let m = InboundMessage(headers: r.headers, body: r.body)
        let credentials = try engine.readers.read { try Repository.setting($0, "platform.\(p["platform"]).credentials") }
            .flatMap { try? JSONCoding.decode(PlatformCredentials.self, Array($0.utf8)) }
        let answer = adapter.reply(to: m, credentials: credentials)
        let ack = Response(status: 200, headers: [("Content-Type", answer.contentType)], body: Array(answer.body.utf8))
        if adapter.isUnsignedPing(m) { return reply.send(ack) }
        let byConnector = adapter.needsBearer(m)
        if byConnector { try requireAdmin(r) }
        let outcome: AdapterOutcome
        do {
            if !byConnector {
                try adapter.verify(m, credentials: credentials)
                try checkFreshness(adapter, m)
            }
            outcome = try adapter.parse(m)
        } catch {
            throw APIError(error.kind == .signature ? 401 : 400, error.kind == .signature ? "bad_signature" : "invalid_field",
                           error.message, field: error.field)
        }
        // WooCommerce routes an order when an update moves it to processing (it was created awaiting payment). An order
        // paid before the shop was connected to ocss is one its old process is fulfilling: routing it on its next
        // update (a note, a status change) would fulfil it twice.
        if case .event(let order) = outcome, p["platform"] == "woocommerce", r.header("x-wc-webhook-topic") == "order.updated",
           order.event == "order.paid", let since = order.paid_at ?? order.created_at,
           let connected = try engine.readers.read({ try Repository.setting($0, Engine.connectedKey(p["platform"])) }), since < connected {
            log.info("platform order paid before the platform was connected: not routed",
                     [("platform", .string(p["platform"])), ("platform_order_id", .string(order.platform_order_id)), ("paid_at", .string(since)),
                      ("connected_at", .string(connected))])
            return reply.send(ack)
        }
        switch outcome {
        case .ignored: return reply.send(ack)
        case .needsDetail(let pid, _):
            guard let credentials else { throw APIError(503, "not_configured", "no credentials for \(p["platform"]): cannot fetch the order detail", field: "platform") }
            let platform = p["platform"], now = engine.clock.now()
            // Off the transport thread: a signed detail call, then the same path as any order.
            DispatchQueue.global().async { [self] in
                do {
                    let request = try AdapterOutcome.detailRequest(platform: platform, platformOrderID: pid, credentials: credentials, at: now)
                    let (status, body) = try OutboundHTTP().perform(request)
                    guard (200..<300).contains(status) else { throw StatusCallError(message: "detail API answered HTTP \(status)") }
                    let detail = try AdapterOutcome.fromDetail(platform: platform, body: body)
                    guard case .event(let order) = detail else { return reply.send(ack) }
                    try routeEvent(order, platform: platform, ack: ack, reply: reply)
                } catch let e as APIError {
                    reply.send(e.response)
                } catch {
                    log.warn("detail fetch failed", [("platform", .string(platform)), ("platform_order_id", .string(pid)), ("error", .string("\(error)"))])
                    reply.send(APIError(502, "detail_fetch_failed", "could not fetch order \(pid) from \(platform); retry").response)
                }
            }
        case .event(let order):
            try routeEvent(order, platform: p["platform"], ack: ack, reply: reply)
        }
    }

    /// A signed platform time further than `webhookFreshnessSeconds` from now: a captured delivery replayed later (a
    /// Meituan message signed in 2010 created an order). Missing or unreadable counts as stale: the platform signs it.
    func checkFreshness(_ adapter: any PlatformAdapter, _ m: InboundMessage) throws(AdapterError) {
        guard webhookFreshnessSeconds > 0, let (field, signed) = adapter.signedTime(m) else { return }
        let now = Int64(engine.clock.now())
        guard let signed else { throw AdapterError(.signature, "the signed \(field) is missing or unreadable", field: field) }
        let skew = signed > now ? signed - now : now - signed
        guard skew <= Int64(webhookFreshnessSeconds) else {
            throw AdapterError(.signature, "the signed \(field) is \(skew) s from the server's time (more than \(webhookFreshnessSeconds) s): a replayed or delayed delivery", field: field)
        }
    }

    /// A canonical platform event into the engine; the platform hears its own success body.
    func routeEvent(_ order: CanonicalOrder, platform: String, ack: Response, reply: ReplyCounter) throws(APIError) {
        // Orders are found by the canonical platform (jd_daojia pushes make "jd" orders).
        let canonical = order.platform
        let platformReply = PlatformReply(ack: ack, reply: reply, log: log, platform: canonical, orderID: order.platform_order_id)
        switch order.event {
        case "order.created", "order.paid":
            if order.lines.isEmpty { return reply.send(ack) }  // nothing a store can fill (gift cards, digital goods)
            let (order, clipped) = order.clippingBuyerText()
            if !clipped.isEmpty {
                log.warn("buyer text cut to its limit", [("platform", .string(canonical)), ("platform_order_id", .string(order.platform_order_id)),
                                                         ("fields", .array(clipped.map { .string($0) }))])
            }
            if let problem = order.validate() { throw APIError(400, "invalid_field", problem.message, field: problem.field) }
            engine.submit(order: order, reply: platformReply, fromPlatform: true)
        case "order.cancelled", "order.refund_requested":
            engine.cancelPlatformOrder(platform: canonical, platformOrderID: order.platform_order_id, event: order.event, reply: platformReply)
        default:
            reply.send(ack)
        }
    }

    static let knownPlatforms: Set<String> = ["shopify", "woocommerce", "taobao", "jd", "jd_daojia", "pinduoduo", "meituan", "eleme", "eleme_retail", "youzan"]

    /// `PUT /v1/platforms/{platform}/credentials` (admin): what ocss needs to call the platform.
    func putCredentials(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let platform = p["platform"]
        guard App.knownPlatforms.contains(platform) else { throw APIError(404, "not_found", "unknown platform '\(platform)'", field: "platform") }
        let c = try decode(PlatformCredentials.self, r.body)
        guard c.base_url.hasPrefix("http://") || c.base_url.hasPrefix("https://") else { throw APIError.invalid("base_url", "base_url must be http:// or https://") }
        if let m = c.sign_method, !["md5", "hmac", "hmac-sha256"].contains(m) { throw APIError.invalid("sign_method", "sign_method is md5, hmac or hmac-sha256") }
        let text = String(decoding: CanonicalJSON.encodeValue(c), as: UTF8.self)
        engine.setPlatformCredentials(platform, json: text) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, App.credentialsJSON(platform, c)))
            case .failure: reply.send(APIError.storageUnavailable().response)
            }
        }
    }

    func getCredentials(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let text = try engine.readers.read({ try Repository.setting($0, "platform.\(p["platform"]).credentials") }),
              let c = try? JSONCoding.decode(PlatformCredentials.self, Array(text.utf8)) else { throw APIError.notFound("credentials for \(p["platform"])") }
        reply.send(jsonResponse(200, App.credentialsJSON(p["platform"], c)))
    }

    /// Credentials as shown: never the secrets, only whether they are set.
    static func credentialsJSON(_ platform: String, _ c: PlatformCredentials) -> JSON {
        .object([("platform", .string(platform)), ("base_url", .string(c.base_url)), ("app_key", .str(c.app_key)),
                 ("has_app_secret", .bool(c.app_secret != nil)), ("has_access_token", .bool(c.access_token != nil)),
                 ("has_session", .bool(c.session != nil)), ("sign_method", .str(c.sign_method)),
                 ("status_calls", .bool(StatusCalls.platforms.contains(platform)))])
    }

    func getWebhook(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let url = try engine.readers.read { try Repository.setting($0, "webhook.url") }
        reply.send(jsonResponse(200, .object([("url", .str(url)), ("configured", .bool(url != nil))])))
    }

    func listOutbox(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let status = r.query["status"]
        if let status, !["pending", "sent", "dead"].contains(status) { throw APIError.invalid("status", "status is pending, sent or dead") }
        let after = Int64(try intParameter(r, "after", default: 0, range: 0...Int.max))
        let limit = try intParameter(r, "limit", default: 500, range: 1...1000)
        let (rows, counts) = try engine.readers.read { db in
            (try Repository.outbox(db, status: status, after: after, limit: limit), try Repository.outboxCounts(db))
        }
        reply.send(jsonResponse(200, .object([
            ("counts", .object(counts.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
            ("next_cursor", .string(String(rows.last?.id ?? after))),
            ("messages", .array(rows.map { m in
                .object([("id", .int(m.id)), ("order_id", .int(m.orderID)), ("event", .string(m.event)), ("target", .string(m.target)),
                         ("status", .string(m.status)), ("attempts", .int(Int64(m.attempts))), ("last_error", .str(m.lastError)),
                         ("created_at", .string(m.createdAt)), ("payload", .raw(m.payload))])
            })),
        ])))
    }

    func retryOutbox(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = Int64(p["id"]) else { throw APIError.invalid("id", "outbox id must be an integer") }
        let now = engine.clock.now()
        engine.writer.submit({ db in
            guard try Repository.retryOutbox(db, id: id, now: now) else { throw APIError(409, "not_dead", "message \(id) is not dead", field: "id") }
        }) { [engine] result in
            switch result {
            case .success:
                engine.wakeOutbox()
                reply.send(jsonResponse(200, .object([("id", .int(id)), ("status", .string("pending"))])))
            case .failure(let e as APIError): reply.send(e.response)
            case .failure: reply.send(APIError.storageUnavailable().response)
            }
        }
    }

    static func assignmentJSON(_ a: AssignmentRow) -> JSON {
        .object([("assignment_id", .int(a.id)), ("order_id", .int(a.orderID)), ("status", .string(a.status)),
                 ("reason", .str(a.reason)), ("distance_m", .double(a.distanceMetres)), ("created_at", .string(a.createdAt)),
                 ("order", .raw(a.payload))])
    }

    static func storeJSON(_ s: Store) -> JSON {
        .object([("id", .string(s.id)), ("code", .string(s.code)), ("name", .string(s.name)), ("lat", .exact(s.location.lat)),
                 ("lon", .exact(s.location.lon)), ("kind", .string(s.kind.rawValue)), ("status", .string(s.status.rawValue)),
                 ("rules", .raw(Engine.rulesJSON(s.rules) ?? "{}"))])
    }

    func listStores(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let all = engine.allStores
        let limit = try intParameter(r, "limit", default: 1000, range: 1...10_000)
        let offset = try intParameter(r, "offset", default: 0, range: 0...Int(Int32.max))
        let page = all.dropFirst(offset).prefix(limit)
        reply.send(jsonResponse(200, .object([("stores", .array(page.map(App.storeJSON))), ("total", .int(Int64(all.count)))])))
    }

    func getStore(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        guard let s = engine.store(slot: slot) else { throw APIError.notFound("store") }
        reply.send(jsonResponse(200, App.storeJSON(s)))
    }

    struct StoreBody: Decodable {
        var code: String?
        var name: String
        var lat: Double
        var lon: Double
        var kind: String?
        var status: String?
        var accept_sla_s: Int?
        var ship_sla_s: Int?
        var rules: StoreRules?
    }

    /// A store from its body, or 400 naming the field (`prefix` leads each field name: `stores[3].` in a batch).
    static func validatedStore(id: String, _ b: StoreBody, prefix: String = "") throws(APIError) -> (store: Store, sla: StoreSLA) {
        func invalid(_ field: String, _ message: String) -> APIError { APIError.invalid(prefix + field, message) }
        guard !id.isEmpty, id.unicodeScalars.count <= 64 else { throw invalid("id", "store id must be 1 to 64 characters") }
        let point = GeoPoint(lon: b.lon, lat: b.lat)
        guard point.isValid else { throw invalid("lat", "lat must be within -90..90 and lon within -180..180") }
        guard let kind = StoreKind(rawValue: b.kind ?? "store") else { throw invalid("kind", "kind is store or warehouse") }
        guard let status = StoreStatus(rawValue: b.status ?? "open") else { throw invalid("status", "status is open, paused or closed") }
        guard !b.name.isEmpty else { throw invalid("name", "name must not be empty") }
        if let a = b.accept_sla_s, !(30...86_400).contains(a) { throw invalid("accept_sla_s", "accept_sla_s must be 30 to 86400") }
        if let sh = b.ship_sla_s, !(60...30 * 86_400).contains(sh) { throw invalid("ship_sla_s", "ship_sla_s must be 60 to 2592000") }
        let rules = b.rules ?? StoreRules()
        if let (field, message) = rules.problem() { throw invalid("rules.\(field)", message) }
        if let tz = rules.timeZone, !Engine.knownTimeZone(tz) { throw invalid("rules.timezone", "unknown time zone '\(tz)' (IANA names, e.g. Asia/Shanghai)") }
        let store = Store(id: id, code: b.code ?? id, name: b.name, location: point, kind: kind, status: status, rules: rules)
        return (store, StoreSLA(acceptSeconds: Double(b.accept_sla_s ?? 600), shipSeconds: Double(b.ship_sla_s ?? 86_400)))
    }

    /// One store of `PUT /v1/stores`: its id, then the fields of a single store's body.
    struct StoreItem: Decodable {
        var id: String
        var body: StoreBody
        enum Keys: String, CodingKey { case id }
        init(from decoder: any Decoder) throws {
            id = try decoder.container(keyedBy: Keys.self).decode(String.self, forKey: .id)
            body = try StoreBody(from: decoder)
        }
    }

    struct StoresBody: Decodable { var stores: [StoreItem] }

    /// Stores per `PUT /v1/stores` (about 150 bytes each: well inside the default 1 MiB body limit).
    static let storeBatch = 5000

    /// `PUT /v1/stores` (admin): creates or replaces up to 5,000 stores in one transaction, with one rebuild of the
    /// routing index. Every store is checked first: one bad store refuses the batch, naming `stores[i].field`.
    func putStores(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(StoresBody.self, r.body)
        guard !b.stores.isEmpty, b.stores.count <= App.storeBatch else {
            throw APIError.invalid("stores", "send 1 to \(App.storeBatch) stores")
        }
        var seen: Set<String> = []
        var items: [(store: Store, sla: StoreSLA)] = []
        for (i, item) in b.stores.enumerated() {
            guard seen.insert(item.id).inserted else { throw APIError.invalid("stores[\(i)].id", "store '\(item.id)' is listed twice") }
            items.append(try App.validatedStore(id: item.id, item.body, prefix: "stores[\(i)]."))
        }
        engine.upsertStores(items) { result in
            switch result {
            case .success(let n):
                reply.send(jsonResponse(200, .object([("created", .int(Int64(n.created))), ("updated", .int(Int64(n.updated))),
                                                      ("stores", .int(Int64(self.engine.storeCount)))])))
            case .failure: reply.send(APIError.storageUnavailable("the stores").response)
            }
        }
    }

    func putStore(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let id = p["id"]
        guard !id.isEmpty, id.unicodeScalars.count <= 64 else { throw APIError.invalid("id", "store id must be 1 to 64 characters") }
        let b = try decode(StoreBody.self, r.body)
        let (store, sla) = try App.validatedStore(id: id, b)
        engine.upsertStore(store, sla: sla) { result in
            switch result {
            case .success(let created): reply.send(jsonResponse(created ? 201 : 200, App.storeJSON(store)))
            case .failure: reply.send(APIError.storageUnavailable("the store").response)
            }
        }
    }

    // MARK: routing policy and safety stock

    func policyJSON(version: Int64, policy: RoutingPolicy) -> JSON {
        .object([("version", .int(version)), ("policy", .raw(Engine.policyJSON(policy)))])
    }

    /// `GET /v1/policy` (admin): the routing policy in force and its version (0 = built-in defaults).
    func getPolicy(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (version, policy) = engine.currentPolicy
        reply.send(jsonResponse(200, policyJSON(version: version, policy: policy)))
    }

    /// `PUT /v1/policy` (admin): a new policy document (missing fields take their defaults) becomes
    /// the next version; later decisions use and record it.
    func putPolicy(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let policy = try decode(RoutingPolicy.self, r.body)
        if let (field, message) = policy.problem() { throw APIError.invalid(field, message) }
        engine.setPolicy(policy, note: r.query["note"]) { result in
            switch result {
            case .success(let v): reply.send(jsonResponse(201, self.policyJSON(version: v, policy: policy)))
            case .failure: reply.send(APIError.storageUnavailable("the policy").response)
            }
        }
    }

    struct SafetyBody: Decodable {
        var `default`: Int?
        var per_sku: [String: Int]?
        var per_store: [String: Int]?
    }

    /// Safety stock rules from their JSON: store ids resolve to slots through `slot`.
    static func decodeSafety(_ json: String, slot: (String) -> Int32?) throws -> SafetyStock {
        let b = try JSONCoding.decode(SafetyBody.self, Array(json.utf8))
        return try safety(b, slot: slot)
    }

    static func safety(_ b: SafetyBody, slot: (String) -> Int32?) throws(APIError) -> SafetyStock {
        func q(_ v: Int, _ field: String) throws(APIError) -> Int32 {
            guard (0...1_000_000).contains(v) else { throw APIError.invalid(field, "safety stock must be 0 to 1000000") }
            return Int32(v)
        }
        var rules = SafetyStock(defaultQuantity: try q(b.default ?? 0, "default"))
        for (sku, v) in b.per_sku ?? [:] {
            guard !sku.isEmpty, sku.unicodeScalars.count <= 128 else { throw APIError.invalid("per_sku", "sku must be 1 to 128 characters") }
            rules.perSKU[sku] = try q(v, "per_sku.\(sku)")
        }
        for (id, v) in b.per_store ?? [:] {
            guard let s = slot(id) else { throw APIError.invalid("per_store.\(id)", "unknown store '\(id)'") }
            rules.perStore[s] = try q(v, "per_store.\(id)")
        }
        return rules
    }

    func safetyJSON(_ rules: SafetyStock) -> JSON {
        let stores = engine.allStores
        return .object([
            ("default", .int(Int64(rules.defaultQuantity))),
            ("per_sku", .object(rules.perSKU.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
            ("per_store", .object(rules.perStore.sorted { $0.key < $1.key }.compactMap { kv in
                Int(kv.key) < stores.count ? (stores[Int(kv.key)].id, .int(Int64(kv.value))) : nil
            })),
            ("precedence", .string("per_sku, then per_store, then default")),
        ])
    }

    /// `GET /v1/inventory/safety-stock` (admin).
    func getSafety(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        reply.send(jsonResponse(200, safetyJSON(engine.safetyRules)))
    }

    /// `PUT /v1/inventory/safety-stock` (admin): replaces the rules; available = on_hand - reserved - safety.
    func putSafety(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(SafetyBody.self, r.body)
        let rules = try App.safety(b, slot: { self.engine.store(id: $0)?.slot })
        engine.setSafetyStock(rules, json: String(decoding: r.body, as: UTF8.self)) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, self.safetyJSON(rules)))
            case .failure: reply.send(APIError.storageUnavailable("the safety stock").response)
            }
        }
    }

    struct InventoryRow: Decodable {
        var sku: String
        var qty: Int
    }

    func putInventory(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        let rows = try decode([InventoryRow].self, r.body)
        for (i, row) in rows.enumerated() {
            guard !row.sku.isEmpty, row.sku.unicodeScalars.count <= 128 else { throw APIError.invalid("[\(i)].sku", "sku must be 1 to 128 characters") }
            guard (0...1_000_000_000).contains(row.qty) else { throw APIError.invalid("[\(i)].qty", "qty must be between 0 and 1000000000") }
        }
        engine.setInventory(slot: slot, rows: rows.map { ($0.sku, Int32($0.qty)) }) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, .object([("store_id", .string(p["id"])), ("rows", .int(Int64(rows.count)))])))
            case .failure: reply.send(APIError.storageUnavailable("inventory").response)
            }
        }
    }

    /// `GET /v1/stores/{id}/inventory?sku=&after=&limit=` (admin, or the store's own token): the stock routing
    /// sees, by SKU name. `available` is what an order can still take: on hand less reserved and safety stock.
    func getInventory(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        let sku = r.query["sku"]
        if let sku, sku.isEmpty || sku.unicodeScalars.count > 128 { throw APIError.invalid("sku", "sku must be 1 to 128 characters") }
        let after = r.query["after"]
        if let after, after.unicodeScalars.count > 128 { throw APIError.invalid("after", "after is an SKU from next_cursor, at most 128 characters") }
        let limit = try intParameter(r, "limit", default: 500, range: 1...1000)
        var rows = engine.stockRows(slot: slot)
        let total = rows.count
        if let sku {
            rows = rows.filter { $0.sku == sku }
        } else {
            if let after { rows = rows.filter { $0.sku > after } }
            rows.sort { $0.sku < $1.sku }
        }
        let page = rows.prefix(limit)
        reply.send(jsonResponse(200, .object([
            ("store_id", .string(p["id"])),
            ("skus", .int(Int64(total))),
            ("rows", .array(page.map { row in
                .object([("sku", .string(row.sku)), ("on_hand", .int(Int64(row.onHand))), ("reserved", .int(Int64(row.reserved))),
                         ("safety", .int(Int64(row.safety))),
                         ("available", .int(Int64(max(0, row.onHand - row.reserved - row.safety))))])
            })),
            ("next_cursor", rows.count > limit ? .str(page.last?.sku) : .null),
        ])))
    }

    func postToken(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        engine.issueToken(slot: slot) { result in
            switch result {
            case .success(let token):
                reply.send(jsonResponse(201, .object([("store_id", .string(p["id"])), ("token", .string(token)),
                                                      ("token_id", .string(Engine.tokenID(hash: Crypto.sha256Hex(Array(token.utf8))))),
                                                      ("note", .string("shown once; only its hash is stored"))])))
            case .failure: reply.send(APIError.storageUnavailable("the token").response)
            }
        }
    }

    /// `GET /v1/stores/{id}/tokens` (admin): the store's tokens by id and issue time (never the tokens themselves).
    func listTokens(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        let rows: [(hash: String, createdAt: String)]
        do { rows = try engine.readers.read { try Repository.tokens($0, slot: slot) } } catch { throw APIError.storageUnavailable() }
        reply.send(jsonResponse(200, .object([("store_id", .string(p["id"])), ("tokens", .array(rows.map { t in
            .object([("token_id", .string(Engine.tokenID(hash: t.hash))), ("created_at", .string(t.createdAt))])
        }))])))
    }

    /// `DELETE /v1/stores/{id}/tokens[/{token_id}]` (admin): revokes every token of the store, or one (a lost device,
    /// someone who left). Refused at once; 404 for a token id the store does not have.
    func revokeTokens(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        let tokenID = p.params["token_id"]
        engine.revokeTokens(slot: slot, tokenID: tokenID) { result in
            switch result {
            case .success(0) where tokenID != nil:
                reply.send(APIError(404, "not_found", "store '\(p["id"])' has no token '\(tokenID!)'", field: "token_id").response)
            case .success(let n): reply.send(jsonResponse(200, .object([("store_id", .string(p["id"])), ("revoked", .int(Int64(n)))])))
            case .failure: reply.send(APIError.storageUnavailable("the revocation").response)
            }
        }
    }

    func assignments(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        let after = Int64(try intParameter(r, "after", default: 0, range: 0...Int.max))
        let limit = try intParameter(r, "limit", default: 100, range: 1...1000)
        var wait = 0.0
        if let w = r.query["wait"] {
            guard let v = Double(w), v >= 0, v <= maxWaitSeconds else {
                throw APIError.invalid("wait", "wait must be 0 to \(Int(maxWaitSeconds)) seconds")
            }
            wait = v
        }
        let open: Bool
        switch r.query["open"] {
        case nil, "false": open = false
        case "true": open = true
        default: throw APIError.invalid("open", "open is true or false")
        }
        if open {
            // A one-off listing to start from: following it with open=true would hide cancellations.
            guard wait == 0 else { throw APIError.invalid("wait", "open=true lists what is open now; follow its next_cursor without open to wait") }
            let (rows, newest) = try engine.readers.read { try Repository.openAssignments($0, slot: slot, after: after, limit: limit) }
            let cursor = rows.count == limit ? rows.last?.position ?? after : max(after, newest)
            return reply.send(jsonResponse(200, .object([
                ("assignments", .array(rows.map(App.assignmentJSON))), ("next_cursor", .string(String(cursor))),
            ])))
        }
        let engine = self.engine
        let limitRows = limit
        let read: @Sendable () -> Response = {
            do {
                let rows = try engine.readers.read { try Repository.assignments($0, slot: slot, after: after, limit: limitRows) }
                return jsonResponse(200, .object([
                    ("assignments", .array(rows.map(App.assignmentJSON))),
                    ("next_cursor", .string(String(rows.last?.position ?? after))),
                ]))
            } catch {
                return APIError.storageUnavailable().response
            }
        }
        // Nothing committed past the cursor: answer from memory (no database read); park if asked to wait.
        let nothingNew = after >= engine.feed.newestPosition(slot: slot)
        let first = nothingNew ? jsonResponse(200, .object([("assignments", .array([])), ("next_cursor", .string(String(after)))])) : read()
        if wait == 0 || first.status != 200 || !first.body.starts(with: Array(#"{"assignments":[]"#.utf8)) {
            reply.send(first)
            return
        }
        // Long poll: suspended (no thread held) until an assignment for this store commits or the wait ends. The
        // token is checked again then: one revoked meanwhile gets 401, not the assignments.
        let storeID = p["id"]
        // A stop may end this wait with 503 (the store polls again); other requests are let finish.
        reply.reply.markInterruptible()
        let waiter = FeedHub.Waiter { [self] in
            reply.send((try? requireStoreAccess(r, storeID: storeID)) != nil ? read() : APIError.unauthorized.response)
        }
        engine.feed.add(waiter, slot: slot)
        DispatchQueue.global().asyncAfter(deadline: .now() + wait) {
            engine.feed.remove(waiter, slot: slot)
            waiter.run()
        }
        // A commit may have landed between the first read and the registration.
        if read().body.count != first.body.count {
            engine.feed.remove(waiter, slot: slot)
            waiter.run()
        }
    }

    /// An integer query parameter: absent gives `default`; present must be digits within `range`.
    func intParameter(_ r: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws(APIError) -> Int {
        guard let text = r.query[name] else { return value }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int(text), range.contains(v) else {
            throw APIError.invalid(name, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }

    func decode<T: Decodable>(_ t: T.Type, _ body: [UInt8]) throws(APIError) -> T {
        do { return try CanonicalJSON.decode(t, body) } catch {
            throw APIError(400, error.field.isEmpty ? "invalid_json" : "invalid_field", error.message, field: error.field.isEmpty ? nil : error.field)
        }
    }
}

/// One answer for several actions (a platform cancellation of an order and its parts): once all have answered,
/// the first failure that a retry could fix (5xx) if any, else the first answer (the order's own).
final class AllReplies: ResponseSink {
    private let state: Mutex<(remaining: Int, first: Response?, failure: Response?)>
    private let then: any ResponseSink

    init(count: Int, then: any ResponseSink) {
        state = Mutex((count, nil, nil))
        self.then = then
    }

    func send(_ r: Response) {
        let done: Response? = state.withLock { s in
            if s.first == nil { s.first = r }
            if r.status >= 500 && s.failure == nil { s.failure = r }
            s.remaining -= 1
            return s.remaining == 0 ? s.failure ?? s.first : nil
        }
        if let done { then.send(done) }
    }
}

/// Ignores the answer it is given and runs `then` (work to do once another request's commit is settled).
struct AfterCommit: ResponseSink {
    let then: @Sendable () -> Void
    func send(_ r: Response) { then() }
}

/// Counts and logs the one answer to a request, then forwards it.
final class ReplyCounter: ResponseSink {
    let reply: Reply
    let onSend: @Sendable (Int) -> Void
    let sent = Atomic<Bool>(false)

    init(reply: Reply, onSend: @escaping @Sendable (Int) -> Void) {
        self.reply = reply
        self.onSend = onSend
    }

    func send(_ r: Response) {
        guard !sent.exchange(true, ordering: .acquiringAndReleasing) else { return }
        onSend(r.status)
        reply.send(r)
    }
}

/// Anything that can answer a request once.
protocol ResponseSink: Sendable {
    func send(_ r: Response)
}

extension Reply: ResponseSink {}

/// Turns the engine's answers into the platform's: success (and an idempotency conflict or an
/// illegal cancel, which retrying cannot fix) gets the platform's success body; a storage failure
/// passes through so the platform retries.
struct PlatformReply: ResponseSink {
    let ack: Response
    let reply: ReplyCounter
    let log: Logger
    let platform: String
    let orderID: String

    func send(_ r: Response) {
        switch r.status {
        case 200..<300: reply.send(ack)
        case 409:
            log.warn("platform event acknowledged without effect", [("platform", .string(platform)), ("platform_order_id", .string(orderID)),
                                                                    ("answer", .string(String(decoding: r.body.prefix(200), as: UTF8.self)))])
            reply.send(ack)
        default: reply.send(r)
        }
    }
}
