import Glibc
import OCSSCore

/// Rollup changes not yet written: summed per key, so a batch of orders writes each counter once.
struct RollupDelta {
    struct SalesKey: Hashable { let dim: String, day: String, key: String, currency: String }
    struct EventKey: Hashable { let day: String, type: String, key: String }
    struct DistanceKey: Hashable { let day: String, bucket: Int64 }
    var sales: [SalesKey: (orders: Int64, units: Int64, amount: Int64)] = [:]
    var routing: [String: (orders: Int64, routed: Int64, review: Int64, distance: Double)] = [:]
    var distance: [DistanceKey: Int64] = [:]
    var events: [EventKey: (n: Int64, seconds: Double)] = [:]

    var isEmpty: Bool { sales.isEmpty && routing.isEmpty && distance.isEmpty && events.isEmpty }

    mutating func merge(_ o: RollupDelta) {
        for (k, v) in o.sales {
            let c = sales[k] ?? (0, 0, 0)
            sales[k] = (c.orders + v.orders, c.units &+ v.units, c.amount &+ v.amount)
        }
        for (k, v) in o.routing {
            let c = routing[k] ?? (0, 0, 0, 0)
            routing[k] = (c.orders + v.orders, c.routed + v.routed, c.review + v.review, c.distance + v.distance)
        }
        for (k, v) in o.distance { distance[k, default: 0] += v }
        for (k, v) in o.events {
            let c = events[k] ?? (0, 0)
            events[k] = (c.n + v.n, c.seconds + v.seconds)
        }
    }
}

/// Daily rollups behind analytics: sales per dimension, routing per day, a distance histogram (100 m buckets), and
/// workflow events per type and key. Each is updated in the same transaction as the order or event it counts, so
/// they are exactly as durable as the orders; `rebuildSQL` recomputes them from the tables (migration 7, benchmarks).
/// An order counts for the store that first took it and the distance to that store (its first assignment), and a
/// cancellation takes it out of sales.
public enum Rollups {
    static let dims = ["all", "platform", "store", "province", "city"]
    /// Distances are counted in 100 m buckets up to 100 km (bucket 1000 holds everything farther).
    public static let bucketMetres = 100.0

