public import OCSSCore

/// An order still moving (assigned .. shipped) as the engine keeps it in memory.
public struct ActiveOrderRow: Sendable {
    public var id: Int64
    public var status: OrderStatus
    public var storeSlot: Int32?
    public var assignmentID: Int64?
    public var point: GeoPoint?
    public var statusAt: Double
    /// When an accepted order must have shipped (epoch seconds); nil before acceptance.
    public var shipBy: Double?
    public var escalated: Bool
    public var platform: String
    public var platformOrderID: String
    /// Reserved lines (sku index, quantity) in `storeSlot`.
    public var reserved: [Demand]
    /// Every store that rejected this order.
    public var rejectedBy: Set<Int32>
    public var distanceMetres: Double?
    public var carrier: String?
    public var trackingNumber: String?

    public init(
        id: Int64, status: OrderStatus, storeSlot: Int32?, assignmentID: Int64?, point: GeoPoint?, statusAt: Double,
        shipBy: Double? = nil, escalated: Bool = false, platform: String, platformOrderID: String, reserved: [Demand],
        rejectedBy: Set<Int32> = [], distanceMetres: Double?, carrier: String? = nil, trackingNumber: String? = nil
    ) {
        self.id = id
        self.status = status
        self.storeSlot = storeSlot
        self.assignmentID = assignmentID
        self.point = point
        self.statusAt = statusAt
        self.shipBy = shipBy
        self.escalated = escalated
        self.platform = platform
        self.platformOrderID = platformOrderID
        self.reserved = reserved
        self.rejectedBy = rejectedBy
        self.distanceMetres = distanceMetres
        self.carrier = carrier
        self.trackingNumber = trackingNumber
    }
}

/// One outbox message.
public struct OutboxRow: Sendable {
    public var id: Int64
    public var orderID: Int64
    public var event: String
    public var target: String
    public var payload: String
    public var status: String
    public var attempts: Int
    public var nextAttemptAt: Double
    public var lastError: String?
    public var createdAt: String
}

/// Store SLAs, seconds.
public struct StoreSLA: Sendable, Hashable {
    public var acceptSeconds: Double
    public var shipSeconds: Double
    public init(acceptSeconds: Double = 600, shipSeconds: Double = 86_400) {
        self.acceptSeconds = acceptSeconds
        self.shipSeconds = shipSeconds
    }
}

extension Repository {
    public static func storeSLAs(_ db: Connection) throws -> [StoreSLA] {
        try db.query("SELECT accept_sla_s, ship_sla_s FROM stores ORDER BY slot") { s throws(SQLiteError) in
            StoreSLA(acceptSeconds: s.double(0), shipSeconds: s.double(1))
        }
    }

    public static func setStoreSLA(_ db: Connection, slot: Int32, sla: StoreSLA) throws {
        try db.run(
            "UPDATE stores SET accept_sla_s = ?, ship_sla_s = ? WHERE slot = ?",
            .int(Int64(sla.acceptSeconds)), .int(Int64(sla.shipSeconds)), .int(Int64(slot)))
    }

    /// Orders that still hold a store's attention, with their reservations and rejections.
    public static func activeOrders(_ db: Connection) throws -> [ActiveOrderRow] {
        var rows = try db.query(
            """
            SELECT id, status, store_slot, assignment_id, cust_lon, cust_lat, COALESCE(status_at, 0), escalated, platform, platform_order_id,
              ship_by, distance_m, carrier, tracking_no FROM orders WHERE status IN ('assigned', 'accepted', 'picking', 'packed', 'shipped')
            """
        ) { s throws(SQLiteError) in
            ActiveOrderRow(
                id: s.int(0), status: OrderStatus(rawValue: s.text(1)) ?? .assigned, storeSlot: s.optionalInt(2).map { Int32($0) },
                assignmentID: s.optionalInt(3),
                point: s.isNull(4) ? nil : GeoPoint(lon: s.double(4), lat: s.double(5)),
                statusAt: s.double(6), shipBy: s.optionalDouble(10), escalated: s.int(7) != 0, platform: s.text(8), platformOrderID: s.text(9),
                reserved: [], rejectedBy: [], distanceMetres: s.optionalDouble(11), carrier: s.optionalText(12),
                trackingNumber: s.optionalText(13))
        }
        for i in rows.indices {
            rows[i].reserved = try db.query(
                "SELECT sku_idx, quantity FROM reservations WHERE order_id = ? ORDER BY sku_idx",
                [.int(rows[i].id)]
            ) { s throws(SQLiteError) in Demand(sku: Int32(s.int(0)), quantity: Int32(s.int(1))) }
            rows[i].rejectedBy = Set(
                try db.query(
                    "SELECT store_slot FROM assignments WHERE order_id = ? AND status = 'rejected'",
                    [.int(rows[i].id)]
                ) { Int32($0.int(0)) })
        }
        return rows
    }

