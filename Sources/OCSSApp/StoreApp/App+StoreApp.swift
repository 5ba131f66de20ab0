import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

/// `/store`: the store's own app, served by ocss. Server-rendered pages that work without a script (forms post,
/// the server redirects back); `/store/app.js` adds live updates, countdowns, a sound and a title badge. A device is
/// paired by a one-time link (or `/login` with a store token): it gets its own store token, listed and revocable like
/// any other, in an HttpOnly cookie.
extension App {
    static let storeCookieName = "ocss_store"
    /// A pairing link lives ten minutes: long enough to walk a tablet to the counter.
    static let pairSeconds = 600.0

    /// The value of cookie `name`, if the request carries it.
    static func cookie(_ name: String, in r: Request) -> String? {
        guard let cookies = r.header("cookie") else { return nil }
        for part in cookies.split(separator: ";") {
            let kv = part.trimmingPrefix(" ").split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == name { return String(kv[1]) }
        }
        return nil
    }

    /// The form token a page's forms carry: derived from the device's own token, so another site cannot make one
    /// (the cookie is also SameSite=Strict).
    static func formToken(_ deviceToken: String) -> String { String(Crypto.sha256Hex(Array(("form:" + deviceToken).utf8)).prefix(32)) }

    /// Checks a page form's token (and, when the browser sends one, that the request comes from this origin).
    func requireFormToken(_ r: Request, _ form: [String: String]) throws(APIError) {
        guard let device = App.cookie(App.storeCookieName, in: r), form["form_token"] == App.formToken(device) else {
            throw APIError(403, "forbidden", "the form is stale: reload the page", field: "form_token")
        }
        if let origin = r.header("origin"), origin != "null", origin != App.origin(of: r) {
            throw APIError(403, "forbidden", "cross-site form", field: "Origin")
        }
    }

    // MARK: pairing

    /// `POST /v1/stores/{id}/links` (admin): a one-time link that pairs a device with the store, and its QR code.
    func postStoreLink(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        let (url, path) = pairLink(slot: slot, r)
        reply.send(
            jsonResponse(
                201,
                .object([
                    ("store_id", .string(p["id"])), ("url", .string(url)), ("path", .string(path)),
                    ("expires_in_s", .int(Int64(App.pairSeconds))), ("qr_svg", .str(QRCode(text: url).map { $0.svg(moduleSize: 6) })),
                ])))
    }

    /// A new one-time pairing link for the store in `slot`, absolute from the address the caller used.
    func pairLink(slot: Int32, _ r: Request) -> (url: String, path: String) {
        let code = Crypto.token(prefix: "pair_")
        let now = engine.clock.now()
        pairLinks.withLock { l in
            l = l.filter { $0.value.until > now }
            l[Crypto.sha256Hex(Array(code.utf8))] = (slot, now + App.pairSeconds)
        }
        let path = "/store/pair?code=\(code)"
        return (App.origin(of: r) + path, path)
    }

    /// `POST /dashboard/pair` (the admin's dashboard session): a pairing link for a store, as a QR code to scan with
    /// the store's tablet, and as text.
    func dashboardPair(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard hasSession(r) else { return reply.send(Response(status: 303, headers: [("Location", "/login")], body: [])) }
        if let origin = r.header("origin"), origin != "null", origin != App.origin(of: r) { throw APIError.forbidden }
        let id = App.formFields(r.body)["store"] ?? ""
        guard let (slot, store) = engine.store(id: id) else {
            return reply.send(html(404, StorePages.message("没有这个门店 No store '\(id)'")))
        }
        let (url, _) = pairLink(slot: slot, r)
        reply.send(html(200, StorePages.pairLinkPage(store: store, url: url, qr: QRCode(text: url)?.svg(moduleSize: 6))))
    }

    /// `GET /store/pair?code=`: what the link opens. A button confirms (a link preview fetching the page pairs
    /// nothing). `POST /store/pair`: spends the code and pairs this device.
    func storePair(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let now = engine.clock.now()
        if r.method == "GET" {
            let code = r.query["code"] ?? ""
            let link = pairLinks.withLock { $0[Crypto.sha256Hex(Array(code.utf8))] }
            guard let link, link.until > now, let store = engine.store(slot: link.slot) else {
                return reply.send(html(401, StorePages.message("链接已过期或已使用 This link has expired or was already used.")))
            }
            return reply.send(html(200, StorePages.pairConfirm(code: code, store: store)))
        }
        let code = App.formFields(r.body)["code"] ?? ""
        let link = pairLinks.withLock { $0.removeValue(forKey: Crypto.sha256Hex(Array(code.utf8))) }
        guard let link, link.until > now else {
            return reply.send(html(401, StorePages.message("链接已过期或已使用 This link has expired or was already used.")))
        }
        engine.issueToken(slot: link.slot) { [self] result in
            guard case .success(let token) = result else { return reply.send(APIError.storageUnavailable("the device's token").response) }
            engine.log.info("store device paired", [("store_slot", .int(Int64(link.slot)))])
            reply.send(App.storeSession(token: token))
        }
    }

