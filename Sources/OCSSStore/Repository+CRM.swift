import OCSSCore

/// What an order adds to customers and analytics, computed at intake (pure values, written in the order's
/// transaction).
public struct OrderFacts: Sendable {
    /// E.164; nil when the platform gave no usable number (masked, missing).
    public var phone: String?
    public var name: String?
    /// The shipping address as the customer gave it (admins only).
    public var address: String?
    public var channel: String
    public var amountMinor: Int64
    public var units: Int64
    public var province: String?
    public var city: String?
    /// YYYY-MM-DD of `created_at` in the business time zone (`BusinessDay`).
    public var day: String
    /// ISO 4217; analytics sum money per currency, never across.
    public var currency: String = "CNY"
    /// The payload as non-admins see it (phone and address masked).
    public var maskedPayload: String

    public init(
        phone: String?, name: String?, address: String?, channel: String, amountMinor: Int64, units: Int64,
        province: String?, city: String?, day: String, currency: String = "CNY", maskedPayload: String
    ) {
        self.currency = currency
        self.phone = phone
        self.name = name
        self.address = address
        self.channel = channel
        self.amountMinor = amountMinor
        self.units = units
        self.province = province
        self.city = city
        self.day = day
        self.maskedPayload = maskedPayload
    }
}

public struct CustomerRow: Sendable {
    public var id: Int64
    public var phone: String?
    public var name: String?
    public var addresses: String  // JSON array
    public var channels: String  // JSON array
    public var orderCount: Int64
    /// Spend in CNY (kept for integrations that read it; `spendByCurrency` has every currency).
    public var totalSpendMinor: Int64
    /// JSON object: ISO 4217 code -> minor units. Money in two currencies is never added together.
    public var spendByCurrency: String
    public var firstOrderAt: String?
    public var lastOrderAt: String?
    public var erasedAt: String?
}

public struct CampaignRow: Sendable {
    public var id: String
    public var name: String
    public var benefit: String  // JSON
    public var startsAt: String
    public var endsAt: String
    public var stores: [Int32]?  // eligible store slots; nil = every store
    public var perPhoneLimit: Int
    public var createdAt: String

    public init(
        id: String, name: String, benefit: String, startsAt: String, endsAt: String, stores: [Int32]?, perPhoneLimit: Int,
        createdAt: String
    ) {
        self.id = id
        self.name = name
        self.benefit = benefit
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.stores = stores
        self.perPhoneLimit = perPhoneLimit
        self.createdAt = createdAt
    }
}

/// How a redemption attempt ended; each has its own error for the store app.
public enum RedemptionResult: String, Sendable {
    case redeemed, unknown_code, wrong_phone, not_started, expired, store_not_eligible, already_redeemed, phone_limit_reached,
        locked_out
}

extension Repository {
    // MARK: - Customers

    /// Upserts the order's customer (keyed by E.164 phone) in one statement; SQLite's JSON functions keep the
    /// address and channel lists (distinct, newest last, at most 20). Returns the customer id, nil without a phone.
    static func upsertCustomer(_ db: Connection, at: String, _ f: OrderFacts) throws -> Int64? {
        guard let phone = f.phone else { return nil }
        return try db.query(
            db.isPostgres
                ? upsertCustomerPostgres
                : """
                INSERT INTO customers(phone, name, addresses, channels, order_count, total_spend_minor, first_order_at, last_order_at,
                  spend_by_currency)
                VALUES(?1, ?2, CASE WHEN ?3 IS NULL THEN '[]' ELSE json_array(?3) END, json_array(?4), 1,
                  CASE WHEN ?7 = 'CNY' THEN ?5 ELSE 0 END, ?6, ?6, json_object(?7, ?5))
                ON CONFLICT(phone) DO UPDATE SET name = COALESCE(excluded.name, name),
                  addresses = \(appending("addresses", "?3")), channels = \(appending("channels", "?4")),
                  order_count = order_count + 1, total_spend_minor = total_spend_minor + excluded.total_spend_minor,
                  spend_by_currency = json_set(spend_by_currency, '$.' || ?7, COALESCE(json_extract(spend_by_currency, '$.' || ?7), 0) + ?5),
                  last_order_at = excluded.last_order_at
                RETURNING id
                """, [.text(phone), SQLValue(f.name), SQLValue(f.address), .text(f.channel), .int(f.amountMinor), .text(at), .text(f.currency)]
        ) { $0.int(0) }.first
    }

