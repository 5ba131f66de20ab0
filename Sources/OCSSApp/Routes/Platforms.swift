import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

/// Platform routes: webhooks, credentials, the merchant webhook and its outbox.
extension App {
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
        engine.setOutboundWebhook(url: b.url, secret: b.secret) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, .object([("url", .string(b.url)), ("configured", .bool(true))])))
            case .failure(let why): reply.send(APIError(why, subject: "the webhook").response)
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
            throw APIError(
                415, "unsupported_media_type", "\(p["platform"]) sends \(adapter.contentTypes.joined(separator: " or "))", field: "Content-Type")
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
            throw APIError(
                error.kind == .signature ? 401 : 400, error.kind == .signature ? "bad_signature" : "invalid_field",
                error.message, field: error.field)
        }
        // WooCommerce routes an order when an update moves it to processing (it was created awaiting payment). An order
        // paid before the shop was connected to ocss is one its old process is fulfilling: routing it on its next
        // update (a note, a status change) would fulfil it twice.
        if case .event(let order) = outcome, p["platform"] == "woocommerce", r.header("x-wc-webhook-topic") == "order.updated",
            order.event == "order.paid", let since = order.paid_at ?? order.created_at,
            let connected = try engine.readers.read({ try Repository.setting($0, Engine.connectedKey(p["platform"])) }), since < connected
        {
            log.info(
                "platform order paid before the platform was connected: not routed",
                [
                    ("platform", .string(p["platform"])), ("platform_order_id", .string(order.platform_order_id)), ("paid_at", .string(since)),
                    ("connected_at", .string(connected)),
                ])
            return reply.send(ack)
        }
        switch outcome {
        case .ignored: return reply.send(ack)
        case .needsDetail(let pid, _):
            guard let credentials else {
                throw APIError(503, "not_configured", "no credentials for \(p["platform"]): cannot fetch the order detail", field: "platform")
            }
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
                    log.warn(
                        "detail fetch failed", [("platform", .string(platform)), ("platform_order_id", .string(pid)), ("error", .string("\(error)"))])
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
            throw AdapterError(
                .signature,
                "the signed \(field) is \(skew) s from the server's time (more than \(webhookFreshnessSeconds) s): a replayed or delayed delivery",
                field: field)
        }
    }

    /// A canonical platform event into the engine; the platform hears its own success body.
    func routeEvent(_ order: CanonicalOrder, platform: String, ack: Response, reply: ReplyCounter) throws(APIError) {
        // Orders are found by the canonical platform (jd_daojia pushes make "jd" orders).
        let canonical = order.platform
        let log = self.log, platformOrderID = order.platform_order_id
        /// Acknowledged, or the platform would redeliver an event nothing can change, and then disable the webhook.
        @Sendable func acknowledgeWithoutEffect(_ code: String) {
            log.warn(
                "platform event acknowledged without effect",
                [("platform", .string(canonical)), ("platform_order_id", .string(platformOrderID)), ("reason", .string(code))])
            reply.send(ack)
        }
        switch order.event {
        case "order.created", "order.paid":
            if order.lines.isEmpty { return reply.send(ack) }  // nothing a store can fill (gift cards, digital goods)
            let (order, clipped) = order.clippingBuyerText()
            if !clipped.isEmpty {
                log.warn(
                    "buyer text cut to its limit",
                    [
                        ("platform", .string(canonical)), ("platform_order_id", .string(order.platform_order_id)),
                        ("fields", .array(clipped.map { .string($0) })),
                    ])
            }
            if let problem = order.validate() { throw APIError(400, "invalid_field", problem.message, field: problem.field) }
            engine.submit(order: order, fromPlatform: true) { result in
                switch result {
                case .success: reply.send(ack)
                case .failure(let why) where why.retryCannotFix: acknowledgeWithoutEffect(why.apiError.code)
                case .failure(let why): reply.send(why.apiError.response)
                }
            }
        case "order.cancelled", "order.refund_requested":
            engine.cancelPlatformOrder(platform: canonical, platformOrderID: order.platform_order_id, event: order.event) { outcome in
                switch outcome {
                case .done: reply.send(ack)
                // Cancelling what is already shipped or delivered, say: sending it again cannot change that.
                case .refused(let why) where why != .storageUnavailable: acknowledgeWithoutEffect(why.apiError.code)
                case .refused(let why): reply.send(why.apiError.response)
                }
            }
        default:
            reply.send(ack)
        }
    }

    static let knownPlatforms: Set<String> = [
        "shopify", "woocommerce", "taobao", "jd", "jd_daojia", "pinduoduo", "meituan", "eleme", "eleme_retail", "youzan",
    ]

    /// `PUT /v1/platforms/{platform}/credentials` (admin): what ocss needs to call the platform.
    func putCredentials(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let platform = p["platform"]
        guard App.knownPlatforms.contains(platform) else { throw APIError(404, "not_found", "unknown platform '\(platform)'", field: "platform") }
        let c = try decode(PlatformCredentials.self, r.body)
        guard c.base_url.hasPrefix("http://") || c.base_url.hasPrefix("https://") else {
            throw APIError.invalid("base_url", "base_url must be http:// or https://")
        }
        if let m = c.sign_method, !["md5", "hmac", "hmac-sha256"].contains(m) {
            throw APIError.invalid("sign_method", "sign_method is md5, hmac or hmac-sha256")
        }
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
            let c = try? JSONCoding.decode(PlatformCredentials.self, Array(text.utf8))
        else { throw APIError.notFound("credentials for \(p["platform"])") }
        reply.send(jsonResponse(200, App.credentialsJSON(p["platform"], c)))
    }

    /// Credentials as shown: never the secrets, only whether they are set.
    static func credentialsJSON(_ platform: String, _ c: PlatformCredentials) -> JSON {
        .object([
            ("platform", .string(platform)), ("base_url", .string(c.base_url)), ("app_key", .str(c.app_key)),
            ("has_app_secret", .bool(c.app_secret != nil)), ("has_access_token", .bool(c.access_token != nil)),
            ("has_session", .bool(c.session != nil)), ("sign_method", .str(c.sign_method)),
            ("status_calls", .bool(StatusCalls.platforms.contains(platform))),
        ])
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
        reply.send(
            jsonResponse(
                200,
                .object([
                    ("counts", .object(counts.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
                    ("next_cursor", .string(String(rows.last?.id ?? after))),
                    (
                        "messages",
                        .array(
                            rows.map { m in
                                .object([
                                    ("id", .int(m.id)), ("order_id", .int(m.orderID)), ("event", .string(m.event)), ("target", .string(m.target)),
                                    ("status", .string(m.status)), ("attempts", .int(Int64(m.attempts))), ("last_error", .str(m.lastError)),
                                    ("created_at", .string(m.createdAt)), ("payload", .raw(m.payload)),
                                ])
                            })
                    ),
                ])))
    }

    func retryOutbox(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = Int64(p["id"]) else { throw APIError.invalid("id", "outbox id must be an integer") }
        engine.retryDeadMessage(id: id) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, .object([("id", .int(id)), ("status", .string("pending"))])))
            case .failure(let why): reply.send(APIError(why, subject: "message \(id)").response)
            }
        }
    }
}
