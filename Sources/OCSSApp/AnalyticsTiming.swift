import Glibc
import OCSSCore
import OCSSStore
import OCSSEngine

/// Support for `ocss-bench analytics`: a database of synthetic orders (facts, events, codes) built with SQL and its
/// rollups rebuilt from them (as migration 7 does), and the analytics queries timed on it through the same functions
/// the API calls.
package enum AnalyticsTiming {
    /// Creates `orders` orders spread over the 365 days of 2026 at `dbPath` (1,000 stores, 5 platforms, 31 provinces,
    /// 300 cities; 2% unroutable; every routed order accepted, 5% rejected once, 1% with a missed ship-by), plus a
    /// campaign of 100,000 codes, a third redeemed. Returns seconds taken.
    package static func seed(dbPath: String, orders: Int, progress: (String) -> Void) throws -> Double {
        let t0 = now()
        let db = try Connection(path: dbPath)
        try Migrations.apply(to: db)
        try db.execute("PRAGMA synchronous=OFF")
        try db.transaction {
            try db.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
                INSERT INTO stores(slot, id, code, name, lon, lat, kind, status, updated_at)
                SELECT i, 'S' || i, 'S' || i, 'Store ' || i, 100 + i % 30, 22 + i % 20, 'store', 'open', '2026-01-01T00:00:00Z' FROM n;
                """)
        }
        progress("stores done")
        let chunk = 100_000
        var done = 0
        while done < orders {
            let upto = min(orders, done + chunk)
            try db.transaction {
                try db.run(
                    """
                    WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO orders(id, idempotency_key, body_hash, platform, platform_order_id, status, store_slot, distance_m,
                      payload, explanation, response, created_at, day, amount_minor, units, province, city)
                    SELECT i, 'k' || i, '', CASE i % 5 WHEN 0 THEN 'taobao' WHEN 1 THEN 'jd' WHEN 2 THEN 'meituan' WHEN 3 THEN 'shopify' ELSE 'direct' END,
                      'p' || i, CASE WHEN i % 50 = 0 THEN 'unroutable' ELSE 'delivered' END, CASE WHEN i % 50 = 0 THEN NULL ELSE i % 1000 END,
                      CASE WHEN i % 50 = 0 THEN NULL ELSE (i * 7919) % 20000 END, '{}', '{}', '{}',
                      date('2026-01-01', '+' || (i % 365) || ' days') || 'T10:00:00.000Z', date('2026-01-01', '+' || (i % 365) || ' days'),
                      1000 + (i * 31) % 50000, 1 + i % 4, 'P' || (i % 31), 'C' || (i % 300)
                    FROM n
                    """, .int(Int64(done + 1)), .int(Int64(upto)))
                try db.run(
                    """
                    INSERT INTO order_events(order_id, at, actor, type, from_status, to_status, reason)
                    SELECT id, substr(created_at, 1, 11) || '10:03:00.000Z', 'store:1', 'accepted', 'assigned', 'accepted', NULL
                    FROM orders WHERE id BETWEEN ? AND ? AND status <> 'unroutable'
                    """, .int(Int64(done + 1)), .int(Int64(upto)))
                try db.run(
                    """
                    INSERT INTO order_events(order_id, at, actor, type, from_status, to_status, reason)
                    SELECT id, substr(created_at, 1, 11) || '10:01:00.000Z', 'store:1', 'rejected', 'assigned', 'rejected',
                      CASE WHEN id % 3 = 0 THEN 'out_of_stock' WHEN id % 3 = 1 THEN 'sla_timeout' ELSE 'other' END
                    FROM orders WHERE id BETWEEN ? AND ? AND id % 20 = 1
                    """, .int(Int64(done + 1)), .int(Int64(upto)))
                try db.run(
                    """
                    INSERT INTO order_events(order_id, at, actor, type, from_status, to_status, reason)
                    SELECT id, substr(created_at, 1, 11) || '00:00:00.000Z', 'router', 'routed', 'received',
                      CASE WHEN status = 'unroutable' THEN 'unroutable' ELSE 'assigned' END,
                      CASE WHEN status = 'unroutable' THEN 'no_store_in_reach' ELSE 'S' || store_slot END
                    FROM orders WHERE id BETWEEN ? AND ?
                    """, .int(Int64(done + 1)), .int(Int64(upto)))
                try db.run(
                    """
                    INSERT INTO order_events(order_id, at, actor, type, from_status, to_status, reason)
                    SELECT id, substr(created_at, 1, 11) || '20:00:00.000Z', 'system:sla', 'ship_by_missed', 'accepted', 'accepted', NULL
                    FROM orders WHERE id BETWEEN ? AND ? AND id % 100 = 7
                    """, .int(Int64(done + 1)), .int(Int64(upto)))
            }
            done = upto
            progress("orders \(done)/\(orders)")
        }
        try db.transaction {
            try db.execute(
                """
                INSERT INTO campaigns(id, name, benefit, starts_at, ends_at, stores, per_phone_limit, created_at)
                VALUES('BENCH', 'Bench campaign', '{"kind":"amount","amount_minor":1000}', '2026-01-01T00:00:00.000Z',
                       '2027-01-01T00:00:00.000Z', NULL, 1, '2026-01-01T00:00:00.000Z');
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
                INSERT INTO promo_codes(code, campaign_id, phone, issued_at, redeemed_at, store_slot, redeemed_phone)
                SELECT printf('C%010d', i), 'BENCH', NULL, '2026-01-01T00:00:00.000Z',
                  CASE WHEN i % 3 = 0 THEN '2026-02-01T00:00:00.000Z' END, CASE WHEN i % 3 = 0 THEN i % 1000 END,
                  CASE WHEN i % 3 = 0 THEN '+86138' || printf('%08d', i) END FROM n;
                """)
            try db.execute(Rollups.rebuildSQL)
            try db.execute("ANALYZE")
        }
        progress("rollups rebuilt")
        try db.execute("PRAGMA synchronous=FULL")
        return now() - t0
    }

    /// Each analytics query over `from`...`to`, run `repeats` times through the API's functions: (name, median ms, rows).
    package static func time(dbPath: String, from: String, to: String, repeats: Int) throws -> [(String, Double, Int)] {
        let readers = ReaderPool(path: dbPath)
        var out: [(String, Double, Int)] = []
        func measure(_ name: String, _ body: (Connection) throws -> Int) throws {
            var times: [Double] = []
            var rows = 0
            for _ in 0..<repeats {
                let t = now()
                rows = try readers.read { try body($0) }
                times.append((now() - t) * 1000)
            }
            times.sort()
            out.append((name, times[times.count / 2], rows))
        }
        for key in Analytics.SalesKey.allCases {
            try measure("sales_by_\(key.rawValue)") { try Analytics.sales($0, from: from, to: to, by: key).count }
        }
        try measure("routing_kpis") {
            _ = try Analytics.routing($0, from: from, to: to); return 1
        }
        try measure("stockouts") { try Analytics.stockOuts($0, from: from, to: to).count }
        try measure("promotions") { try Analytics.promotions($0).campaigns.count }
        // Baseline in the same run: the same sales grouping read from the orders themselves (what the rollups replace).
        try measure("baseline_scan_sales_by_platform") { db in
            try db.query(
                """
                SELECT platform, count(*), sum(units), sum(amount_minor) FROM orders
                WHERE day BETWEEN ? AND ? AND status <> 'cancelled' GROUP BY 1
                """, [.text(from), .text(to)]
            ) { $0.int(1) }.count
        }
        return out
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