    /// What routing an inactive order again needs: where it was routed from, the stores that rejected it, and whether
    /// any store ever held it (analytics count an order for the store that first took it).
    public static func routingInputs(_ db: Connection, id: Int64) throws -> (point: GeoPoint?, rejectedBy: Set<Int32>, everAssigned: Bool) {
        let point = try db.query("SELECT cust_lon, cust_lat FROM orders WHERE id = ? AND cust_lon IS NOT NULL", [.int(id)]) { s throws(SQLiteError) in
            GeoPoint(lon: s.double(0), lat: s.double(1))
        }.first
        let rows = try db.query("SELECT store_slot, status FROM assignments WHERE order_id = ?", [.int(id)]) { s throws(SQLiteError) in
            (Int32(s.int(0)), s.text(1))
        }
        return (point, Set(rows.filter { $0.1 == "rejected" }.map(\.0)), !rows.isEmpty)
    }

    /// Moves an order to `status`, recording where it now is.
    public static func setOrderState(
        _ db: Connection, id: Int64, status: OrderStatus, at: Double, storeSlot: Int32?,
        assignmentID: Int64?, distanceMetres: Double?
    ) throws {
        try db.run(
            "UPDATE orders SET status = ?, status_at = ?, store_slot = ?, assignment_id = ?, distance_m = ? WHERE id = ?",
            .text(status.rawValue), .double(at), SQLValue(storeSlot.map { Int($0) }), SQLValue(assignmentID),
            SQLValue(distanceMetres), .int(id))
        if db.changes != 1 { throw SQLiteError(code: 12, message: "order \(id) not found", sql: nil) }
    }

    public static func setTracking(_ db: Connection, id: Int64, carrier: String, trackingNumber: String) throws {
        try db.run("UPDATE orders SET carrier = ?, tracking_no = ? WHERE id = ?", .text(carrier), .text(trackingNumber), .int(id))
    }

    public static func setShipBy(_ db: Connection, id: Int64, shipBy: Double) throws {
        try db.run("UPDATE orders SET ship_by = ? WHERE id = ?", .double(shipBy), .int(id))
    }

    public static func markEscalated(_ db: Connection, id: Int64) throws {
        try db.run("UPDATE orders SET escalated = 1 WHERE id = ?", .int(id))
    }

    /// Saves the customer's WGS84 point and current assignment of a new order.
    public static func setOrderRouting(_ db: Connection, id: Int64, point: GeoPoint?, assignmentID: Int64?, at: Double) throws {
        try db.run(
            "UPDATE orders SET cust_lon = ?, cust_lat = ?, assignment_id = ?, status_at = ? WHERE id = ?",
            SQLValue(point?.lon), SQLValue(point?.lat), SQLValue(assignmentID), .double(at), .int(id))
    }

    /// Replaces an order's explanation (after an address correction routed it).
    public static func setExplanation(_ db: Connection, id: Int64, explanation: String, policyVersion: Int64) throws {
        try db.run("UPDATE orders SET explanation = ?, policy_version = ? WHERE id = ?", .text(explanation), .int(policyVersion), .int(id))
    }

    /// Sets an assignment's status and moves it to the end of its store's feed.
    public static func setAssignmentStatus(_ db: Connection, id: Int64, status: String, reason: String?) throws {
        let position = try nextFeedPosition(db)
        let slots = try db.query(
            "UPDATE assignments SET status = ?, reason = ?, feed_pos = ? WHERE id = ? RETURNING store_slot",
            [.text(status), SQLValue(reason), .int(position), .int(id)]
        ) { s throws(SQLiteError) in Int32(s.int(0)) }
        for slot in slots { db.journal?.feed.append(FeedChange(slot: slot, position: position)) }
    }

    public static func insertAssignment(_ db: Connection, id: Int64, orderID: Int64, slot: Int32, distanceMetres: Double, at: String) throws {
        let position = try nextFeedPosition(db)
        try db.run(
            "INSERT INTO assignments(id, order_id, store_slot, status, distance_m, created_at, feed_pos) VALUES(?,?,?,?,?,?,?)",
            .int(id), .int(orderID), .int(Int64(slot)), .text("assigned"), .double(distanceMetres), .text(at), .int(position))
        db.journal?.feed.append(FeedChange(slot: slot, position: position))
    }