    /// A redirect to `/store` that puts a device's store token in its cookie (a year; revoking the token ends it).
    static func storeSession(token: String) -> Response {
        Response(
            status: 303,
            headers: [
                ("Location", "/store"),
                ("Set-Cookie", "\(storeCookieName)=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000"),
                ("Cache-Control", "no-store"),
            ], body: [])
    }

    /// `POST /store/logout`: the device's token is revoked (a lost or shared device stops working at once) and the
    /// cookie cleared.
    func storeLogout(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot, let device = App.cookie(App.storeCookieName, in: r) else { throw APIError.unauthorized }
        try requireFormToken(r, App.formFields(r.body))
        let id = Engine.tokenID(hash: Crypto.sha256Hex(Array(device.utf8)))
        engine.revokeTokens(slot: slot, tokenID: id) { _ in
            reply.send(
                Response(
                    status: 303,
                    headers: [
                        ("Location", "/login"), ("Set-Cookie", "\(App.storeCookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
                        ("Cache-Control", "no-store"),
                    ], body: []))
        }
    }

    // MARK: the day's work

    /// `GET /store`: the open assignments with their deadlines and actions, and what left the list lately.
    /// `?fragment=1` answers the list alone (the script swaps it in).
    func storeHome(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot, let store = engine.store(slot: slot), let device = App.cookie(App.storeCookieName, in: r) else {
            throw APIError.unauthorized
        }
        var (open, newest) = try engine.readers.read { try Repository.openAssignments($0, slot: slot, after: 0, limit: 500) }
        // Handed to a rider or shipped: out of the store, off its list.
        open.removeAll { $0.status == "handed_over" || $0.status == "shipped" }
        let closed = try engine.readers.read { try Repository.recentlyClosedAssignments($0, slot: slot, limit: 10) }
        let view = StorePages.ListView(
            store: store, open: open.map(StorePages.Card.init), closed: closed.map(StorePages.Card.init), cursor: newest,
            deadlines: engine.deadlines(of: open.map(\.orderID)), formToken: App.formToken(device),
            message: r.query["notice"].flatMap(StorePages.Notice.init(rawValue:))?.text(r.query["arg"]),
            now: engine.clock.now())
        if r.query["fragment"] == "1" { return reply.send(html(200, StorePages.list(view), scripts: true)) }
        reply.send(html(200, StorePages.home(view), scripts: true))
    }

    /// `GET /store/feed?after=&wait=` (the device's cookie): the store's feed position, waiting up to `wait` seconds
    /// (at most 30) for it to pass `after`. The script polls this and reloads the list when it moves.
    func storeFeed(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        let after = Int64(try intParameter(r, "after", default: 0, range: 0...Int.max))
        let wait = try intParameter(r, "wait", default: 0, range: 0...30)
        let engine = self.engine
        let answer: @Sendable () -> Response = {
            jsonResponse(200, .object([("next_cursor", .string(String(engine.feed.newestPosition(slot: slot))))]))
        }
        if wait == 0 || engine.feed.newestPosition(slot: slot) > after { return reply.send(answer()) }
        reply.reply.markInterruptible()
        let waiter = FeedHub.Waiter { reply.send(answer()) }
        engine.feed.add(waiter, slot: slot)
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(wait)) {
            engine.feed.remove(waiter, slot: slot)
            waiter.run()
        }
        if engine.feed.newestPosition(slot: slot) > after {
            engine.feed.remove(waiter, slot: slot)
            waiter.run()
        }
    }

