public import OCSSCore

/// An order as the store writes it: everything that must land in one transaction.
public struct NewOrder: Sendable {
    /// Customer and analytics facts (top-level orders; split-off parts have none).
    public var facts: OrderFacts?
    public var id: Int64
    public var idempotencyKey: String
    public var bodyHash: String
    public var platform: String
    public var platformOrderID: String
    public var status: OrderStatus
    public var storeSlot: Int32?
    public var distanceMetres: Double?
    /// Canonical order JSON as received.
    public var payload: String
    /// Explanation JSON.
    public var explanation: String
    /// The exact response body answered for this order (replayed for retries).
    public var response: String
    public var createdAt: String
    public var lines: [CanonicalOrder.Line]
    /// (sku index, quantity) reserved in `storeSlot`.
    public var reservations: [Demand]
    public var assignmentID: Int64?
    public var events: [NewEvent]
    /// Version of the routing policy that decided.
    public var policyVersion: Int64?
    /// Where the customer is (WGS84), when known; the time of the current status (seconds since the epoch).
    public var customerPoint: GeoPoint?
    public var statusAt: Double?
    /// The order this one was split off.
    public var parentID: Int64?

    public init(
        id: Int64, idempotencyKey: String, bodyHash: String, platform: String, platformOrderID: String,
        status: OrderStatus, storeSlot: Int32?, distanceMetres: Double?, payload: String, explanation: String,
        response: String, createdAt: String, lines: [CanonicalOrder.Line], reservations: [Demand],
        assignmentID: Int64?, events: [NewEvent]
    ) {
        self.id = id
        self.idempotencyKey = idempotencyKey
        self.bodyHash = bodyHash
        self.platform = platform
        self.platformOrderID = platformOrderID
        self.status = status
        self.storeSlot = storeSlot
        self.distanceMetres = distanceMetres
        self.payload = payload
        self.explanation = explanation
        self.response = response
        self.createdAt = createdAt
        self.lines = lines
        self.reservations = reservations
        self.assignmentID = assignmentID
        self.events = events
    }
}

/// One row of an order's event log.
public struct NewEvent: Sendable, Hashable {
    public var at: String
    public var actor: String
    public var type: String
    public var from: String?
    public var to: String?
    public var reason: String?
    public init(at: String, actor: String, type: String, from: String?, to: String?, reason: String?) {
        self.at = at
        self.actor = actor
        self.type = type
        self.from = from
        self.to = to
        self.reason = reason
    }
}

/// An order as read back.
public struct OrderRecord: Sendable {
    public var id: Int64
    public var idempotencyKey: String
    public var bodyHash: String
    public var platform: String
    public var platformOrderID: String
    public var status: String
    public var storeSlot: Int32?
    public var distanceMetres: Double?
    public var payload: String
    public var explanation: String
    public var response: String
    public var createdAt: String
    public var events: [NewEvent]
    /// The payload with phone and address masked (what non-admins see); nil for split-off parts and old rows.
    public var maskedPayload: String? = nil
}

/// One assignment in a store's feed.
public struct AssignmentRow: Sendable {
    public var id: Int64
    public var orderID: Int64
    public var status: String
    public var distanceMetres: Double
    public var createdAt: String
    public var payload: String
    /// Where the assignment's latest change sits in its store's feed.
    public var position: Int64 = 0
    /// Why it was rejected or taken away, when it was.
    public var reason: String? = nil
}

/// SQL for every read and write the service does. Functions take the connection they run on, so
/// writes compose into the writer's transactions and reads run on pooled readers.
public enum Repository {
    // MARK: stores and inventory

    /// `rules` is the store's rules as JSON (nil when it has none).
    public static func upsertStore(_ db: Connection, slot: Int32, store: Store, rules: String? = nil, at: String) throws {
        try db.run(
            """
            INSERT INTO stores(slot, id, code, name, lon, lat, kind, status, updated_at, rules) VALUES(?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT(slot) DO UPDATE SET code=excluded.code, name=excluded.name, lon=excluded.lon, lat=excluded.lat,
              kind=excluded.kind, status=excluded.status, updated_at=excluded.updated_at, rules=excluded.rules
            """, .int(Int64(slot)), .text(store.id), .text(store.code), .text(store.name), .double(store.location.lon),
            .double(store.location.lat), .text(store.kind.rawValue), .text(store.status.rawValue), .text(at), SQLValue(rules))
    }

