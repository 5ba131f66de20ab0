/// Analytics: plain SQL over daily rollups (`Rollups`, kept in each order's and event's own transaction) and the
/// promotion tables, so a query reads days, not orders. `ocss-bench analytics` times them on a million orders.
public enum Analytics {
    public enum SalesKey: String, Sendable, CaseIterable {
        case day, platform, store, province, city
    }

    public struct SalesRow: Sendable {
        public var key: String
        /// ISO 4217: each currency is its own row; money is never added across currencies.
        public var currency: String
        public var orders: Int64
        public var units: Int64
        public var amountMinor: Int64
    }

    /// Orders, units and amount by `key` and currency for days `from`...`to` (YYYY-MM-DD in the business time zone,
    /// inclusive), from the daily rollup; cancelled orders are taken out when they are cancelled. Orders count for the
    /// store that first took them. Days come in date order, other keys most orders first.
    public static func sales(_ db: Connection, from: String, to: String, by key: SalesKey, limit: Int = 1000) throws -> [SalesRow] {
        let order = key == .day ? "1, 2" : "3 DESC, 1, 2"
        let rows = try db.query(
            """
            SELECT \(key == .day ? "day" : "key"), currency, sum(orders), sum(units), sum(amount_minor) FROM daily_sales
            WHERE dim = ? AND day BETWEEN ? AND ? GROUP BY 1, 2 HAVING sum(orders) > 0 ORDER BY \(order) LIMIT ?
            """, [.text(key == .day ? "all" : key.rawValue), .text(from), .text(to), .int(Int64(limit))]
        ) { s in
            SalesRow(key: s.text(0), currency: s.text(1), orders: s.int(2), units: s.int(3), amountMinor: s.int(4))
        }
        switch key {
        case .store:
            let ids = Dictionary(try db.query("SELECT slot, id FROM stores") { (String($0.int(0)), $0.text(1)) }, uniquingKeysWith: { a, _ in a })
            return rows.map {
                var r = $0; r.key = r.key.isEmpty ? "(none)" : ids[r.key] ?? "(slot \(r.key))"; return r
            }
        case .province, .city:
            return rows.map {
                var r = $0; if r.key.isEmpty { r.key = "(unknown)" }; return r
            }
        default:
            return rows
        }
    }

    public struct RoutingKPIs: Sendable {
        public var orders: Int64 = 0
        public var routed: Int64 = 0
        public var unroutable: Int64 = 0
        public var addressReview: Int64 = 0
        public var meanDistanceMetres: Double?
        /// From the 100 m histogram: the upper edge of the bucket holding the 90th percentile.
        public var p90DistanceMetres: Double?
        /// Rejections by stores (each one reroutes the order).
        public var rerouted: Int64 = 0
        public var accepted: Int64 = 0
        public var meanSecondsToAccept: Double?
        public var slaBreaches: Int64 = 0

        public var rerouteRate: Double { routed == 0 ? 0 : Double(rerouted) / Double(routed) }
        public var unroutableRate: Double { orders == 0 ? 0 : Double(unroutable) / Double(orders) }
    }

    /// Routing and workflow figures for the window from the daily rollups: distance (mean, p90), reroutes,
    /// unroutable, time to accept, SLA breaches (acceptance timeouts and missed ship-by).
    public static func routing(_ db: Connection, from: String, to: String) throws -> RoutingKPIs {
        var k = RoutingKPIs()
        let args: [SQLValue] = [.text(from), .text(to)]
        if let r = try db.query(
            """
            SELECT COALESCE(sum(orders), 0), COALESCE(sum(routed), 0), COALESCE(sum(review), 0), COALESCE(sum(distance_sum), 0)
            FROM daily_routing WHERE day BETWEEN ? AND ?
            """, args, { s in (s.int(0), s.int(1), s.int(2), s.double(3)) }
        ).first {
            (k.orders, k.routed, k.addressReview) = (r.0, r.1, r.2)
            if r.1 > 0 { k.meanDistanceMetres = r.3 / Double(r.1) }
        }
        let hist = try db.query(
            "SELECT bucket, sum(n) FROM daily_distance WHERE day BETWEEN ? AND ? GROUP BY bucket ORDER BY bucket",
            args
        ) { ($0.int(0), $0.int(1)) }
        let total = hist.reduce(Int64(0)) { $0 + $1.1 }
        if total > 0 {
            var seen: Int64 = 0
            let target = Int64((Double(total) * 0.9).rounded(.up))
            for (bucket, n) in hist {
                seen += n
                if seen >= target { k.p90DistanceMetres = Double(bucket + 1) * Rollups.bucketMetres; break }
            }
        }
        for (type, key, n, seconds) in try db.query(
            """
            SELECT type, CASE WHEN type = 'rejected' THEN \(db.isPostgres ? "split_part(key, '|', 1)" : "substr(key, 1, instr(key, '|') - 1)")
              ELSE '' END, sum(n), sum(seconds_sum)
            FROM daily_events WHERE day BETWEEN ? AND ? GROUP BY 1, 2
            """, args, { s in (s.text(0), s.text(1), s.int(2), s.double(3)) })
        {
            switch type {
            case "rejected":
                k.rerouted += n
                if key == "sla_timeout" { k.slaBreaches += n }
            case "ship_by_missed": k.slaBreaches += n
            case "unroutable": k.unroutable += n
            case "accepted":
                k.accepted = n
                if n > 0 { k.meanSecondsToAccept = seconds / Double(n) }
            default: break
            }
        }
        return k
    }

    public struct StockOut: Sendable {
        public var kind: String  // out_of_stock_rejection | unroutable
        public var key: String  // store id, or the unroutable reason
        public var count: Int64
    }

    /// Stock-outs: stores that rejected orders for missing stock, and why orders could not be routed.
    public static func stockOuts(_ db: Connection, from: String, to: String, limit: Int = 50) throws -> [StockOut] {
        let args: [SQLValue] = [.text(from), .text(to), .int(Int64(limit))]
        let ids = Dictionary(try db.query("SELECT slot, id FROM stores") { ("store:\($0.int(0))", $0.text(1)) }, uniquingKeysWith: { a, _ in a })
        let rejections = try db.query(
            """
            SELECT substr(key, 14), sum(n) FROM daily_events WHERE type = 'rejected' AND day BETWEEN ? AND ? AND key LIKE 'out_of_stock|%'
            GROUP BY 1 ORDER BY 2 DESC LIMIT ?
            """, args
        ) { StockOut(kind: "out_of_stock_rejection", key: ids[$0.text(0)] ?? $0.text(0), count: $0.int(1)) }
        let unroutable = try db.query(
            """
            SELECT key, sum(n) FROM daily_events WHERE type = 'unroutable' AND day BETWEEN ? AND ? GROUP BY 1 ORDER BY 2 DESC LIMIT ?
            """, args
        ) { StockOut(kind: "unroutable", key: $0.text(0).isEmpty ? "(none)" : $0.text(0), count: $0.int(1)) }
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
        let rows = try db.query(
            """
            SELECT k.id, k.name, (SELECT count(*) FROM promo_codes c WHERE c.campaign_id = k.id),
                   (SELECT count(*) FROM promo_codes c WHERE c.campaign_id = k.id AND c.redeemed_at IS NOT NULL)
            FROM campaigns k ORDER BY k.created_at DESC, k.id LIMIT 100
            """
        ) { PromotionRow(campaignID: $0.text(0), name: $0.text(1), issued: $0.int(2), redeemed: $0.int(3)) }
        return (rows, failed)
    }
}