    /// Recomputes every rollup from the tables, with days in the business time zone (the process's `TZ`, which the
    /// service sets from its configuration before it opens the database: SQLite's `localtime` follows it, daylight
    /// saving included) and sales per currency.
    public static let rebuildSQL = """
        UPDATE orders SET day = date(created_at, 'localtime') WHERE day IS NOT NULL;
        DELETE FROM daily_sales; DELETE FROM daily_routing; DELETE FROM daily_distance; DELETE FROM daily_events;
        INSERT INTO daily_sales SELECT 'all', day, '', COALESCE(currency, 'CNY'), count(*), COALESCE(sum(units), 0),
          COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, 4;
        INSERT INTO daily_sales SELECT 'platform', day, platform, COALESCE(currency, 'CNY'), count(*), COALESCE(sum(units), 0),
          COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, platform, 4;
        INSERT INTO daily_sales SELECT 'store', day, COALESCE(CAST(first_slot AS TEXT), ''), currency, count(*), COALESCE(sum(units), 0),
          COALESCE(sum(amount_minor), 0) FROM (SELECT o.day, o.units, o.amount_minor, COALESCE(o.currency, 'CNY') AS currency,
            COALESCE((SELECT a.store_slot FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.store_slot) AS first_slot
          FROM orders o WHERE o.day IS NOT NULL AND o.status <> 'cancelled') GROUP BY day, 3, 4;
        INSERT INTO daily_sales SELECT 'province', day, COALESCE(province, ''), COALESCE(currency, 'CNY'), count(*), COALESCE(sum(units), 0),
          COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, 3, 4;
        INSERT INTO daily_sales SELECT 'city', day, COALESCE(city, ''), COALESCE(currency, 'CNY'), count(*), COALESCE(sum(units), 0),
          COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, 3, 4;
        CREATE TEMP TABLE first_routes AS SELECT o.id, o.day, o.status,
          COALESCE((SELECT a.store_slot FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.store_slot) AS slot,
          COALESCE((SELECT a.distance_m FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.distance_m) AS distance,
          EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.type = 'address_review') AS review
          FROM orders o WHERE o.day IS NOT NULL;
        INSERT INTO daily_routing SELECT day, count(*), count(slot), sum(review), COALESCE(sum(distance), 0)
          FROM first_routes GROUP BY day;
        INSERT INTO daily_distance SELECT day, min(CAST(distance / 100 AS INTEGER), 1000), count(*)
          FROM first_routes WHERE distance IS NOT NULL GROUP BY day, 2;
        DROP TABLE first_routes;
        INSERT INTO daily_events SELECT date(e.at, 'localtime'), 'rejected',
          CASE WHEN e.reason LIKE 'out_of_stock%' THEN 'out_of_stock' WHEN e.reason LIKE 'sla_timeout%' THEN 'sla_timeout' ELSE 'other' END
            || '|' || COALESCE('store:' || e.store_slot, e.actor), count(*), 0 FROM order_events e WHERE e.type = 'rejected' GROUP BY 1, 3;
        INSERT INTO daily_events SELECT date(e.at, 'localtime'), 'accepted', '', count(*),
          COALESCE(sum((julianday(e.at) - julianday(o.created_at)) * 86400.0), 0)
          FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.type = 'accepted' GROUP BY 1;
        INSERT INTO daily_events SELECT date(at, 'localtime'), 'ship_by_missed', '', count(*), 0 FROM order_events
          WHERE type = 'ship_by_missed' GROUP BY 1;
        INSERT INTO daily_events SELECT date(at, 'localtime'), 'unroutable', COALESCE(reason, ''), count(*), 0 FROM order_events
          WHERE to_status = 'unroutable' GROUP BY 1, 3;
        """

