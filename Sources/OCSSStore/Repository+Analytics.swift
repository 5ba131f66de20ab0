/// Analytics: plain SQL over the orders, events and promotion tables, each query bounded by a day window and served
/// by an index (`orders_day_facts` covers every sales grouping; `order_events_type` the workflow figures).
/// `ocss-bench analytics` times them on a million orders.
public enum Analytics {
    public enum SalesKey: String, Sendable, CaseIterable {
        case day, platform, store, province, city
    }

    public struct SalesRow: Sendable {
        public var key: String
        public var orders: Int64
        public var units: Int64
        public var amountMinor: Int64
    }

    /// Orders, units and amount by `key` for days `from`...`to` (YYYY-MM-DD, inclusive); cancelled orders left out.
    public static func sales(_ db: Connection, from: String, to: String, by key: SalesKey, limit: Int = 1000) throws -> [SalesRow] {
        let column: String
        switch key {
        case .day: column = "o.day"
        case .platform: column = "o.platform"
        case .store: column = "COALESCE(s.id, '(none)')"
        case .province: column = "COALESCE(o.province, '(unknown)')"
        case .city: column = "COALESCE(o.city, '(unknown)')"
        }
        let join = key == .store ? "LEFT JOIN stores s ON s.slot = o.store_slot" : ""
        let order = key == .day ? "1" : "4 DESC"
        return try db.query("""
            SELECT \(column), count(*), COALESCE(sum(o.units), 0), COALESCE(sum(o.amount_minor), 0)
            FROM orders o INDEXED BY orders_day_facts \(join)
            WHERE o.day BETWEEN ? AND ? AND o.status <> 'cancelled'
            GROUP BY 1 ORDER BY \(order) LIMIT ?
            """, [.text(from), .text(to), .int(Int64(limit))]) { s in
            SalesRow(key: s.text(0), orders: s.int(1), units: s.int(2), amountMinor: s.int(3))
        }
    }

    public struct RoutingKPIs: Sendable {
        public var orders: Int64 = 0
        public var routed: Int64 = 0
        public var unroutable: Int64 = 0
        public var addressReview: Int64 = 0
        public var meanDistanceMetres: Double?
        public var p90DistanceMetres: Double?
        public var rerouted: Int64 = 0
        public var accepted: Int64 = 0
        public var meanSecondsToAccept: Double?
        public var slaBreaches: Int64 = 0

        public var rerouteRate: Double { routed == 0 ? 0 : Double(rerouted) / Double(routed) }
        public var unroutableRate: Double { orders == 0 ? 0 : Double(unroutable) / Double(orders) }
    }

    /// Routing and workflow figures for the window: distance (mean, p90), reroutes, unroutable, time to accept,
    /// SLA breaches (acceptance timeouts and missed ship-by).
    public static func routing(_ db: Connection, from: String, to: String) throws -> RoutingKPIs {
        var k = RoutingKPIs()
        let args: [SQLValue] = [.text(from), .text(to)]
        if let r = try db.query("""
            SELECT count(*), count(o.store_slot), sum(o.status = 'unroutable'), sum(o.status = 'address_review'), avg(o.distance_m)
            FROM orders o INDEXED BY orders_day_facts WHERE o.day BETWEEN ? AND ?
            """, args, { s in (s.int(0), s.int(1), s.int(2), s.int(3), s.isNull(4) ? nil : s.double(4)) }).first {
            (k.orders, k.routed, k.unroutable, k.addressReview, k.meanDistanceMetres) = r
        }
        let withDistance = try db.query("""
            SELECT count(*) FROM orders INDEXED BY orders_day_facts WHERE day BETWEEN ? AND ? AND distance_m IS NOT NULL
            """, args) { $0.int(0) }.first ?? 0
        if withDistance > 0 {
            k.p90DistanceMetres = try db.query("""
                SELECT distance_m FROM orders INDEXED BY orders_day_facts WHERE day BETWEEN ? AND ? AND distance_m IS NOT NULL
                ORDER BY distance_m LIMIT 1 OFFSET ?
                """, args + [.int(min(withDistance - 1, Int64((Double(withDistance) * 0.9).rounded(.down))))]) { $0.double(0) }.first
        }
        // Event times are RFC 3339 instants; the day window covers [from 00:00, to 24:00) UTC.
        let window: [SQLValue] = [.text(from + "T00:00:00"), .text(to + "T23:59:59.999999Z")]
        k.rerouted = try db.query("""
            SELECT count(DISTINCT order_id) FROM order_events WHERE type = 'rejected' AND at BETWEEN ? AND ?
            """, window) { $0.int(0) }.first ?? 0
        k.slaBreaches = try db.query("""
            SELECT (SELECT count(*) FROM order_events WHERE type = 'rejected' AND at BETWEEN ?1 AND ?2 AND reason LIKE 'sla_timeout%')
                 + (SELECT count(*) FROM order_events WHERE type = 'ship_by_missed' AND at BETWEEN ?1 AND ?2)
            """, window) { $0.int(0) }.first ?? 0
        if let r = try db.query("""
            SELECT count(*), avg((julianday(e.at) - julianday(o.created_at)) * 86400.0)
            FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.type = 'accepted' AND e.at BETWEEN ? AND ?
            """, window, { s in (s.int(0), s.isNull(1) ? nil : s.double(1)) }).first {
            (k.accepted, k.meanSecondsToAccept) = r
        }
        return k
    }