    /// The next assignment-feed position. Handed out by the one writer as its jobs run, so positions commit in
    /// order: a reader's snapshot holds every position up to some point and none after it, and a store's cursor
    /// never skips a change that commits later. A rolled-back job leaves a gap, which no cursor minds.
    static func nextFeedPosition(_ db: Connection) throws -> Int64 {
        if db.feedPosition == nil {
            // One seek of the (store_slot, feed_pos) index per store, and the assignment ids for rows from before it.
            let newest =
                try db.query(
                    """
                    SELECT MAX(COALESCE((SELECT MAX(feed_pos) FROM assignments WHERE store_slot = stores.slot), 0)) FROM stores
                    """
                ) { $0.int(0) }.first ?? 0
            let ids = try db.query("SELECT COALESCE(MAX(id), 0) FROM assignments") { $0.int(0) }.first ?? 0
            db.feedPosition = max(newest, ids)
        }
        db.feedPosition! += 1
        return db.feedPosition!
    }

    /// Reserves `lines` in `slot` for the order (rows must exist).
    public static func reserve(_ db: Connection, orderID: Int64, slot: Int32, lines: [Demand]) throws {
        for r in lines {
            try db.run(
                """
                INSERT INTO reservations(order_id, store_slot, sku_idx, quantity) VALUES(?,?,?,?)
                ON CONFLICT(order_id, store_slot, sku_idx) DO UPDATE SET quantity = reservations.quantity + excluded.quantity
                """, .int(orderID), .int(Int64(slot)), .int(Int64(r.sku)), .int(Int64(r.quantity)))
            try db.run(
                "UPDATE inventory SET reserved = reserved + ? WHERE store_slot = ? AND sku_idx = ?",
                .int(Int64(r.quantity)), .int(Int64(slot)), .int(Int64(r.sku)))
            if db.changes != 1 { throw SQLiteError(code: 19, message: "reservation for a missing inventory row", sql: nil) }
        }
    }

    /// Drops the order's reservations; `consume` also takes the goods off on-hand (they left the store).
    public static func releaseReservations(_ db: Connection, orderID: Int64, consume: Bool) throws {
        let rows = try db.query("SELECT store_slot, sku_idx, quantity FROM reservations WHERE order_id = ?", [.int(orderID)]) {
            s throws(SQLiteError) in
            (s.int(0), s.int(1), s.int(2))
        }
        for (slot, sku, q) in rows {
            try db.run(
                """
                UPDATE inventory SET reserved = MAX(0, reserved - ?1), on_hand = CASE WHEN ?4 THEN MAX(0, on_hand - ?1) ELSE on_hand END
                WHERE store_slot = ?2 AND sku_idx = ?3
                """, .int(q), .int(slot), .int(sku), .int(consume ? 1 : 0))
        }
        try db.run("DELETE FROM reservations WHERE order_id = ?", .int(orderID))
    }

    /// Releases only the reservations of `skus` (a partial rejection moves those lines elsewhere).
    public static func releaseReservations(_ db: Connection, orderID: Int64, skus: [SKUIndex]) throws {
        for sku in skus {
            let rows = try db.query(
                "SELECT store_slot, quantity FROM reservations WHERE order_id = ? AND sku_idx = ?",
                [.int(orderID), .int(Int64(sku))]
            ) { s throws(SQLiteError) in (s.int(0), s.int(1)) }
            for (slot, q) in rows {
                try db.run(
                    "UPDATE inventory SET reserved = MAX(0, reserved - ?) WHERE store_slot = ? AND sku_idx = ?", .int(q), .int(slot), .int(Int64(sku))
                )
            }
            try db.run("DELETE FROM reservations WHERE order_id = ? AND sku_idx = ?", .int(orderID), .int(Int64(sku)))
        }
    }

    /// Orders split off `id`, oldest first: (id, status).
    public static func parts(_ db: Connection, of id: Int64) throws -> [(Int64, String)] {
        try db.query("SELECT id, status FROM orders WHERE parent_id = ? ORDER BY id", [.int(id)]) { s throws(SQLiteError) in (s.int(0), s.text(1)) }
    }