    /// `rebuildSQL` in PostgreSQL's dialect, with days in `zone` (PostgreSQL has no process `TZ` to follow).
    static func rebuildSQLPostgres(zone: String) -> String {
        let z = "'" + zone.filter { $0 != "'" } + "'"
        func day(_ column: String) -> String { "to_char(\(column)::timestamptz AT TIME ZONE \(z), 'YYYY-MM-DD')" }
        return """
            UPDATE orders SET day = \(day("created_at")) WHERE day IS NOT NULL;
            DELETE FROM daily_sales; DELETE FROM daily_routing; DELETE FROM daily_distance; DELETE FROM daily_events;
            INSERT INTO daily_sales SELECT 'all', day, '', COALESCE(currency, 'CNY'), count(*), COALESCE(sum(units), 0),
              COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, 4;
            INSERT INTO daily_sales SELECT 'platform', day, platform, COALESCE(currency, 'CNY'), count(*), COALESCE(sum(units), 0),
              COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, platform, 4;
            INSERT INTO daily_sales SELECT 'store', day, COALESCE(CAST(first_slot AS TEXT), ''), currency, count(*),
              COALESCE(sum(units), 0), COALESCE(sum(amount_minor), 0) FROM (SELECT o.day, o.units, o.amount_minor,
                COALESCE(o.currency, 'CNY') AS currency,
                COALESCE((SELECT a.store_slot FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.store_slot) AS first_slot
              FROM orders o WHERE o.day IS NOT NULL AND o.status <> 'cancelled') t GROUP BY day, 3, 4;
            INSERT INTO daily_sales SELECT 'province', day, COALESCE(province, ''), COALESCE(currency, 'CNY'), count(*),
              COALESCE(sum(units), 0), COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled'
              GROUP BY day, 3, 4;
            INSERT INTO daily_sales SELECT 'city', day, COALESCE(city, ''), COALESCE(currency, 'CNY'), count(*), COALESCE(sum(units), 0),
              COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, 3, 4;
            CREATE TEMP TABLE first_routes AS SELECT o.id, o.day, o.status,
              COALESCE((SELECT a.store_slot FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.store_slot) AS slot,
              COALESCE((SELECT a.distance_m FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.distance_m) AS distance,
              CASE WHEN EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.type = 'address_review') THEN 1 ELSE 0 END
                AS review
              FROM orders o WHERE o.day IS NOT NULL;
            INSERT INTO daily_routing SELECT day, count(*), count(slot), sum(review), COALESCE(sum(distance), 0)
              FROM first_routes GROUP BY day;
            INSERT INTO daily_distance SELECT day, LEAST(floor(distance / 100)::bigint, 1000), count(*)
              FROM first_routes WHERE distance IS NOT NULL GROUP BY day, 2;
            DROP TABLE first_routes;
            INSERT INTO daily_events SELECT \(day("e.at")), 'rejected',
              CASE WHEN e.reason LIKE 'out_of_stock%' THEN 'out_of_stock' WHEN e.reason LIKE 'sla_timeout%' THEN 'sla_timeout'
                ELSE 'other' END || '|' || COALESCE('store:' || e.store_slot, e.actor), count(*), 0
              FROM order_events e WHERE e.type = 'rejected' GROUP BY 1, 3;
            INSERT INTO daily_events SELECT \(day("e.at")), 'accepted', '', count(*),
              COALESCE(sum(EXTRACT(EPOCH FROM (e.at::timestamptz - o.created_at::timestamptz))), 0)
              FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.type = 'accepted' GROUP BY 1;
            INSERT INTO daily_events SELECT \(day("at")), 'ship_by_missed', '', count(*), 0 FROM order_events
              WHERE type = 'ship_by_missed' GROUP BY 1;
            INSERT INTO daily_events SELECT \(day("at")), 'unroutable', COALESCE(reason, ''), count(*), 0 FROM order_events
              WHERE to_status = 'unroutable' GROUP BY 1, 3;
            """
    }

    /// Migration 7's rebuild, as it was: a database upgraded from before it has migration 7's tables at that step.
    static let rebuildSQLAtMigration7 = """
        DELETE FROM daily_sales; DELETE FROM daily_routing; DELETE FROM daily_distance; DELETE FROM daily_events;
        INSERT INTO daily_sales SELECT 'all', day, '', count(*), COALESCE(sum(units), 0), COALESCE(sum(amount_minor), 0)
          FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day;
        INSERT INTO daily_sales SELECT 'platform', day, platform, count(*), COALESCE(sum(units), 0), COALESCE(sum(amount_minor), 0)
          FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, platform;
        INSERT INTO daily_sales SELECT 'store', day, COALESCE(CAST(first_slot AS TEXT), ''), count(*), COALESCE(sum(units), 0),
          COALESCE(sum(amount_minor), 0) FROM (SELECT o.day, o.units, o.amount_minor,
            COALESCE((SELECT a.store_slot FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.store_slot) AS first_slot
          FROM orders o WHERE o.day IS NOT NULL AND o.status <> 'cancelled') GROUP BY day, 3;
        INSERT INTO daily_sales SELECT 'province', day, COALESCE(province, ''), count(*), COALESCE(sum(units), 0),
          COALESCE(sum(amount_minor), 0) FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, 3;
        INSERT INTO daily_sales SELECT 'city', day, COALESCE(city, ''), count(*), COALESCE(sum(units), 0), COALESCE(sum(amount_minor), 0)
          FROM orders WHERE day IS NOT NULL AND status <> 'cancelled' GROUP BY day, 3;
        CREATE TEMP TABLE first_routes AS SELECT o.id, o.day, o.status,
          COALESCE((SELECT a.store_slot FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.store_slot) AS slot,
          COALESCE((SELECT a.distance_m FROM assignments a WHERE a.order_id = o.id ORDER BY a.id LIMIT 1), o.distance_m) AS distance,
          EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.type = 'address_review') AS review
          FROM orders o WHERE o.day IS NOT NULL;
        INSERT INTO daily_routing SELECT day, count(*), count(slot), sum(review), COALESCE(sum(distance), 0)
          FROM first_routes GROUP BY day;
        INSERT INTO daily_distance SELECT day, min(CAST(distance / 100 AS INTEGER), 1000), count(*)
          FROM first_routes WHERE distance IS NOT NULL GROUP BY day, 2;
        DROP TABLE first_routes;
        INSERT INTO daily_events SELECT substr(e.at, 1, 10), 'rejected',
          CASE WHEN e.reason LIKE 'out_of_stock%' THEN 'out_of_stock' WHEN e.reason LIKE 'sla_timeout%' THEN 'sla_timeout' ELSE 'other' END
            || '|' || e.actor, count(*), 0 FROM order_events e WHERE e.type = 'rejected' GROUP BY 1, 3;
        INSERT INTO daily_events SELECT substr(e.at, 1, 10), 'accepted', '', count(*),
          COALESCE(sum((julianday(e.at) - julianday(o.created_at)) * 86400.0), 0)
          FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.type = 'accepted' GROUP BY 1;
        INSERT INTO daily_events SELECT substr(at, 1, 10), 'ship_by_missed', '', count(*), 0 FROM order_events
          WHERE type = 'ship_by_missed' GROUP BY 1;
        INSERT INTO daily_events SELECT substr(at, 1, 10), 'unroutable', COALESCE(reason, ''), count(*), 0 FROM order_events
          WHERE to_status = 'unroutable' GROUP BY 1, 3;
        """

