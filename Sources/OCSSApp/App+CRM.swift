import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import OCSSEngine

/// Customers, promotion campaigns and codes, redemptions, analytics.
extension App {
    /// A stored payload as non-admins see it (split-off parts and rows written before masking existed).
    static func masked(payload: String) -> String {
        guard let o = try? JSONCoding.decode(CanonicalOrder.self, Array(payload.utf8)) else { return "{}" }
        return String(decoding: CanonicalJSON.encode(Engine.masked(o, names: nil)), as: UTF8.self)
    }

    // MARK: - Customers

    func customerJSON(_ c: CustomerRow) -> JSON {
        .object([
            ("customer_id", .int(c.id)), ("phone", .str(c.phone)), ("name", .str(c.name)),
            ("addresses", .raw(c.addresses)), ("channels", .raw(c.channels)), ("order_count", .int(c.orderCount)),
            ("total_spend_minor", .int(c.totalSpendMinor)), ("spend_by_currency", .raw(c.spendByCurrency)),
            ("first_order_at", .str(c.firstOrderAt)), ("last_order_at", .str(c.lastOrderAt)), ("erased_at", .str(c.erasedAt)),
        ])
    }

    /// `GET /v1/customers?phone=...` (admin): search by phone, in any common format.
    func searchCustomers(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let raw = r.query["phone"], !raw.isEmpty else { throw APIError.invalid("phone", "phone is required") }
        guard let phone = PhoneNumber.e164(raw) else { throw APIError.invalid("phone", "not a phone number") }
        let found = try engine.readers.read { try Repository.customer($0, phone: phone) }
        reply.send(jsonResponse(200, .object([("customers", .array(found.map { [customerJSON($0)] } ?? []))])))
    }

    /// `GET /v1/customers/{id}` (admin).
    func getCustomer(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = Int64(p["id"]), id > 0 else { throw APIError.invalid("id", "customer id must be a positive integer") }
        guard let c = try engine.readers.read({ try Repository.customer($0, id: id) }) else { throw APIError.notFound("customer \(id)") }
        reply.send(jsonResponse(200, customerJSON(c)))
    }

    /// `POST /v1/customers/{id}/erase` (admin): anonymise on the customer's request; totals stay for analytics.
    func eraseCustomer(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let id = Int64(p["id"]), id > 0 else { throw APIError.invalid("id", "customer id must be a positive integer") }
        engine.eraseCustomer(id: id) { [self] result in
            switch result {
            case .success(let c): reply.send(jsonResponse(200, c.map(customerJSON) ?? .object([("customer_id", .int(id))])))
            case .failure(let why): reply.send(APIError(why, subject: "customer \(id)").response)
            }
        }
    }

    // MARK: - Campaigns

    struct CampaignBody: Decodable {
        struct Benefit: Decodable {
            var kind: String
            var amount_minor: Int64?
            var percent: Int?
            var gift: String?
        }
        var name: String
        var benefit: Benefit
        var starts_at: String
        var ends_at: String
        var store_ids: [String]?
        var per_phone_limit: Int?
    }

