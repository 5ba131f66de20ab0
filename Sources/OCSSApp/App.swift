import Dispatch
import OCSSCore
package import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
package import OCSSEngine

/// Who is calling.
enum Principal: Equatable, Sendable {
    case admin
    case store(Int32)

    var isAdmin: Bool { self == .admin }
}

/// The route table and handlers: the HTTP face of the engine.
package final class App: Responder {
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
    /// One-time store pairing links (`POST /v1/stores/{id}/links`): the code's hash -> the store and until when.
    let pairLinks = Mutex<[String: (slot: Int32, until: Double)]>([:])

    /// The node's part in a cluster (PostgreSQL), for health and metrics; nil for a single node.
    let node: ClusterNode?
    /// Whether the engine under this app decides (false on a cluster follower, whose writer is never used).
    let leads: Bool

    package init(
        engine: Engine, adminToken: String, openAPI: String?, maxWaitSeconds: Double = 30, benchEndpoints: Bool = false,
        retention: Retention? = nil, webhookFreshnessSeconds: Int = 600, authFailuresPerMinute: Int = 20, node: ClusterNode? = nil,
        leads: Bool = true
    ) {
        self.node = node
        self.leads = leads
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

    package func respond(to request: Request, reply: Reply) {
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
            log.info(
                "request",
                [
                    ("request_id", .string(id)), ("method", .string(request.method)), ("route", .string(route)),
                    ("status", .int(Int64(status))), ("ms", .double(dt * 1000)),
                ])
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
            let wait = throttle.retryAfter(client, now: clock.now())
        {
            throttle.throttled.add(1, ordering: .relaxed)
            let e = APIError(
                429, "too_many_auth_failures", "too many failed credentials from this address; retry in \(wait) s",
                field: request.header("authorization") != nil ? "Authorization" : "token")
            return counted.send(jsonResponse(429, e.body, headers: [("Retry-After", String(wait))]))
        }
        do {
            try matched.handler(self)(request, try authorize(request, matched.access, params), counted)
        } catch is SignInRequired {
            // A person without a session: a page sends them to the sign-in page; a form post or a fetch gets 401.
            counted.send(
                request.method == "GET"
                    ? Response(status: 303, headers: [("Location", "/login"), ("Cache-Control", "no-store")], body: [])
                    : APIError(401, "unauthorized", "sign in first: this device is not paired, or its token was revoked", field: "Cookie").response)
        } catch let e as APIError where matched.page && request.method == "GET" {
            // A person's page: the same status and words, as a page to read, not JSON.
            counted.send(html(e.status, StorePages.message(e.message)))
        } catch let e as APIError {
            counted.send(e.response)
        } catch {
            log.error("handler failed", [("request_id", .string(id)), ("error", .string("\(error)"))])
            counted.send(APIError(500, "internal", "internal error (request \(id))").response)
        }
    }

    /// The route's access, checked: who is calling, and for a store's route that store's slot.
    func authorize(_ r: Request, _ access: Access, _ params: [String: String]) throws -> RouteContext {
        var ctx = RouteContext(params: params)
        switch access {
        case .open: break
        case .admin: try requireAdmin(r)
        case .token:
            guard let who = principal(r) else { throw APIError.unauthorized }
            ctx.principal = who
        case .store(let name):
            ctx.storeSlot = try requireStoreAccess(r, storeID: params[name] ?? "")
            ctx.principal = principal(r)
        case .storeDevice:
            guard let token = App.cookie(App.storeCookieName, in: r), case .store(let slot)? = principal(token: token) else {
                throw SignInRequired()
            }
            ctx.storeSlot = slot
            ctx.principal = .store(slot)
        }
        return ctx
    }

    // MARK: auth

    func principal(_ r: Request) -> Principal? {
        guard let h = r.header("authorization"), h.hasPrefix("Bearer ") else { return nil }
        return principal(token: String(h.dropFirst(7)))
    }

    /// Who a token is: the admin, a store, or nobody.
    func principal(token: String) -> Principal? {
        // A token once resolved keeps its principal until some token is revoked (the engine's token generation
        // moves): skip the hash until then. A lookup that raced a revocation is used once, not remembered.
        let generation = engine.tokenGeneration.load(ordering: .acquiring)
        if let known = knownTokens.withLock({ $0[token] }), known.generation == generation { return known.who }
        let hash = Array(Crypto.sha256Hex(Array(token.utf8)).utf8)
        let who: Principal? =
            Crypto.constantTimeEqual(hash, adminTokenHash)
            ? .admin
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

/// A store device's page without a paired device (no cookie, or its token revoked): the person signs in first.
struct SignInRequired: Error {}