    /// Every store by slot; `rules` decodes a store's rules JSON (the caller owns the JSON coder).
    public static func loadStores(_ db: Connection, rules: (String) -> StoreRules = { _ in StoreRules() }) throws -> [Store] {
        let rows = try db.query("SELECT slot, id, code, name, lon, lat, kind, status, rules FROM stores ORDER BY slot") { s throws(SQLiteError) in
            (
                Store(
                    id: s.text(1), code: s.text(2), name: s.text(3), location: GeoPoint(lon: s.double(4), lat: s.double(5)),
                    kind: StoreKind(rawValue: s.text(6)) ?? .store, status: StoreStatus(rawValue: s.text(7)) ?? .closed),
                s.isNull(8) ? nil : s.text(8)
            )
        }
        return rows.map { row in
            var store = row.0
            if let json = row.1 { store.rules = rules(json) }
            return store
        }
    }

    // MARK: routing policy

    /// Stores a new policy version (versions only grow).
    public static func insertPolicy(_ db: Connection, version: Int64, document: String, note: String?, at: String) throws {
        try db.run(
            "INSERT INTO policies(version, document, created_at, note) VALUES(?,?,?,?)", .int(version), .text(document), .text(at),
            SQLValue(note))
    }

    /// The newest policy (version, document), nil when none was ever stored.
    public static func currentPolicy(_ db: Connection) throws -> (version: Int64, document: String, createdAt: String)? {
        try db.query("SELECT version, document, created_at FROM policies ORDER BY version DESC LIMIT 1") { s throws(SQLiteError) in
            (s.int(0), s.text(1), s.text(2))
        }.first
    }

    /// Every policy version, newest first.
    public static func policies(_ db: Connection) throws -> [(version: Int64, createdAt: String, note: String?)] {
        try db.query("SELECT version, created_at, note FROM policies ORDER BY version DESC") { s throws(SQLiteError) in
            (s.int(0), s.text(1), s.isNull(2) ? nil : s.text(2))
        }
    }

    /// Assignments made since `since` (RFC 3339), for today's capacity counts at start-up.
    public static func assignmentsSince(_ db: Connection, _ since: String) throws -> [(slot: Int32, createdAt: String)] {
        try db.query("SELECT store_slot, created_at FROM assignments WHERE created_at >= ?", [.text(since)]) { s throws(SQLiteError) in
            (Int32(s.int(0)), s.text(1))
        }
    }

    public static func ensureSKU(_ db: Connection, index: SKUIndex, name: String) throws {
        try db.run("INSERT OR IGNORE INTO skus(idx, sku) VALUES(?, ?)", .int(Int64(index)), .text(name))
    }

    public static func setOnHand(_ db: Connection, slot: Int32, sku: SKUIndex, quantity: Int32) throws {
        try db.run(
            """
            INSERT INTO inventory(store_slot, sku_idx, on_hand) VALUES(?,?,?)
            ON CONFLICT(store_slot, sku_idx) DO UPDATE SET on_hand=excluded.on_hand
            """, .int(Int64(slot)), .int(Int64(sku)), .int(Int64(quantity)))
    }

    /// Rebuilds the ledger from the database (start-up). Rows arrive sorted, so this is a bulk append.
    public static func loadLedger(_ db: Connection, storeCount: Int) throws -> InventoryLedger {
        var ledger = InventoryLedger()
        let names = try db.query("SELECT idx, sku FROM skus ORDER BY idx") { s throws(SQLiteError) in (Int32(s.int(0)), s.text(1)) }
        for (idx, name) in names {
            let got = ledger.intern(name)
            precondition(got == idx, "sku indexes must be dense")
        }
        ledger.ensureStores(storeCount)
        let s = try db.prepare("SELECT store_slot, sku_idx, on_hand, reserved FROM inventory ORDER BY store_slot, sku_idx")
        while try s.step() {
            ledger.appendRow(store: Int32(s.int(0)), sku: Int32(s.int(1)), onHand: Int32(s.int(2)), reserved: Int32(s.int(3)))
        }
        return ledger
    }