    /// `PUT /v1/campaigns/{id}` (admin): creates or replaces a campaign.
    func putCampaign(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let id = p["id"]
        guard (1...64).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw APIError.invalid("id", "campaign id is 1-64 letters, digits, '-' or '_'")
        }
        let b = try decode(CampaignBody.self, r.body)
        guard !b.name.isEmpty, b.name.unicodeScalars.count <= 200 else { throw APIError.invalid("name", "1-200 characters") }
        let benefit: JSON
        switch b.benefit.kind {
        case "amount":
            guard let a = b.benefit.amount_minor, a > 0 else { throw APIError.invalid("benefit.amount_minor", "an amount off > 0 in minor units") }
            benefit = .object([("kind", .string("amount")), ("amount_minor", .int(a))])
        case "percent":
            guard let pc = b.benefit.percent, (1...100).contains(pc) else { throw APIError.invalid("benefit.percent", "1...100") }
            benefit = .object([("kind", .string("percent")), ("percent", .int(Int64(pc)))])
        case "gift":
            guard let g = b.benefit.gift, !g.isEmpty, g.unicodeScalars.count <= 200 else {
                throw APIError.invalid("benefit.gift", "the gift, 1-200 characters")
            }
            benefit = .object([("kind", .string("gift")), ("gift", .string(g))])
        default:
            throw APIError.invalid("benefit.kind", "amount, percent or gift")
        }
        guard let start = parseRFC3339(b.starts_at) else { throw APIError.invalid("starts_at", "an RFC 3339 instant") }
        guard let end = parseRFC3339(b.ends_at), end > start else { throw APIError.invalid("ends_at", "an RFC 3339 instant after starts_at") }
        var slots: [Int32]?
        if let ids = b.store_ids {
            slots = try ids.enumerated().map { i, sid throws(APIError) in
                guard let (slot, _) = engine.store(id: sid) else { throw APIError.invalid("store_ids[\(i)]", "unknown store '\(sid)'") }
                return slot
            }
        }
        let limit = b.per_phone_limit ?? 1
        guard (1...1000).contains(limit) else { throw APIError.invalid("per_phone_limit", "1...1000") }
        let row = CampaignRow(
            id: id, name: b.name, benefit: benefit.text, startsAt: rfc3339(start), endsAt: rfc3339(end), stores: slots,
            perPhoneLimit: limit, createdAt: rfc3339(engine.clock.now()))
        engine.saveCampaign(row) { [self] result in
            switch result {
            case .success: reply.send(jsonResponse(200, campaignJSON(row, issued: nil, redeemed: nil)))
            case .failure(let why): reply.send(APIError(why, subject: "the campaign").response)
            }
        }
    }

    func campaignJSON(_ c: CampaignRow, issued: Int64?, redeemed: Int64?) -> JSON {
        var o: [(String, JSON)] = [
            ("campaign_id", .string(c.id)), ("name", .string(c.name)), ("benefit", .raw(c.benefit)),
            ("starts_at", .string(c.startsAt)), ("ends_at", .string(c.endsAt)),
            ("store_ids", c.stores.map { .array($0.compactMap { engine.store(slot: $0).map { .string($0.id) } }) } ?? .null),
            ("per_phone_limit", .int(Int64(c.perPhoneLimit))),
        ]
        if let issued { o.append(("issued", .int(issued))) }
        if let redeemed { o.append(("redeemed", .int(redeemed))) }
        return .object(o)
    }

    /// `GET /v1/campaigns/{id}` (admin): the campaign with codes issued and redeemed.
    func getCampaign(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (c, codes) = try engine.readers.read { db in (try Repository.campaign(db, id: p["id"]), try Repository.codes(db, campaignID: p["id"])) }
        guard let c else { throw APIError.notFound("campaign '\(p["id"])'") }
        reply.send(jsonResponse(200, campaignJSON(c, issued: Int64(codes.count), redeemed: Int64(codes.filter { $0.redeemedAt != nil }.count))))
    }

    struct CodesBody: Decodable {
        var count: Int?
        var phones: [String]?
        /// Bind one code to each of this many customers (most recent orders first).
        var customers: Int?
    }

    /// `POST /v1/campaigns/{id}/codes` (admin): N new codes, optionally bound to phones or to customers.
    func postCodes(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(CodesBody.self, r.body)
        guard try engine.readers.read({ try Repository.campaign($0, id: p["id"]) }) != nil else { throw APIError.notFound("campaign '\(p["id"])'") }
        var phones: [String] = []
        for (i, raw) in (b.phones ?? []).enumerated() {
            guard let e = PhoneNumber.e164(raw) else { throw APIError.invalid("phones[\(i)]", "not a phone number") }
            phones.append(e)
        }
        if let n = b.customers {
            guard (1...100_000).contains(n) else { throw APIError.invalid("customers", "1...100000") }
            phones += try engine.readers.read { try Repository.customerPhones($0, limit: n) }
        }
        let count = b.count ?? phones.count
        guard (1...100_000).contains(count) else { throw APIError.invalid("count", "1...100000 codes per call") }
        guard phones.count <= count else { throw APIError.invalid("count", "fewer codes than phones to bind") }
        let campaign = p["id"]
        let bound = min(phones.count, count)
        engine.issueCodes(campaignID: campaign, count: count, phones: phones) { result in
            switch result {
            case .success(let codes):
                var o: [(String, JSON)] = [
                    ("campaign_id", .string(campaign)), ("issued", .int(Int64(codes.count))),
                    ("bound", .int(Int64(bound))),
                    ("export", .string("/v1/campaigns/\(campaign)/codes.csv")),
                ]
                if codes.count <= 1000 { o.append(("codes", .array(codes.map { .string(PromoCode.display($0)) }))) }
                reply.send(jsonResponse(201, .object(o)))
            case .failure(is CodeSpaceExhausted):
                reply.send(APIError(503, "code_space", "could not find unused codes; retry").response)
            case .failure:
                reply.send(APIError.storageUnavailable("the codes").response)
            }
        }
    }

    /// `GET /v1/campaigns/{id}/codes.csv` (admin): every code, its bound phone and state, for printing or a CRM.
    func codesCSV(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (campaign, codes) = try engine.readers.read { db in
            (try Repository.campaign(db, id: p["id"]), try Repository.codes(db, campaignID: p["id"]))
        }
        guard campaign != nil else { throw APIError.notFound("campaign '\(p["id"])'") }
        var out = CSVText.utf8BOM + "code,phone,issued_at,redeemed_at\n"
        for c in codes { out += "\(PromoCode.display(c.code)),\(c.phone ?? ""),\(c.issuedAt),\(c.redeemedAt ?? "")\n" }
        reply.send(
            Response(
                status: 200,
                headers: [
                    ("Content-Type", "text/csv; charset=utf-8"),
                    ("Content-Disposition", "attachment; filename=\"\(p["id"])-codes.csv\""),
                ], body: Array(out.utf8)))
    }

    struct RedemptionBody: Decodable {
        var code: String
        var phone: String
        var store_id: String
    }

    /// `POST /v1/redemptions {code, phone, store_id}` with the store's token (or admin).
    func postRedemption(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(RedemptionBody.self, r.body)
        let slot = try requireStoreAccess(r, storeID: b.store_id)
        guard let phone = PhoneNumber.e164(b.phone) else { throw APIError.invalid("phone", "not a phone number") }
        guard b.code.unicodeScalars.count <= 64 else { throw APIError.invalid("code", "not a code") }
        engine.redeem(code: b.code, phone: phone, storeSlot: slot) { result, detail in
            let (status, field, message): (Int, String?, String) =
                switch result {
                case .redeemed: (200, nil, "redeemed")
                case .unknown_code: (404, "code", "no such code (check for typos)")
                case .wrong_phone: (403, "phone", "this code belongs to another phone number")
                case .not_started: (422, "code", "the campaign has not started")
                case .expired: (410, "code", "the campaign has ended")
                case .store_not_eligible: (403, "store_id", "this store does not take part in the campaign")
                case .already_redeemed: (409, "code", "the code was already used")
                case .phone_limit_reached: (409, "phone", "this phone number has used its codes for the campaign")
                case .locked_out: (429, nil, "too many failed attempts; locked until \(detail ?? "later")")
                }
            if detail == "storage" { return reply.send(APIError.storageUnavailable("the redemption").response) }
            if status == 200 {
                reply.send(
                    jsonResponse(
                        200,
                        .object([
                            ("result", .string("redeemed")), ("code", .string(PromoCode.display(PromoCode.normalise(b.code) ?? b.code))),
                            ("store_id", .string(b.store_id)), ("phone", .string(PhoneNumber.masked(phone))),
                        ])))
            } else {
                let e = APIError(status, result.rawValue, message, field: field)
                reply.send(jsonResponse(status, e.body, headers: status == 429 ? [("Retry-After", "900")] : []))
            }
        }
    }

    // MARK: - Analytics

    /// The day window of an analytics query: `from`/`to` as YYYY-MM-DD, default the last 30 days to today, in the
    /// business time zone.
    func window(_ r: Request) throws -> (String, String) {
        let today = BusinessDay.of(rfc3339(engine.clock.now()))
        let to = r.query["to"] ?? today
        guard LocalDate.dayNumber(to) != nil else { throw APIError.invalid("to", "a date YYYY-MM-DD") }
        let from =
            try r.query["from"]
            ?? {
                guard let d = LocalDate.dayNumber(to) else { throw APIError.invalid("to", "a date YYYY-MM-DD") }
                return LocalDate.string(dayNumber: d - 29)
            }()
        guard let a = LocalDate.dayNumber(from), let b = LocalDate.dayNumber(to), a <= b else {
            throw APIError.invalid("from", "a date YYYY-MM-DD, not after to")
        }
        guard b - a < 3660 else { throw APIError.invalid("from", "a window of at most 10 years") }
        return (from, to)
    }

    /// `GET /v1/analytics/sales?from&to&by=day|platform|store|province|city` (admin).
    func analyticsSales(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (from, to) = try window(r)
        guard let by = Analytics.SalesKey(rawValue: r.query["by"] ?? "day") else {
            throw APIError.invalid("by", "day, platform, store, province or city")
        }
        let rows = try engine.readers.read { try Analytics.sales($0, from: from, to: to, by: by) }
        reply.send(
            jsonResponse(
                200,
                .object([
                    ("from", .string(from)), ("to", .string(to)), ("by", .string(by.rawValue)),
                    ("time_zone", .string(businessTimeZone)),
                    (
                        "rows",
                        .array(
                            rows.map {
                                .object([
                                    ("key", .string($0.key)), ("currency", .string($0.currency)),
                                    ("orders", .int($0.orders)), ("units", .int($0.units)),
                                    ("amount_minor", .int($0.amountMinor)),
                                ])
                            })
                    ),
                ])))
    }

    /// `GET /v1/analytics/routing?from&to` (admin).
    func analyticsRouting(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (from, to) = try window(r)
        let k = try engine.readers.read { try Analytics.routing($0, from: from, to: to) }
        reply.send(jsonResponse(200, App.routingJSON(k, from: from, to: to)))
    }

    static func routingJSON(_ k: Analytics.RoutingKPIs, from: String, to: String) -> JSON {
        .object([
            ("from", .string(from)), ("to", .string(to)), ("orders", .int(k.orders)), ("routed", .int(k.routed)),
            ("unroutable", .int(k.unroutable)), ("address_review", .int(k.addressReview)),
            ("unroutable_rate", .exact((k.unroutableRate * 10_000).rounded() / 10_000)),
            ("mean_distance_m", .num(k.meanDistanceMetres)), ("p90_distance_m", .num(k.p90DistanceMetres)),
            ("rerouted", .int(k.rerouted)), ("reroute_rate", .exact((k.rerouteRate * 10_000).rounded() / 10_000)),
            ("accepted", .int(k.accepted)), ("mean_seconds_to_accept", .num(k.meanSecondsToAccept)), ("sla_breaches", .int(k.slaBreaches)),
        ])
    }

    /// `GET /v1/analytics/stockouts?from&to` (admin).
    func analyticsStockouts(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (from, to) = try window(r)
        let rows = try engine.readers.read { try Analytics.stockOuts($0, from: from, to: to) }
        reply.send(
            jsonResponse(
                200,
                .object([
                    ("from", .string(from)), ("to", .string(to)),
                    (
                        "rows",
                        .array(
                            rows.map {
                                .object([
                                    ("kind", .string($0.kind)), ("key", .string($0.key)),
                                    ("count", .int($0.count)),
                                ])
                            })
                    ),
                ])))
    }

    /// `GET /v1/analytics/promotions` (admin).
    func analyticsPromotions(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (rows, failed) = try engine.readers.read { try Analytics.promotions($0) }
        reply.send(
            jsonResponse(
                200,
                .object([
                    ("failed_attempts", .int(failed)),
                    (
                        "campaigns",
                        .array(
                            rows.map {
                                .object([
                                    ("campaign_id", .string($0.campaignID)), ("name", .string($0.name)),
                                    ("issued", .int($0.issued)), ("redeemed", .int($0.redeemed)),
                                ])
                            })
                    ),
                ])))
    }
}