    /// A new order's facts, counted once.
    static func addOrder(
        _ db: Connection, facts f: OrderFacts, platform: String, storeSlot: Int32?, distance: Double?,
        status: OrderStatus
    ) throws {
        try addSales(
            db, day: f.day, currency: f.currency, keys: keys(platform: platform, storeSlot: storeSlot, province: f.province, city: f.city),
            orders: 1, units: f.units, amount: f.amountMinor)
        var d = RollupDelta()
        d.routing[f.day] = (1, storeSlot == nil ? 0 : 1, status == .address_review ? 1 : 0, distance ?? 0)
        try apply(db, d)
        if let distance { try addDistance(db, day: f.day, metres: distance, n: 1) }
    }

    /// An order first held for address review, routed after an admin corrected it: it moves from "no store" to its
    /// store in sales and joins the routed orders and the distance histogram.
    public static func routedAfterReview(_ db: Connection, orderID: Int64, slot: Int32, distance: Double) throws {
        guard
            let (day, units, amount, currency) = try db.query(
                "SELECT day, units, amount_minor, COALESCE(currency, 'CNY') FROM orders WHERE id = ? AND day IS NOT NULL",
                [.int(orderID)], { ($0.text(0), $0.int(1), $0.int(2), $0.text(3)) }
            ).first
        else { return }
        try addSales(db, day: day, currency: currency, keys: [("store", "")], orders: -1, units: 0 &- units, amount: 0 &- amount)
        try addSales(db, day: day, currency: currency, keys: [("store", String(slot))], orders: 1, units: units, amount: amount)
        var d = RollupDelta()
        d.routing[day] = (0, 1, 0, distance)
        try apply(db, d)
        try addDistance(db, day: day, metres: distance, n: 1)
    }

    static func keys(platform: String, storeSlot: Int32?, province: String?, city: String?) -> [(String, String)] {
        [("all", ""), ("platform", platform), ("store", storeSlot.map { String($0) } ?? ""), ("province", province ?? ""), ("city", city ?? "")]
    }

    static func addSales(
        _ db: Connection, day: String, currency: String, keys: [(String, String)], orders: Int64, units: Int64,
        amount: Int64
    ) throws {
        var d = RollupDelta()
        for (dim, key) in keys { d.sales[RollupDelta.SalesKey(dim: dim, day: day, key: key, currency: currency)] = (orders, units, amount) }
        try apply(db, d)
    }