    // MARK: orders

    /// Writes an order with its lines, reservations, assignment, events, facts and customer, inside the writer's
    /// transaction (all or nothing). One INSERT carries
    /// every column of the order row (routing, parent, facts), and lines, reservations and events go in multi-row
    /// INSERTs: intake runs this for every order, so statements per order are what durable intake costs.
    public static func insertOrder(_ db: Connection, _ o: NewOrder) throws {
        let f = o.facts
        let customer = try f.flatMap { try upsertCustomer(db, at: o.createdAt, $0) }
        try db.run(
            """
            INSERT INTO orders(id, idempotency_key, body_hash, platform, platform_order_id, status, store_slot, distance_m,
              payload, explanation, response, created_at, policy_version, cust_lon, cust_lat, assignment_id, status_at, parent_id,
              customer_id, day, amount_minor, units, province, city, payload_masked, currency)
            VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
            """, .int(o.id), .text(o.idempotencyKey), .text(o.bodyHash), .text(o.platform), .text(o.platformOrderID),
            .text(o.status.rawValue), SQLValue(o.storeSlot.map { Int($0) }), SQLValue(o.distanceMetres), .text(o.payload),
            .text(o.explanation), .text(o.response), .text(o.createdAt), SQLValue(o.policyVersion),
            SQLValue(o.customerPoint?.lon), SQLValue(o.customerPoint?.lat), SQLValue(o.assignmentID), SQLValue(o.statusAt),
            SQLValue(o.parentID), SQLValue(customer), SQLValue(f?.day), SQLValue(f?.amountMinor), SQLValue(f?.units),
            SQLValue(f?.province), SQLValue(f?.city), SQLValue(f?.maskedPayload), SQLValue(f?.currency))
        try insertRows(
            db, "order_lines(order_id, line_no, sku, platform_sku_id, quantity, unit_price_minor)", columns: 6,
            o.lines.enumerated().map { i, l in
                [
                    .int(o.id), .int(Int64(i)), SQLValue(l.sku), SQLValue(l.platform_sku_id), .int(Int64(l.quantity)),
                    SQLValue(l.unit_price_minor),
                ]
            })
        if let slot = o.storeSlot {
            try insertRows(
                db, "reservations(order_id, store_slot, sku_idx, quantity)", columns: 4,
                o.reservations.map { [.int(o.id), .int(Int64(slot)), .int(Int64($0.sku)), .int(Int64($0.quantity))] },
                suffix: " ON CONFLICT(order_id, store_slot, sku_idx) DO UPDATE SET quantity = reservations.quantity + excluded.quantity")
            for r in o.reservations {
                try db.run(
                    "UPDATE inventory SET reserved = reserved + ? WHERE store_slot = ? AND sku_idx = ?",
                    .int(Int64(r.quantity)), .int(Int64(slot)), .int(Int64(r.sku)))
                if db.changes != 1 { throw SQLiteError(code: 19, message: "reservation for a missing inventory row", sql: nil) }
            }
            if let aid = o.assignmentID, let d = o.distanceMetres {
                try insertAssignment(db, id: aid, orderID: o.id, slot: slot, distanceMetres: d, at: o.createdAt)
            }
        }
        try insertRows(
            db, "order_events(order_id, at, actor, type, from_status, to_status, reason)", columns: 7,
            o.events.map { e in
                [.int(o.id), .text(e.at), .text(e.actor), .text(e.type), SQLValue(e.from), SQLValue(e.to), SQLValue(e.reason)]
            })
        for e in o.events { try Rollups.addEvent(db, orderID: o.id, e) }
        if let f {
            try Rollups.addOrder(db, facts: f, platform: o.platform, storeSlot: o.storeSlot, distance: o.distanceMetres, status: o.status)
        }
    }