    /// `POST /store/assignments/{id}/{action}` (a page form): the same actions as the API, answered with a redirect
    /// back to the list (and what went wrong, in words, when it did).
    func storeAction(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        let pairs = App.formPairs(r.body)
        var form: [String: String] = [:]
        for (k, v) in pairs { form[k] = v }
        try requireFormToken(r, form)
        guard let aid = Int64(p["id"]), aid > 0, let action = OrderAction(rawValue: p["action"]), action != .cancel else {
            throw APIError.notFound("action \(p["action"])")
        }
        guard let a = try engine.readers.read({ try Repository.assignment($0, id: aid) }), a.slot == slot else {
            throw APIError.notFound("assignment \(aid)")
        }
        var input = ActionInput()
        if action == .reject {
            input.reason = RejectReason(rawValue: form["reason"] ?? "") ?? .other
            input.missingSKUs = pairs.filter { $0.0 == "sku" && !$0.1.isEmpty }.map(\.1)
            if !input.missingSKUs.isEmpty { input.reason = .out_of_stock }
            input.note = form["note"].flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        }
        if action == .ship {
            input.carrier = form["carrier"].flatMap { $0.isEmpty ? nil : String($0.prefix(64)) }
            input.trackingNumber = form["tracking_number"].flatMap { $0.isEmpty ? nil : String($0.prefix(64)) }
            guard input.carrier != nil, input.trackingNumber != nil else {
                return reply.send(App.backToList(.shipNeedsTracking))
            }
        }
        engine.act(orderID: a.orderID, assignmentID: aid, action: action, actor: .store(slot), input: input) { outcome in
            switch outcome {
            case .done: reply.send(App.backToList(nil))
            case .refused(let why):
                if case .illegalTransition(_, let status, _) = why { return reply.send(App.backToList(.illegal, status)) }
                reply.send(App.backToList(StorePages.Notice(why)))
            }
        }
    }

    /// `POST /store/stockouts` (a page form): the shelf is empty of a SKU.
    func storeStockout(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        let form = App.formFields(r.body)
        try requireFormToken(r, form)
        let sku = form["sku"] ?? ""
        guard !sku.isEmpty, sku.unicodeScalars.count <= 128 else { return reply.send(App.backToList(.noSKU)) }
        engine.markOutOfStock(slot: slot, sku: sku) { result in
            switch result {
            case .success: reply.send(App.backToList(.outOfStock, sku))
            case .failure(.notFound): reply.send(App.backToList(.unknownSKU, sku))
            case .failure: reply.send(App.backToList(.storage))
            }
        }
    }

    /// `POST /store/settings` (a page form): the store turns auto-accept (自动接单) on or off for itself.
    func storeSettings(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        let form = App.formFields(r.body)
        try requireFormToken(r, form)
        let on = form["auto_accept"] == "on"
        engine.setAutoAccept(slot: slot, on: on) { result in
            switch result {
            case .success: reply.send(App.backToList(on ? .autoAcceptOn : .autoAcceptOff))
            case .failure: reply.send(App.backToList(.storage))
            }
        }
    }

    static func backToList(_ notice: StorePages.Notice?, _ arg: String? = nil) -> Response {
        let location =
            notice.map { "/store?notice=" + $0.rawValue + (arg.map { "&arg=" + App.percentEncode($0) } ?? "") } ?? "/store"
        return Response(status: 303, headers: [("Location", location), ("Cache-Control", "no-store")], body: [])
    }

    /// `GET /store/print?ids=1,2,3&paper=58|80|a4`: a pick list and ticket for the store's own assignments.
    func storePrint(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot, let store = engine.store(slot: slot) else { throw APIError.unauthorized }
        let ids = Set((r.query["ids"] ?? "").split(separator: ",").compactMap { Int64($0) })
        guard !ids.isEmpty, ids.count <= 200 else { throw APIError.invalid("ids", "ids is 1 to 200 assignment ids, comma-separated") }
        let paper = r.query["paper"] ?? "80"
        guard ["58", "80", "a4"].contains(paper) else { throw APIError.invalid("paper", "paper is 58, 80 or a4") }
        let (open, _) = try engine.readers.read { try Repository.openAssignments($0, slot: slot, after: 0, limit: 500) }
        let cards = open.filter { ids.contains($0.id) }.map(StorePages.Card.init)
        guard !cards.isEmpty else { throw APIError.notFound("open assignments \(ids.sorted().map(String.init).joined(separator: ","))") }
        reply.send(html(200, StorePages.pickList(store: store, cards: cards, paper: paper, at: engine.clock.now())))
    }

    /// `GET /store/app.js`: the page's one script (served from here: the pages' policy allows scripts from this
    /// origin only).
    func storeScript(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        reply.send(
            Response(
                status: 200,
                headers: [("Content-Type", "text/javascript; charset=utf-8"), ("Cache-Control", "no-cache")],
                body: Array(StorePages.script.utf8)))
    }

    /// Every `name=value` of a form, in order (a name may repeat: the SKUs of a rejection).
    static func formPairs(_ body: [UInt8]) -> [(String, String)] {
        String(decoding: body, as: UTF8.self).split(separator: "&").compactMap { pair in
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard let k = kv.first else { return nil }
            return (percentDecode(String(k)), kv.count > 1 ? percentDecode(String(kv[1])) : "")
        }
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(b)))
            default:
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
