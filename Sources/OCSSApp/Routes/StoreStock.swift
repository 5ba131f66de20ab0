import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

/// A store's own routes: its stock, its device tokens, its assignment feed.
extension App {
    struct InventoryRow: Decodable {
        var sku: String
        var qty: Int
    }

    func putInventory(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        let rows = try decode([InventoryRow].self, r.body)
        for (i, row) in rows.enumerated() {
            guard !row.sku.isEmpty, row.sku.unicodeScalars.count <= 128 else {
                throw APIError.invalid("[\(i)].sku", "sku must be 1 to 128 characters")
            }
            guard (0...1_000_000_000).contains(row.qty) else { throw APIError.invalid("[\(i)].qty", "qty must be between 0 and 1000000000") }
        }
        engine.setInventory(slot: slot, rows: rows.map { ($0.sku, Int32($0.qty)) }) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, .object([("store_id", .string(p["id"])), ("rows", .int(Int64(rows.count)))])))
            case .failure: reply.send(APIError.storageUnavailable("inventory").response)
            }
        }
    }

    struct StockoutBody: Decodable { var sku: String }

    /// `POST /v1/stores/{id}/stockouts` (admin, or the store's own token): the shelf is empty of a SKU; nothing more is
    /// routed to this store for it until its next inventory update. Orders already holding it keep it.
    func postStockout(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        let b = try decode(StockoutBody.self, r.body)
        guard !b.sku.isEmpty, b.sku.unicodeScalars.count <= 128 else { throw APIError.invalid("sku", "sku must be 1 to 128 characters") }
        let storeID = p["id"]
        engine.markOutOfStock(slot: slot, sku: b.sku) { result in
            switch result {
            case .success(let row):
                reply.send(
                    jsonResponse(
                        200,
                        .object([
                            ("store_id", .string(storeID)), ("sku", .string(b.sku)), ("on_hand", .int(Int64(row.onHand))),
                            ("reserved", .int(Int64(row.reserved))), ("available", .int(0)),
                        ])))
            case .failure(let why): reply.send(APIError(why, subject: "sku '\(b.sku)' in store '\(storeID)'").response)
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
        reply.send(
            jsonResponse(
                200,
                .object([
                    ("store_id", .string(p["id"])),
                    ("skus", .int(Int64(total))),
                    (
                        "rows",
                        .array(
                            page.map { row in
                                .object([
                                    ("sku", .string(row.sku)), ("on_hand", .int(Int64(row.onHand))), ("reserved", .int(Int64(row.reserved))),
                                    ("safety", .int(Int64(row.safety))),
                                    ("available", .int(Int64(max(0, row.onHand - row.reserved - row.safety)))),
                                ])
                            })
                    ),
                    ("next_cursor", rows.count > limit ? .str(page.last?.sku) : .null),
                ])))
    }

    func postToken(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        engine.issueToken(slot: slot) { result in
            switch result {
            case .success(let token):
                reply.send(
                    jsonResponse(
                        201,
                        .object([
                            ("store_id", .string(p["id"])), ("token", .string(token)),
                            ("token_id", .string(Engine.tokenID(hash: Crypto.sha256Hex(Array(token.utf8))))),
                            ("note", .string("shown once; only its hash is stored")),
                        ])))
            case .failure: reply.send(APIError.storageUnavailable("the token").response)
            }
        }
    }

    /// `GET /v1/stores/{id}/tokens` (admin): the store's tokens by id and issue time (never the tokens themselves).
    func listTokens(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let (slot, _) = engine.store(id: p["id"]) else { throw APIError.notFound("store '\(p["id"])'") }
        let rows: [(hash: String, createdAt: String)]
        do { rows = try engine.readers.read { try Repository.tokens($0, slot: slot) } } catch { throw APIError.storageUnavailable() }
        reply.send(
            jsonResponse(
                200,
                .object([
                    ("store_id", .string(p["id"])),
                    (
                        "tokens",
                        .array(
                            rows.map { t in
                                .object([("token_id", .string(Engine.tokenID(hash: t.hash))), ("created_at", .string(t.createdAt))])
                            })
                    ),
                ])))
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
            return reply.send(
                jsonResponse(
                    200,
                    .object([
                        ("assignments", .array(rows.map(App.assignmentJSON))), ("next_cursor", .string(String(cursor))),
                    ])))
        }
        let engine = self.engine
        // Most polls: nothing new and no wait. Answered from memory at once.
        if wait == 0 && after >= engine.feed.newestPosition(slot: slot) {
            return reply.send(
                jsonResponse(200, .object([("assignments", .array([])), ("next_cursor", .string(String(after)))])))
        }
        let limitRows = limit
        // The feed after the cursor: the rows (empty when nothing is new), or the storage error.
        let read: @Sendable () -> Result<[AssignmentRow], any Error> = {
            // Nothing committed past the cursor: answered from memory (no database read).
            if after >= engine.feed.newestPosition(slot: slot) { return .success([]) }
            return Result { try engine.readers.read { try Repository.assignments($0, slot: slot, after: after, limit: limitRows) } }
        }
        let answer: @Sendable (Result<[AssignmentRow], any Error>) -> Response = { result in
            guard case .success(let rows) = result else { return APIError.storageUnavailable().response }
            return jsonResponse(
                200,
                .object([
                    ("assignments", .array(rows.map(App.assignmentJSON))),
                    ("next_cursor", .string(String(rows.last?.position ?? after))),
                ]))
        }
        let first = read()
        guard wait > 0, case .success(let rows) = first, rows.isEmpty else { return reply.send(answer(first)) }
        // Long poll: suspended (no thread held) until an assignment for this store commits or the wait ends. The
        // token is checked again then: one revoked meanwhile gets 401, not the assignments.
        let storeID = p["id"]
        // A stop may end this wait with 503 (the store polls again); other requests are let finish.
        reply.reply.markInterruptible()
        let waiter = FeedHub.Waiter { [self] in
            reply.send((try? requireStoreAccess(r, storeID: storeID)) != nil ? answer(read()) : APIError.unauthorized.response)
        }
        engine.feed.add(waiter, slot: slot)
        DispatchQueue.global().asyncAfter(deadline: .now() + wait) {
            engine.feed.remove(waiter, slot: slot)
            waiter.run()
        }
        // A commit may have landed between the first read and the registration.
        if after < engine.feed.newestPosition(slot: slot) {
            engine.feed.remove(waiter, slot: slot)
            waiter.run()
        }
    }
}