    /// `upsertCustomer`'s statement in PostgreSQL's dialect (its jsonb functions; the columns stay JSON text).
    static let upsertCustomerPostgres = """
        INSERT INTO customers(phone, name, addresses, channels, order_count, total_spend_minor, first_order_at, last_order_at,
          spend_by_currency)
        VALUES($1, $2, CASE WHEN $3::text IS NULL THEN '[]' ELSE jsonb_build_array($3::text)::text END, jsonb_build_array($4::text)::text, 1,
          CASE WHEN $7::text = 'CNY' THEN $5::bigint ELSE 0 END, $6, $6, jsonb_build_object($7::text, $5::bigint)::text)
        ON CONFLICT(phone) DO UPDATE SET name = COALESCE(excluded.name, customers.name),
          addresses = \(appendingPostgres("customers.addresses", "$3::text")), channels = \(appendingPostgres("customers.channels", "$4::text")),
          order_count = customers.order_count + 1, total_spend_minor = customers.total_spend_minor + excluded.total_spend_minor,
          spend_by_currency = jsonb_set(customers.spend_by_currency::jsonb, ARRAY[$7::text],
            to_jsonb(COALESCE((customers.spend_by_currency::jsonb ->> $7::text)::bigint, 0) + $5::bigint))::text,
          last_order_at = excluded.last_order_at
        RETURNING id
        """

    static func appendingPostgres(_ column: String, _ value: String) -> String {
        """
        CASE WHEN \(value) IS NULL OR \(column)::jsonb @> jsonb_build_array(\(value)) THEN \(column)
        ELSE (SELECT COALESCE(jsonb_agg(e ORDER BY i), '[]'::jsonb)::text FROM (SELECT e, i FROM
          jsonb_array_elements(\(column)::jsonb || jsonb_build_array(\(value))) WITH ORDINALITY AS t(e, i) ORDER BY i DESC LIMIT 20) s) END
        """
    }

    /// SQL for the JSON array `column` with `value` appended when new, keeping the 20 newest.
    static func appending(_ column: String, _ value: String) -> String {
        """
        CASE WHEN \(value) IS NULL OR EXISTS (SELECT 1 FROM json_each(\(column)) WHERE value = \(value)) THEN \(column)
        ELSE (SELECT json_group_array(value) FROM (SELECT key, value FROM
          (SELECT key, value FROM json_each(json_insert(\(column), '$[#]', \(value))) ORDER BY key DESC LIMIT 20) ORDER BY key)) END
        """
    }

    static let customerColumns =
        "id, phone, name, addresses, channels, order_count, total_spend_minor, first_order_at, last_order_at, erased_at, spend_by_currency"

    static func customerRow(_ s: Statement) -> CustomerRow {
        CustomerRow(
            id: s.int(0), phone: s.isNull(1) ? nil : s.text(1), name: s.isNull(2) ? nil : s.text(2), addresses: s.text(3),
            channels: s.text(4), orderCount: s.int(5), totalSpendMinor: s.int(6), spendByCurrency: s.text(10),
            firstOrderAt: s.isNull(7) ? nil : s.text(7),
            lastOrderAt: s.isNull(8) ? nil : s.text(8), erasedAt: s.isNull(9) ? nil : s.text(9))
    }

    public static func customer(_ db: Connection, id: Int64) throws -> CustomerRow? {
        try db.query("SELECT \(customerColumns) FROM customers WHERE id = ?", [.int(id)], customerRow).first
    }

    public static func customer(_ db: Connection, phone: String) throws -> CustomerRow? {
        try db.query("SELECT \(customerColumns) FROM customers WHERE phone = ?", [.text(phone)], customerRow).first
    }

    /// Every customer in id order, a page at a time (export).
    public static func customers(_ db: Connection, after: Int64, limit: Int) throws -> [CustomerRow] {
        try db.query("SELECT \(customerColumns) FROM customers WHERE id > ? ORDER BY id LIMIT ?", [.int(after), .int(Int64(limit))], customerRow)
    }