    /// Makes `sku` unavailable in `slot` until the next inventory update (on_hand := reserved).
    public static func zeroAvailability(_ db: Connection, slot: Int32, sku: SKUIndex) throws {
        try db.run("UPDATE inventory SET on_hand = reserved WHERE store_slot = ? AND sku_idx = ?", .int(Int64(slot)), .int(Int64(sku)))
    }

    /// A rejection also records the store that gave the order back: the order's store until the reroute that follows
    /// in the same transaction moves it.
    public static func insertEvent(_ db: Connection, orderID: Int64, _ e: NewEvent) throws {
        try db.run(
            """
            INSERT INTO order_events(order_id, at, actor, type, from_status, to_status, reason, store_slot)
            VALUES(?,?,?,?,?,?,?, CASE WHEN ? = 'rejected' THEN (SELECT store_slot FROM orders WHERE id = ?) END)
            """, .int(orderID), .text(e.at), .text(e.actor), .text(e.type), SQLValue(e.from), SQLValue(e.to), SQLValue(e.reason),
            .text(e.type), .int(orderID))
        try Rollups.addEvent(db, orderID: orderID, e)
    }

    // MARK: outbox

    public static func insertOutbox(
        _ db: Connection, orderID: Int64, event: String, target: String, payload: String,
        at: String, due: Double
    ) throws {
        try db.run(
            "INSERT INTO outbox(order_id, event, target, payload, next_attempt_at, created_at) VALUES(?,?,?,?,?,?)",
            .int(orderID), .text(event), .text(target), .text(payload), .double(due), .text(at))
    }

    private static let outboxColumns = "id, order_id, event, target, payload, status, attempts, next_attempt_at, last_error, created_at"

    private static func outboxRow(_ s: Statement) -> OutboxRow {
        OutboxRow(
            id: s.int(0), orderID: s.int(1), event: s.text(2), target: s.text(3), payload: s.text(4), status: s.text(5),
            attempts: Int(s.int(6)), nextAttemptAt: s.double(7), lastError: s.optionalText(8), createdAt: s.text(9))
    }

    /// Pending messages due at `now`, oldest first, each only after every earlier message of its
    /// order and target has been sent.
    public static func dueOutbox(_ db: Connection, now: Double, limit: Int) throws -> [OutboxRow] {
        try db.query(dueOutboxSQL, [.double(now), .int(Int64(limit))]) { outboxRow($0) }
    }

    /// Per (order, target) in order: a message waits while an earlier one of its order and target is pending or dead
    /// (a seek of `outbox_order_target` per candidate).
    static let dueOutboxSQL = """
        SELECT \(outboxColumns) FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?
          AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.order_id = outbox.order_id AND e.target = outbox.target
                          AND e.id < outbox.id AND e.status IN ('pending', 'dead'))
        ORDER BY id LIMIT ?
        """

    /// Messages with id > `after`, oldest first (a page of the outbox; `after` is the last id of the page before).
    public static func outbox(_ db: Connection, status: String?, after: Int64 = 0, limit: Int) throws -> [OutboxRow] {
        if let status {
            return try db.query(
                "SELECT \(outboxColumns) FROM outbox WHERE status = ? AND id > ? ORDER BY id LIMIT ?",
                [.text(status), .int(after), .int(Int64(limit))]
            ) { outboxRow($0) }
        }
        return try db.query("SELECT \(outboxColumns) FROM outbox WHERE id > ? ORDER BY id LIMIT ?", [.int(after), .int(Int64(limit))]) {
            outboxRow($0)
        }
    }

