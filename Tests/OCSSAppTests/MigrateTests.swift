import Foundation
import OCSSApp
import OCSSPostgres
import OCSSStore
import OCSSTestSupport
@testable import ocss
import Testing

/// Issue 20: `ocss migrate` moves a retailer's SQLite file into an empty PostgreSQL database, every table, counted.
@Suite(.ownThreads, .disabled(if: TestDatabase.isPostgres, "moves a SQLite file")) struct MigrateTests {
    @Test func aServedDatabaseMovesToPostgreSQLWithEveryRowAndValue() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let live = try Live()
        defer { live.dir.remove() }
        try live.putStore("A", lat: 30, lon: 120)
        try live.putStore("B", lat: 30.1, lon: 120.1)
        try live.putInventory("A", [("X", 10), ("Y", 5)])
        try live.putInventory("B", [("X", 3)])
        for i in 0..<30 {
            let body = orderBody(id: "m\(i)", lat: 30, lon: 120 + Double(i) * 0.003, lines: [("X", 1)] + (i % 3 == 0 ? [("Y", 1)] : []))
                .replacingOccurrences(
                    of: #""lines":"#, with: #""remark":"第\#(i)单 O'Neil \"quoted\"","buyer":{"name":"张三","phone":"1380013800\#(i % 10)"},"lines":"#)
            let r = try live.api.send("POST", "/v1/orders", headers: admin + json, body: body)
            #expect(r.status == 201, "\(r.body)")
        }
        _ = try live.token(for: "A")
        let db = live.dir.file("ocss.sqlite")
        // A file a running service holds is refused: the copy would miss what it writes meanwhile.
        #expect { try MigrateCommand.run(from: db, to: pg.conninfo) } throws: { "\($0)".contains("in use by another ocss") }
        live.service.stop()

        let counts = try MigrateCommand.run(from: db, to: pg.conninfo)
        #expect(counts.count == PGSchema.tables.count)
        #expect(counts.allSatisfy { $0.source == $0.target }, "\(counts.filter { $0.source != $0.target })")
        // 30 orders, and the parts some of them split into once a store ran short.
        let orders = try #require(counts.first { $0.table == "orders" }?.source)
        #expect(orders >= 30 && counts.first { $0.table == "order_events" }!.source >= 60)
        #expect(counts.first { $0.table == "store_tokens" }?.source == 1 && counts.first { $0.table == "daily_sales" }!.source > 0)
        // Values, not only counts: every order's payload, status, distance (a double, exactly) and customer, and every
        // stock row.
        let sqlite = try Connection(path: db, readOnly: true)
        let target = try PGConnection(pg.conninfo)
        let before = try sqlite.query("SELECT id, payload, status, distance_m, customer_id FROM orders ORDER BY id") {
            [String($0.int(0)), $0.text(1), $0.text(2), $0.optionalDouble(3).map { "\($0)" } ?? "-", $0.optionalInt(4).map(String.init) ?? "-"]
        }
        let after = try target.query("SELECT id, payload, status, distance_m, customer_id FROM orders ORDER BY id").rows.map { r in
            [r[0]!, r[1]!, r[2]!, r[3].flatMap(Double.init).map { "\($0)" } ?? "-", r[4] ?? "-"]
        }
        #expect(before == after)
        #expect(after.contains { $0[1].contains(#"O'Neil \"quoted\""#) })
        let stock = { (rows: [[String?]]) in rows.map { $0.map { $0 ?? "-" }.joined(separator: "|") } }
        #expect(
            stock(
                try sqlite.query("SELECT store_slot, sku_idx, on_hand, reserved FROM inventory ORDER BY 1, 2") { s in
                    (0..<4).map { s.optionalText($0) }
                })
                == stock(try target.query("SELECT store_slot, sku_idx, on_hand, reserved FROM inventory ORDER BY 1, 2").rows))
        #expect(try target.query("SELECT version FROM ocss_schema").int(0, 0) == 11)
        // Again into the same database: refused, nothing doubled.
        #expect { try MigrateCommand.run(from: db, to: pg.conninfo) } throws: { "\($0)".contains("already has ocss tables") }
        #expect(try target.query("SELECT count(*) FROM orders").int(0, 0) == orders)
    }
}