    /// Anonymises a customer: phone, name and addresses gone, totals kept; their orders' payloads (split-off parts
    /// included) lose the buyer and the street address (province, city and district stay for analytics), and promotion
    /// codes forget the number. Returns false when there is no such customer.
    public static func erase(_ db: Connection, customerID: Int64, at: String) throws -> Bool {
        let phone = try db.query("SELECT phone FROM customers WHERE id = ?", [.int(customerID)]) { $0.isNull(0) ? nil : $0.text(0) }.first
        try db.run(
            "UPDATE customers SET phone = NULL, name = NULL, addresses = '[]', erased_at = COALESCE(erased_at, ?) WHERE id = ?",
            .text(at), .int(customerID))
        guard db.changes == 1 else { return false }
        // Codes bound to or redeemed with the number forget it (its per-phone limit goes with it).
        if let phone, let p = phone {
            try db.run("UPDATE promo_codes SET phone = NULL WHERE phone = ?", .text(p))
            try db.run("UPDATE promo_codes SET redeemed_phone = NULL WHERE redeemed_phone = ?", .text(p))
        }
        func scrub(_ column: String) -> String {
            if db.isPostgres {
                return "(\(column)::jsonb #- '{buyer}' #- '{shipping,text}' #- '{shipping,detail}' #- '{shipping,town}' "
                    + "#- '{shipping,postal_code}')::text"
            }
            return "json_remove(\(column), '$.buyer', '$.shipping.text', '$.shipping.detail', '$.shipping.town', '$.shipping.postal_code')"
        }
        try db.run(
            """
            UPDATE orders SET payload = \(scrub("payload")), payload_masked = \(scrub("COALESCE(payload_masked, payload)"))
            WHERE customer_id = ?1 OR parent_id IN (SELECT id FROM orders WHERE customer_id = ?1)
            """, .int(customerID))
        return true
    }

    // MARK: - Campaigns and codes