    public static func outboxCounts(_ db: Connection) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for (k, v) in try db.query("SELECT status, COUNT(*) FROM outbox GROUP BY status", [], { s throws(SQLiteError) in (s.text(0), Int(s.int(1))) })
        {
            out[k] = v
        }
        return out
    }

    /// Messages waiting and parked: a range of the `outbox_due` index each, however many were sent over the years
    /// (`/metrics` is scraped every few seconds; counting every sent message took 0.35 s at 5 million).
    public static func outboxBacklog(_ db: Connection) throws -> (pending: Int, dead: Int) {
        let count = { (status: String) throws -> Int in
            Int(try db.query("SELECT COUNT(*) FROM outbox WHERE status = ?", [.text(status)]) { s throws(SQLiteError) in s.int(0) }.first ?? 0)
        }
        return (try count("pending"), try count("dead"))
    }

    /// One step of the walk that finds sent messages older than `cutoff` (RFC 3339, as `sent_at` is written): up
    /// to `limit` messages with id > `after`, oldest first, along the primary key (no index on `sent_at` to keep
    /// up). The walk ends at the first message created at or after `cutoff`: every later one is newer.
    /// Pending and dead messages are never chosen.
    public static func sentOutbox(
        _ db: Connection, before cutoff: String, after: Int64, limit: Int
    )
        throws -> (ids: [Int64], last: Int64, reachedEnd: Bool)
    {
        let rows = try db.query(
            "SELECT id, status, sent_at, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            [.int(after), .int(Int64(limit))]
        ) { ($0.int(0), $0.text(1), $0.optionalText(2), $0.text(3)) }
        var ids: [Int64] = []
        var last = after
        var reachedEnd = rows.count < limit
        for (id, status, sentAt, createdAt) in rows {
            if createdAt >= cutoff {
                reachedEnd = true
                break
            }
            last = id
            if status == "sent", let sentAt, sentAt < cutoff { ids.append(id) }
        }
        return (ids, last, reachedEnd)
    }

    /// Deletes sent messages by id (never a pending or dead one). Returns how many went.
    public static func deleteSentOutbox(_ db: Connection, ids: [Int64]) throws -> Int {
        try deleteEach(db, "DELETE FROM outbox WHERE id = ? AND status = 'sent'", ids: ids)
    }

    /// Runs a one-id DELETE for each of `ids`; the rows deleted.
    static func deleteEach(_ db: Connection, _ sql: String, ids: [Int64]) throws -> Int {
        var n = 0
        for id in ids {
            try db.run(sql, .int(id))
            n += db.changes
        }
        return n
    }

    public static func markOutboxSent(_ db: Connection, id: Int64, at: String) throws {
        try db.run("UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending'", .text(at), .int(id))
    }

    public static func markOutboxFailed(_ db: Connection, id: Int64, error: String, nextAttemptAt: Double, dead: Bool) throws {
        try db.run(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, status = ? WHERE id = ? AND status = 'pending'",
            .text(error), .double(nextAttemptAt), .text(dead ? "dead" : "pending"), .int(id))
    }

    /// Puts a dead message back in the queue. False when it is not dead.
    public static func retryOutbox(_ db: Connection, id: Int64, now: Double) throws -> Bool {
        try db.run("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE id = ? AND status = 'dead'", .double(now), .int(id))
        return db.changes == 1
    }

    public static func order(_ db: Connection, platform: String, platformOrderID: String) throws -> Int64? {
        try db.query(
            "SELECT id FROM orders WHERE platform = ? AND platform_order_id = ? AND parent_id IS NULL ORDER BY id LIMIT 1",
            [.text(platform), .text(platformOrderID)]
        ) { $0.int(0) }.first
    }

    /// Records that the platform cancelled an order ocss has not received (kept if one is already there).
    public static func insertPlatformCancellation(_ db: Connection, platform: String, platformOrderID: String, event: String, at: String) throws {
        try db.run(
            "INSERT OR IGNORE INTO platform_cancellations(platform, platform_order_id, event, at) VALUES(?,?,?,?)",
            .text(platform), .text(platformOrderID), .text(event), .text(at))
    }

    /// Every platform order cancelled before ocss received it, as (platform, platform_order_id).
    public static func platformCancellations(_ db: Connection) throws -> [(platform: String, id: String)] {
        try db.query("SELECT platform, platform_order_id FROM platform_cancellations") { s throws(SQLiteError) in (s.text(0), s.text(1)) }
    }

    /// Every order a platform order became: the order itself, then the parts split off it, by id.
    public static func orders(_ db: Connection, platform: String, platformOrderID: String) throws -> [Int64] {
        try db.query(
            "SELECT id FROM orders WHERE platform = ? AND platform_order_id = ? ORDER BY id",
            [.text(platform), .text(platformOrderID)]
        ) { $0.int(0) }
    }

    public static func tracking(_ db: Connection, id: Int64) throws -> (carrier: String?, number: String?) {
        try db.query("SELECT carrier, tracking_no FROM orders WHERE id = ?", [.int(id)]) { s throws(SQLiteError) in
            (s.optionalText(0), s.optionalText(1))
        }.first ?? (nil, nil)
    }

    public static func assignment(_ db: Connection, id: Int64) throws -> (orderID: Int64, slot: Int32, status: String)? {
        try db.query("SELECT order_id, store_slot, status FROM assignments WHERE id = ?", [.int(id)]) { s throws(SQLiteError) in
            (s.int(0), Int32(s.int(1)), s.text(2))
        }.first
    }
}