    /// `INSERT INTO table(columns) VALUES (...), (...)` in chunks of up to 8 rows (so at most 8 statement shapes
    /// per table are cached).
    static func insertRows(_ db: Connection, _ table: String, columns: Int, _ rows: [[SQLValue]], suffix: String = "") throws {
        var start = 0
        while start < rows.count {
            let n = min(8, rows.count - start)
            let group = "(" + Array(repeating: "?", count: columns).joined(separator: ",") + ")"
            let sql = "INSERT INTO \(table) VALUES " + Array(repeating: group, count: n).joined(separator: ",") + suffix
            try db.run(sql, rows[start..<start + n].flatMap { $0 })
            start += n
        }
    }

    private static let orderColumns = """
        id, idempotency_key, body_hash, platform, platform_order_id, status, store_slot, distance_m, payload,
        explanation, response, created_at, payload_masked
        """

    public static func order(_ db: Connection, id: Int64) throws -> OrderRecord? {
        try readOrders(db, "SELECT \(orderColumns) FROM orders WHERE id = ?", [.int(id)]).first
    }

    public static func order(_ db: Connection, idempotencyKey: String) throws -> OrderRecord? {
        try readOrders(db, "SELECT \(orderColumns) FROM orders WHERE idempotency_key = ?", [.text(idempotencyKey)]).first
    }

    /// The newest `limit` idempotency keys with their body hashes, oldest first, and whether they are all there
    /// are (start-up fills the engine's idempotency window from this).
    /// `platformOrder` is `platformKey(platform, platform_order_id)` for an order the platform sent (nil for the parts
    /// split off it), computed row by row so the texts are not all held at once.
    public static func newestIdempotencyKeys(
        _ db: Connection, limit: Int, platformKey: (String, String) -> Int
    )
        throws -> (keys: [(id: Int64, key: String, hash: String, platformOrder: Int?)], all: Bool)
    {
        let sql = "SELECT id, idempotency_key, body_hash, platform, platform_order_id, parent_id IS NULL FROM orders ORDER BY id DESC LIMIT ?"
        var rows = try db.query(sql, [.int(Int64(limit) + 1)]) { s throws(SQLiteError) in
            (id: s.int(0), key: s.text(1), hash: s.text(2), platformOrder: s.int(5) != 0 ? platformKey(s.text(3), s.text(4)) : nil)
        }
        let all = rows.count <= limit
        if !all { rows.removeLast() }
        return (rows.reversed(), all)
    }

    /// The body hash stored under an idempotency key, nil when no order has it (a key older than the engine's
    /// idempotency window).
    public static func bodyHash(_ db: Connection, idempotencyKey: String) throws -> String? {
        try db.query("SELECT body_hash FROM orders WHERE idempotency_key = ?", [.text(idempotencyKey)]) { s throws(SQLiteError) in s.text(0) }.first
    }

    public static func maxIDs(_ db: Connection) throws -> (order: Int64, assignment: Int64) {
        let o = try db.query("SELECT COALESCE(MAX(id), 0) FROM orders") { $0.int(0) }.first ?? 0
        let a = try db.query("SELECT COALESCE(MAX(id), 0) FROM assignments") { $0.int(0) }.first ?? 0
        return (o, a)
    }

    private static func readOrders(_ db: Connection, _ sql: String, _ args: [SQLValue]) throws -> [OrderRecord] {
        var rows = try db.query(sql, args) { s throws(SQLiteError) in
            OrderRecord(
                id: s.int(0), idempotencyKey: s.text(1), bodyHash: s.text(2), platform: s.text(3), platformOrderID: s.text(4),
                status: s.text(5), storeSlot: s.optionalInt(6).map { Int32($0) }, distanceMetres: s.optionalDouble(7),
                payload: s.text(8), explanation: s.text(9), response: s.text(10), createdAt: s.text(11), events: [],
                maskedPayload: s.isNull(12) ? nil : s.text(12))
        }
        for i in rows.indices {
            rows[i].events = try db.query(
                "SELECT at, actor, type, from_status, to_status, reason FROM order_events WHERE order_id = ? ORDER BY id",
                [.int(rows[i].id)]
            ) { s throws(SQLiteError) in
                NewEvent(at: s.text(0), actor: s.text(1), type: s.text(2), from: s.optionalText(3), to: s.optionalText(4), reason: s.optionalText(5))
            }
        }
        return rows
    }