    public struct StockOut: Sendable {
        public var kind: String   // out_of_stock_rejection | unroutable
        public var key: String    // store id, or the unroutable reason
        public var count: Int64
    }

    /// Stock-outs: stores that rejected orders for missing stock, and why orders could not be routed.
    public static func stockOuts(_ db: Connection, from: String, to: String, limit: Int = 50) throws -> [StockOut] {
        let window: [SQLValue] = [.text(from + "T00:00:00"), .text(to + "T23:59:59.999999Z")]
        let rejections = try db.query("""
            SELECT COALESCE(s.id, '(unknown)'), count(*) FROM order_events e
            LEFT JOIN assignments a ON a.order_id = e.order_id AND a.status = 'rejected'
            LEFT JOIN stores s ON s.slot = a.store_slot
            WHERE e.type = 'rejected' AND e.at BETWEEN ? AND ? AND e.reason LIKE 'out_of_stock%'
            GROUP BY 1 ORDER BY 2 DESC LIMIT ?
            """, window + [.int(Int64(limit))]) { StockOut(kind: "out_of_stock_rejection", key: $0.text(0), count: $0.int(1)) }
        let unroutable = try db.query("""
            SELECT COALESCE(reason, '(none)'), count(*) FROM order_events
            WHERE type IN ('routed', 'unroutable') AND to_status = 'unroutable' AND at BETWEEN ? AND ?
            GROUP BY 1 ORDER BY 2 DESC LIMIT ?
            """, window + [.int(Int64(limit))]) { StockOut(kind: "unroutable", key: $0.text(0), count: $0.int(1)) }
        return rejections + unroutable
    }

    public struct PromotionRow: Sendable {
        public var campaignID: String
        public var name: String
        public var issued: Int64
        public var redeemed: Int64
    }

    /// Codes issued and redeemed per campaign, and failed redemption attempts overall.
    public static func promotions(_ db: Connection) throws -> (campaigns: [PromotionRow], failedAttempts: Int64) {
        let failed = try db.query("SELECT count(*) FROM redemption_attempts WHERE result <> 'redeemed'") { $0.int(0) }.first ?? 0
        let rows = try db.query("""
            SELECT k.id, k.name, (SELECT count(*) FROM promo_codes c WHERE c.campaign_id = k.id),
                   (SELECT count(*) FROM promo_codes c WHERE c.campaign_id = k.id AND c.redeemed_at IS NOT NULL)
            FROM campaigns k ORDER BY k.created_at DESC, k.id LIMIT 100
            """) { PromotionRow(campaignID: $0.text(0), name: $0.text(1), issued: $0.int(2), redeemed: $0.int(3)) }
        return (rows, failed)
    }
}