extension Repository {
    /// The applied snapshot version of `scope` ("all" or "store:<id>"), 0 when none.
    public static func inventoryVersion(_ db: Connection, scope: String) throws -> Int64 {
        try db.query("SELECT version FROM inventory_versions WHERE scope = ?", [.text(scope)]) { $0.int(0) }.first ?? 0
    }

    public static func setInventoryVersion(_ db: Connection, scope: String, version: Int64, at: String) throws {
        try db.run(
            """
            INSERT INTO inventory_versions(scope, version, applied_at) VALUES(?,?,?)
            ON CONFLICT(scope) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at
            """, .text(scope), .int(version), .text(at))
    }

    /// Records a delta id; false when it was applied before (the delta is then a no-op).
    public static func claimDelta(_ db: Connection, id: String, at: String) throws -> Bool {
        try db.run("INSERT OR IGNORE INTO inventory_deltas(id, applied_at) VALUES(?,?)", .text(id), .text(at))
        return db.changes == 1
    }

    /// Sets every on-hand of `slot` not in `keep` to 0 (a snapshot replaces the whole catalogue of the store).
    public static func zeroOnHand(_ db: Connection, slot: Int32, except keep: Set<SKUIndex>) throws {
        let rows = try db.query("SELECT sku_idx FROM inventory WHERE store_slot = ? AND on_hand != 0", [.int(Int64(slot))]) { Int32($0.int(0)) }
        for k in rows where !keep.contains(k) {
            try db.run("UPDATE inventory SET on_hand = 0 WHERE store_slot = ? AND sku_idx = ?", .int(Int64(slot)), .int(Int64(k)))
        }
    }
}

/// A recorded order as `ocss replay` needs it: where, when, what, and what was decided first.
public struct ReplayRow: Sendable {
    public var id: Int64
    public var createdAt: String
    public var status: String
    public var parentID: Int64?
    public var point: GeoPoint?
    public var policyVersion: Int64?
    /// The first assignment's store and distance (the original decision, before any reroute).
    public var firstSlot: Int32?
    public var firstDistance: Double?
    public var lines: [(sku: String?, quantity: Int32)]
}

extension Repository {
    /// Orders created at or after `since` (RFC 3339 prefix compare), oldest first, with their lines.
    public static func replayOrders(_ db: Connection, since: String) throws -> [ReplayRow] {
        var rows = try db.query(
            """
            SELECT o.id, o.created_at, o.status, o.parent_id, o.cust_lon, o.cust_lat, o.policy_version,
              (SELECT a.store_slot FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1),
              (SELECT a.distance_m FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1)
            FROM orders o WHERE o.created_at >= ? ORDER BY o.id
            """, [.text(since)]
        ) { s throws(SQLiteError) in
            ReplayRow(
                id: s.int(0), createdAt: s.text(1), status: s.text(2), parentID: s.optionalInt(3),
                point: s.isNull(4) ? nil : GeoPoint(lon: s.double(4), lat: s.double(5)), policyVersion: s.optionalInt(6),
                firstSlot: s.optionalInt(7).map { Int32($0) }, firstDistance: s.isNull(8) ? nil : s.double(8), lines: [])
        }
        guard let first = rows.first else { return [] }
        var byID: [Int64: Int] = [:]
        for (i, r) in rows.enumerated() { byID[r.id] = i }
        let lines = try db.query(
            "SELECT order_id, sku, quantity FROM order_lines WHERE order_id >= ? ORDER BY order_id, line_no",
            [.int(first.id)]
        ) { s throws(SQLiteError) in
            (s.int(0), s.isNull(1) ? nil : s.text(1), Int32(s.int(2)))
        }
        for (id, sku, q) in lines { if let i = byID[id] { rows[i].lines.append((sku, q)) } }
        return rows
    }

    /// Live reservation rows of orders with id >= `fromID`.
    public static func reservationsFrom(
        _ db: Connection, orderID fromID: Int64
    ) throws -> [(order: Int64, slot: Int32, sku: SKUIndex, quantity: Int32)] {
        try db.query("SELECT order_id, store_slot, sku_idx, quantity FROM reservations WHERE order_id >= ?", [.int(fromID)]) {
            s throws(SQLiteError) in
            (s.int(0), Int32(s.int(1)), Int32(s.int(2)), Int32(s.int(3)))
        }
    }
}