    /// One order in a listing: enough to triage it, without its payload or events.
    public struct OrderSummary: Sendable {
        public var id: Int64
        public var status: String
        public var platform: String
        public var platformOrderID: String
        public var storeSlot: Int32?
        public var parentID: Int64?
        public var createdAt: String
        public var statusAt: Double?
        public var summary: String?
        public var unroutableReason: String?
    }

    /// Orders in each of `statuses` (a range of the `orders_status` index each: 5 ms for 13,689 of 1.78 million).
    public static func orderCounts(_ db: Connection, statuses: [String]) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for s in statuses {
            out[s] = Int(try db.query("SELECT COUNT(*) FROM orders WHERE status = ?", [.text(s)]) { $0.int(0) }.first ?? 0)
        }
        return out
    }

    /// Orders with id > `after`, oldest first, optionally of one status and one platform. A status filter reads the
    /// `orders_status` index (entries of one status are in id order there); a platform alone walks the table in id
    /// order, which stops after `limit` matches.
    public static func orders(_ db: Connection, status: String?, platform: String?, after: Int64, limit: Int) throws -> [OrderSummary] {
        var sql =
            db.isPostgres
            ? """
            SELECT id, status, platform, platform_order_id, store_slot, parent_id, created_at, status_at,
              explanation::jsonb ->> 'summary', explanation::jsonb ->> 'unroutable_reason' FROM orders WHERE id > ?
            """
            : """
            SELECT id, status, platform, platform_order_id, store_slot, parent_id, created_at, status_at,
              json_extract(explanation, '$.summary'), json_extract(explanation, '$.unroutable_reason') FROM orders WHERE id > ?
            """
        var args: [SQLValue] = [.int(after)]
        if let status {
            sql += " AND status = ?"
            args.append(.text(status))
        }
        if let platform {
            // Unary plus: the (platform, platform_order_id) index would return a platform's orders out of id order,
            // to be sorted whole before the first page.
            sql += db.isPostgres ? " AND platform = ?" : " AND +platform = ?"
            args.append(.text(platform))
        }
        sql += " ORDER BY id LIMIT ?"
        args.append(.int(Int64(limit)))
        return try db.query(sql, args) { s throws(SQLiteError) in
            OrderSummary(
                id: s.int(0), status: s.text(1), platform: s.text(2), platformOrderID: s.text(3),
                storeSlot: s.optionalInt(4).map { Int32($0) }, parentID: s.optionalInt(5), createdAt: s.text(6),
                statusAt: s.optionalDouble(7), summary: s.optionalText(8), unroutableReason: s.optionalText(9))
        }
    }

    // MARK: assignments feed

    /// Assignments of `slot` created or changed after feed position `after`, in feed order: each once, as it is now.
    /// `openOnly` keeps those still open (assigned up to shipped or handed over).
    public static func assignments(_ db: Connection, slot: Int32, after: Int64, limit: Int, openOnly: Bool = false) throws -> [AssignmentRow] {
        let open = openOnly ? " AND a.status IN ('assigned', 'accepted', 'picking', 'packed', 'ready', 'handed_over', 'shipped')" : ""
        return try db.query(
            """
            SELECT a.id, a.order_id, a.status, a.distance_m, a.created_at, COALESCE(o.payload_masked, o.payload), a.feed_pos, a.reason
            FROM assignments a JOIN orders o ON o.id = a.order_id WHERE a.store_slot = ? AND a.feed_pos > ?\(open) ORDER BY a.feed_pos LIMIT ?
            """, [.int(Int64(slot)), .int(after), .int(Int64(limit))]
        ) { s throws(SQLiteError) in
            AssignmentRow(
                id: s.int(0), orderID: s.int(1), status: s.text(2), distanceMetres: s.double(3), createdAt: s.text(4), payload: s.text(5),
                position: s.int(6), reason: s.optionalText(7))
        }
    }

    /// The store's open assignments (assigned up to shipped) after feed position `after`, in feed order, and the
    /// newest position of the store's feed, read in one snapshot: a device starting afresh lists what is open, then
    /// follows the feed from there without missing a change or reading the whole history.
    public static func openAssignments(_ db: Connection, slot: Int32, after: Int64, limit: Int) throws -> (rows: [AssignmentRow], newest: Int64) {
        try db.execute("BEGIN")
        defer { try? db.execute("COMMIT") }
        let rows = try assignments(db, slot: slot, after: after, limit: limit, openOnly: true)
        let newest =
            try db.query("SELECT COALESCE(MAX(feed_pos), 0) FROM assignments WHERE store_slot = ?", [.int(Int64(slot))]) { $0.int(0) }.first ?? 0
        return (rows, newest)
    }

    /// The store's latest assignments that left its list some other way than out of the door (cancelled, rejected,
    /// taken away), newest first: what the store's page shows so that an order does not vanish unexplained.
    public static func recentlyClosedAssignments(_ db: Connection, slot: Int32, limit: Int) throws -> [AssignmentRow] {
        try db.query(
            """
            SELECT a.id, a.order_id, a.status, a.distance_m, a.created_at, COALESCE(o.payload_masked, o.payload), a.feed_pos, a.reason
            FROM assignments a JOIN orders o ON o.id = a.order_id
            WHERE a.store_slot = ? AND a.status NOT IN ('assigned', 'accepted', 'picking', 'packed', 'ready', 'handed_over', 'shipped',
              'delivered', 'picked_up')
            ORDER BY a.feed_pos DESC LIMIT ?
            """, [.int(Int64(slot)), .int(Int64(limit))]
        ) { s throws(SQLiteError) in
            AssignmentRow(
                id: s.int(0), orderID: s.int(1), status: s.text(2), distanceMetres: s.double(3), createdAt: s.text(4), payload: s.text(5),
                position: s.int(6), reason: s.optionalText(7))
        }
    }

    /// Newest feed position per store slot.
    public static func newestAssignments(_ db: Connection) throws -> [Int32: Int64] {
        var out: [Int32: Int64] = [:]
        // One seek of the feed index per store: grouping the whole table read every assignment ever made at each
        // start-up (52 ms at 219,000; this takes 16 ms with 10,000 stores whatever the history).
        for (slot, position) in try db.query(
            """
            SELECT slot, newest FROM (SELECT slot, (SELECT MAX(feed_pos) FROM assignments WHERE store_slot = stores.slot) AS newest
              FROM stores) t WHERE newest IS NOT NULL
            """, [], { s throws(SQLiteError) in (Int32(s.int(0)), s.int(1)) })
        { out[slot] = position }
        return out
    }

    // MARK: tokens and settings

    public static func insertToken(_ db: Connection, hash: String, slot: Int32, at: String) throws {
        try db.run("INSERT INTO store_tokens(token_hash, store_slot, created_at) VALUES(?,?,?)", .text(hash), .int(Int64(slot)), .text(at))
    }

    /// One store's tokens (their hashes) with when each was issued, oldest first.
    public static func tokens(_ db: Connection, slot: Int32) throws -> [(hash: String, createdAt: String)] {
        try db.query(
            "SELECT token_hash, created_at FROM store_tokens WHERE store_slot = ? ORDER BY created_at, token_hash",
            [.int(Int64(slot))]
        ) { s throws(SQLiteError) in (s.text(0), s.text(1)) }
    }

    public static func deleteTokens(_ db: Connection, hashes: [String]) throws {
        for h in hashes { try db.run("DELETE FROM store_tokens WHERE token_hash = ?", .text(h)) }
    }

    public static func tokens(_ db: Connection) throws -> [(hash: String, slot: Int32)] {
        try db.query("SELECT token_hash, store_slot FROM store_tokens") { s throws(SQLiteError) in (s.text(0), Int32(s.int(1))) }
    }

    public static func setting(_ db: Connection, _ key: String) throws -> String? {
        try db.query("SELECT value FROM settings WHERE key = ?", [.text(key)]) { $0.text(0) }.first
    }

    public static func setSetting(_ db: Connection, _ key: String, _ value: String) throws {
        try db.run("INSERT INTO settings(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", .text(key), .text(value))
    }

    /// Sets `key` only if it has no value yet (a first time, kept through later changes).
    public static func setSettingOnce(_ db: Connection, _ key: String, _ value: String) throws {
        try db.run("INSERT INTO settings(key, value) VALUES(?,?) ON CONFLICT(key) DO NOTHING", .text(key), .text(value))
    }
}