    static func addDistance(_ db: Connection, day: String, metres: Double, n: Int64) throws {
        var d = RollupDelta()
        d.distance[RollupDelta.DistanceKey(day: day, bucket: Int64(min(1000, max(0, metres / bucketMetres))))] = n
        try apply(db, d)
    }

    /// Inside a group-commit job the change joins the job's `WriteChanges` (written once before the commit, by
    /// `RollupCommitObserver`); outside one it is written at once.
    static func apply(_ db: Connection, _ d: RollupDelta) throws {
        if db.journal != nil { db.journal!.rollups.merge(d) } else { try write(db, d) }
    }

    static func write(_ db: Connection, _ d: RollupDelta) throws {
        for (k, v) in d.sales {
            try db.run(
                """
                INSERT INTO daily_sales(dim, day, key, currency, orders, units, amount_minor) VALUES(?,?,?,?,?,?,?)
                ON CONFLICT(dim, day, key, currency) DO UPDATE SET orders = daily_sales.orders + excluded.orders,
                  units = daily_sales.units + excluded.units, amount_minor = daily_sales.amount_minor + excluded.amount_minor
                """, .text(k.dim), .text(k.day), .text(k.key), .text(k.currency), .int(v.orders), .int(v.units), .int(v.amount))
        }
        for (day, v) in d.routing {
            try db.run(
                """
                INSERT INTO daily_routing(day, orders, routed, review, distance_sum) VALUES(?,?,?,?,?)
                ON CONFLICT(day) DO UPDATE SET orders = daily_routing.orders + excluded.orders, routed = daily_routing.routed + excluded.routed,
                  review = daily_routing.review + excluded.review, distance_sum = daily_routing.distance_sum + excluded.distance_sum
                """, .text(day), .int(v.orders), .int(v.routed), .int(v.review), .double(v.distance))
        }
        for (k, n) in d.distance {
            try db.run(
                """
                INSERT INTO daily_distance(day, bucket, n) VALUES(?,?,?) ON CONFLICT(day, bucket) DO UPDATE SET n = daily_distance.n + excluded.n
                """, .text(k.day), .int(k.bucket), .int(n))
        }
        for (k, v) in d.events {
            try db.run(
                """
                INSERT INTO daily_events(day, type, key, n, seconds_sum) VALUES(?,?,?,?,?)
                ON CONFLICT(day, type, key) DO UPDATE SET n = daily_events.n + excluded.n,
                  seconds_sum = daily_events.seconds_sum + excluded.seconds_sum
                """, .text(k.day), .text(k.type), .text(k.key), .int(v.n), .double(v.seconds))
        }
    }

    /// Counts a workflow event (rejections by reason and actor, acceptances with their time since the order came in,
    /// missed ship-by, every move to unroutable with its reason); a cancellation takes its order out of sales.
    static func addEvent(_ db: Connection, orderID: Int64, _ e: NewEvent) throws {
        let day = BusinessDay.of(e.at)
        var type = e.type, key = "", seconds = 0.0
        switch e.type {
        case "rejected":
            let r = e.reason ?? ""
            // Counted at the store that gave the order back, whoever pressed the button (staff, admin, the SLA timer).
            let slot = try db.query("SELECT store_slot FROM orders WHERE id = ?", [.int(orderID)]) { $0.isNull(0) ? nil : $0.int(0) }.first ?? nil
            key =
                (r.hasPrefix("out_of_stock") ? "out_of_stock" : r.hasPrefix("sla_timeout") ? "sla_timeout" : "other") + "|"
                + (slot.map { "store:\($0)" } ?? e.actor)
        case "accepted":
            seconds =
                try db.query(
                    db.isPostgres
                        ? "SELECT EXTRACT(EPOCH FROM (?::timestamptz - created_at::timestamptz)) FROM orders WHERE id = ?"
                        : "SELECT (julianday(?) - julianday(created_at)) * 86400.0 FROM orders WHERE id = ?",
                    [.text(e.at), .int(orderID)]
                ) { $0.double(0) }.first ?? 0
        case "ship_by_missed":
            break
        case "cancelled":
            try removeFromSales(db, orderID: orderID)
            return
        default:
            guard e.to == "unroutable" else { return }
            type = "unroutable"
            key = e.reason ?? ""
        }
        try addEventRow(db, day: day, type: type, key: key, seconds: seconds)
    }