    public static func upsertCampaign(_ db: Connection, _ c: CampaignRow) throws {
        try db.run(
            """
            INSERT INTO campaigns(id, name, benefit, starts_at, ends_at, stores, per_phone_limit, created_at) VALUES(?,?,?,?,?,?,?,?)
            ON CONFLICT(id) DO UPDATE SET name = excluded.name, benefit = excluded.benefit, starts_at = excluded.starts_at,
              ends_at = excluded.ends_at, stores = excluded.stores, per_phone_limit = excluded.per_phone_limit
            """, .text(c.id), .text(c.name), .text(c.benefit), .text(c.startsAt), .text(c.endsAt),
            SQLValue(c.stores.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }), .int(Int64(c.perPhoneLimit)), .text(c.createdAt))
    }

    static func campaignRow(_ s: Statement) -> CampaignRow {
        let stores: [Int32]? = s.isNull(5) ? nil : s.text(5).split(whereSeparator: { !$0.isNumber && $0 != "-" }).compactMap { Int32($0) }
        return CampaignRow(
            id: s.text(0), name: s.text(1), benefit: s.text(2), startsAt: s.text(3), endsAt: s.text(4), stores: stores,
            perPhoneLimit: Int(s.int(6)), createdAt: s.text(7))
    }

    public static func campaign(_ db: Connection, id: String) throws -> CampaignRow? {
        try db.query(
            "SELECT id, name, benefit, starts_at, ends_at, stores, per_phone_limit, created_at FROM campaigns WHERE id = ?",
            [.text(id)], campaignRow
        ).first
    }

    /// Inserts codes; a code already taken (astronomically rare) is reported back for a fresh one.
    public static func insertCodes(_ db: Connection, campaignID: String, codes: [(code: String, phone: String?)], at: String) throws -> [Int] {
        var clashes: [Int] = []
        for (i, c) in codes.enumerated() {
            try db.run(
                "INSERT INTO promo_codes(code, campaign_id, phone, issued_at) VALUES(?,?,?,?) ON CONFLICT(code) DO NOTHING",
                .text(c.code), .text(campaignID), SQLValue(c.phone), .text(at))
            if db.changes == 0 { clashes.append(i) }
        }
        return clashes
    }

    public static func codes(_ db: Connection, campaignID: String) throws -> [(code: String, phone: String?, issuedAt: String, redeemedAt: String?)] {
        try db.query(
            "SELECT code, phone, issued_at, redeemed_at FROM promo_codes WHERE campaign_id = ? ORDER BY issued_at, code",
            [.text(campaignID)]
        ) { ($0.text(0), $0.isNull(1) ? nil : $0.text(1), $0.text(2), $0.isNull(3) ? nil : $0.text(3)) }
    }

    /// Phones of customers who have orders (for binding codes to them), newest first.
    public static func customerPhones(_ db: Connection, limit: Int) throws -> [String] {
        try db.query("SELECT phone FROM customers WHERE phone IS NOT NULL ORDER BY last_order_at DESC LIMIT ?", [.int(Int64(limit))]) { $0.text(0) }
    }

    /// One redemption, decided and written inside the writer's transaction: the code is used at most once even when
    /// two stores try at the same instant (the conditional UPDATE is the arbiter). Every attempt is audited.
    public static func redeem(_ db: Connection, code: String, phone: String, storeSlot: Int32, at: String) throws -> RedemptionResult {
        let result = try decideRedemption(db, code: code, phone: phone, storeSlot: storeSlot, at: at)
        try audit(db, at: at, storeSlot: storeSlot, phone: phone, code: code, result: result)
        return result
    }

    public static func audit(_ db: Connection, at: String, storeSlot: Int32?, phone: String?, code: String?, result: RedemptionResult) throws {
        try db.run(
            "INSERT INTO redemption_attempts(at, store_slot, phone_masked, code_masked, result) VALUES(?,?,?,?,?)",
            .text(at), SQLValue(storeSlot.map { Int($0) }), SQLValue(phone.map(PhoneNumber.masked)),
            SQLValue(code.map(PromoCode.masked)), .text(result.rawValue))
    }

    /// Up to `limit` of the oldest redemption attempts made before `cutoff` (RFC 3339, as `at` is written), by id.
    public static func redemptionAttempts(_ db: Connection, before cutoff: String, limit: Int) throws -> [Int64] {
        var ids: [Int64] = []
        for (id, at) in try db.query("SELECT id, at FROM redemption_attempts ORDER BY id LIMIT ?", [.int(Int64(limit))], { ($0.int(0), $0.text(1)) })
        {
            if at >= cutoff { break }
            ids.append(id)
        }
        return ids
    }

    public static func deleteRedemptionAttempts(_ db: Connection, ids: [Int64]) throws -> Int {
        try deleteEach(db, "DELETE FROM redemption_attempts WHERE id = ?", ids: ids)
    }

    static func decideRedemption(_ db: Connection, code: String, phone: String, storeSlot: Int32, at: String) throws -> RedemptionResult {
        guard
            let row = try db.query(
                """
                SELECT c.campaign_id, c.phone, c.redeemed_at, k.starts_at, k.ends_at, k.stores, k.per_phone_limit
                FROM promo_codes c JOIN campaigns k ON k.id = c.campaign_id WHERE c.code = ?
                """, [.text(code)],
                { s in
                    (
                        s.text(0), s.isNull(1) ? nil : s.text(1), s.isNull(2) ? nil : s.text(2), s.text(3), s.text(4),
                        s.isNull(5) ? nil : s.text(5), Int(s.int(6))
                    )
                }
            ).first
        else { return .unknown_code }
        let (campaignID, boundPhone, redeemedAt, starts, ends, stores, limit) = row
        if redeemedAt != nil { return .already_redeemed }
        if let boundPhone, boundPhone != phone { return .wrong_phone }
        if at < starts { return .not_started }
        if at >= ends { return .expired }
        if let stores, !stores.split(whereSeparator: { !$0.isNumber }).compactMap({ Int32($0) }).contains(storeSlot) {
            return .store_not_eligible
        }
        let used =
            try db.query(
                "SELECT count(*) FROM promo_codes WHERE campaign_id = ? AND redeemed_phone = ?",
                [.text(campaignID), .text(phone)]
            ) { $0.int(0) }.first ?? 0
        if used >= limit { return .phone_limit_reached }
        try db.run(
            "UPDATE promo_codes SET redeemed_at = ?, store_slot = ?, redeemed_phone = ? WHERE code = ? AND redeemed_at IS NULL",
            .text(at), .int(Int64(storeSlot)), .text(phone), .text(code))
        return db.changes == 1 ? .redeemed : .already_redeemed
    }
}
