import Foundation
import OCSSApp
@testable import OCSSEngine
@testable import OCSSStore
import OCSSTestSupport
import Testing

@Suite(.serialized, .ownThreads) struct AnalyticsDayAndCurrencyTests {
    /// Issue 22.4 and 22.7: a USD order counted as ¥1,000 in sales, and an order placed at 01:30 Beijing time landed on
    /// the previous (UTC) day. Days follow the business time zone (Asia/Shanghai by default) and money is summed per
    /// currency, never across.
    @Test func daysAreBeijingDaysAndEachCurrencyIsItsOwnRow() throws {
        let clock = ManualClock(1_795_714_200)  // 2026-11-26T17:30:00Z, 01:30 on the 27th in Beijing
        let live = try Live(clock: clock)
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        func post(_ id: String, _ currency: String, _ total: Int) throws {
            let body =
                String(orderBody(id: id, lat: 30, lon: 120, lines: [("A", 1)]).dropLast())
                + #","currency":"\#(currency)","total_minor":\#(total),"buyer":{"phone":"13800138000"}}"#
            #expect(try live.api.send("POST", "/v1/orders", headers: admin + json, body: body).status == 201)
        }
        try post("c1", "CNY", 10_000)
        try post("c2", "CNY", 5_000)
        try post("u1", "USD", 100_000)
        let day = parse(try live.api.send("GET", "/v1/analytics/sales?by=day&from=2026-11-26&to=2026-11-27", headers: admin).body)
        #expect(day["time_zone"] as? String == "Asia/Shanghai")
        let rows = day["rows"] as? [[String: Any]] ?? []
        #expect(rows.count == 2, "\(rows)")
        let cny = rows.first { $0["currency"] as? String == "CNY" }, usd = rows.first { $0["currency"] as? String == "USD" }
        #expect(cny?["key"] as? String == "2026-11-27" && cny?["orders"] as? Int == 2 && cny?["amount_minor"] as? Int == 15_000)
        #expect(usd?["key"] as? String == "2026-11-27" && usd?["orders"] as? Int == 1 && usd?["amount_minor"] as? Int == 100_000)
        // The customer's spend is kept per currency too; total_spend_minor is the CNY part.
        let customers = parse(try live.api.send("GET", "/v1/customers?phone=13800138000", headers: admin).body)["customers"] as? [[String: Any]]
        let spend = customers?.first?["spend_by_currency"] as? [String: Any]
        #expect(spend?["CNY"] as? Int == 15_000 && spend?["USD"] as? Int == 100_000, "\(String(describing: customers))")
        #expect(customers?.first?["total_spend_minor"] as? Int == 15_000)
        let platform = parse(try live.api.send("GET", "/v1/analytics/sales?by=platform&from=2026-11-27&to=2026-11-27", headers: admin).body)
        #expect((platform["rows"] as? [[String: Any]])?.map { $0["currency"] as? String ?? "" }.sorted() == ["CNY", "USD"])
        // A rebuild from the tables gives the same rows.
        live.service.stop()
        let db = try live.database(readOnly: false)
        try Rollups.rebuild(db, zone: "Asia/Shanghai")
        let rebuilt = try Analytics.sales(db, from: "2026-11-27", to: "2026-11-27", by: .day)
        #expect(rebuilt.map { "\($0.currency) \($0.orders) \($0.amountMinor)" } == ["CNY 2 15000", "USD 1 100000"])
    }

    /// A database from before migration 11 keeps its orders' currencies (from their payloads) and gets its days again in
    /// the business time zone at the next start.
    @Test(.disabled(if: TestDatabase.isPostgres, "SQLite's migrations; PostgreSQL starts at the current schema"))
    func migration11SplitsOldSalesByCurrencyAndRebucketsDays() throws {
        let dir = TempDir("ocss-m11")
        defer { dir.remove() }
        let path = dir.file("ocss.sqlite")
        let db = try Connection(path: path)
        for (i, sql) in Migrations.all.prefix(10).enumerated() {
            try db.transaction {
                try db.execute(sql)
                try db.execute("PRAGMA user_version = \(i + 1)")
            }
        }
        for (id, at, currency, amount) in [(1, "2026-11-26T17:30:00.000Z", "USD", 700), (2, "2026-11-26T10:00:00.000Z", "CNY", 300)] {
            try db.run(
                """
                INSERT INTO orders(id, idempotency_key, body_hash, platform, platform_order_id, status, payload, explanation, response,
                  created_at, day, amount_minor, units) VALUES(?, ?, 'h', 'direct', ?, 'unroutable', ?, '{}', '{}', ?, ?, ?, 1)
                """, .int(Int64(id)), .text("k\(id)"), .text("p\(id)"), .text(#"{"currency":"\#(currency)"}"#), .text(at),
                .text(String(at.prefix(10))), .int(Int64(amount)))
        }
        try Migrations.apply(to: db)
        #expect(try db.query("SELECT currency FROM orders ORDER BY id") { $0.text(0) } == ["USD", "CNY"])
        let live = try Live(dir: dir)  // start-up rebuilds the rollups in Asia/Shanghai
        defer { live.stop() }
        let rows = try Analytics.sales(db, from: "2026-11-26", to: "2026-11-27", by: .day)
        #expect(rows.map { "\($0.key) \($0.currency) \($0.amountMinor)" } == ["2026-11-26 CNY 300", "2026-11-27 USD 700"])
    }
}

@Suite(.serialized, .ownThreads) struct StockoutAttributionTests {
    /// Issue 22.10: a rejection made with the admin token was charted as store "admin". It counts at the store that
    /// gave the order back, whoever pressed the button, and a rebuild from the tables agrees.
    @Test func anAdminRejectionCountsAtTheStore() throws {
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        let o = try shop.order("adm")
        #expect(
            try live.api.send(
                "POST", "/v1/assignments/\(o.assignment)/reject", headers: admin + json,
                body: #"{"reason":"out_of_stock","skus":["A"]}"#
            ).status == 200)
        func keys() throws -> [String] {
            let rows = parse(try live.api.send("GET", "/v1/analytics/stockouts", headers: admin).body)["rows"] as? [[String: Any]] ?? []
            return rows.filter { $0["kind"] as? String == "out_of_stock_rejection" }.compactMap { $0["key"] as? String }
        }
        #expect(try keys() == ["near"])
        let db = try live.database(readOnly: false)
        try Rollups.rebuild(db, zone: "Asia/Shanghai")
        #expect(try keys() == ["near"])
    }
}