    static func addEventRow(_ db: Connection, day: String, type: String, key: String, seconds: Double) throws {
        var d = RollupDelta()
        d.events[RollupDelta.EventKey(day: day, type: type, key: key)] = (1, seconds)
        try apply(db, d)
    }

    static func removeFromSales(_ db: Connection, orderID: Int64) throws {
        guard
            let (day, platform, slot, province, city, units, amount, currency) = try db.query(
                """
                SELECT day, platform, store_slot, province, city, units, amount_minor, COALESCE(currency, 'CNY') FROM orders
                WHERE id = ? AND day IS NOT NULL
                """, [.int(orderID)],
                { s in
                    (
                        s.text(0), s.text(1), s.isNull(2) ? nil : Int32(s.int(2)), s.isNull(3) ? nil : s.text(3), s.isNull(4) ? nil : s.text(4),
                        s.int(5), s.int(6), s.text(7)
                    )
                }
            ).first
        else { return }
        try addSales(
            db, day: day, currency: currency, keys: keys(platform: platform, storeSlot: slot, province: province, city: city),
            orders: -1, units: 0 &- units, amount: 0 &- amount)
    }

    /// Rebuilds the rollups when the business time zone differs from the one they were built in (the first start
    /// after migration 11, or a changed `business_time_zone`); returns whether it did. The process's `TZ` is that zone.
    public static func rebuildIfZoneChanged(_ db: Connection, zone: String) throws -> Bool {
        guard try Repository.setting(db, "analytics.time_zone") != zone else { return false }
        try db.transaction {
            try rebuild(db, zone: zone)
            try Repository.setSetting(db, "analytics.time_zone", zone)
        }
        return true
    }

    /// Recomputes every rollup from the tables (`rebuildSQL`), with days in `zone` (on SQLite the process's `TZ`,
    /// which must be that zone).
    public static func rebuild(_ db: Connection, zone: String) throws {
        try db.execute(db.isPostgres ? rebuildSQLPostgres(zone: zone) : rebuildSQL)
    }
}

/// Calendar days in the business time zone: the process's `TZ`, set by the service from `business_time_zone`
/// (default Asia/Shanghai) before anything is read or written, so that Swift and SQLite's `localtime` agree.
public enum BusinessDay {
    /// `YYYY-MM-DD` of an RFC 3339 UTC time (`2026-11-26T17:13:00.000Z` is 2026-11-27 in Shanghai); the text's own
    /// date when it cannot be read.
    public static func of(_ at: String) -> String {
        let b = Array(at.utf8)
        func num(_ r: Range<Int>) -> Int32? {
            guard r.upperBound <= b.count else { return nil }
            var v: Int32 = 0
            for i in r {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int32(b[i] - 48)
            }
            return v
        }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13), let mi = num(14..<16),
            let s = num(17..<19)
        else { return String(at.prefix(10)) }
        var t = tm()
        t.tm_year = y - 1900
        t.tm_mon = mo - 1
        t.tm_mday = d
        t.tm_hour = h
        t.tm_min = mi
        t.tm_sec = s
        var epoch = timegm(&t)
        var local = tm()
        guard localtime_r(&epoch, &local) != nil else { return String(at.prefix(10)) }
        func p(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(p(local.tm_year + 1900, 4))-\(p(local.tm_mon + 1, 2))-\(p(local.tm_mday, 2))"
    }
}
