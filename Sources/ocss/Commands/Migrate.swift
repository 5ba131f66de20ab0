import Glibc
import OCSSApp
import OCSSEngine
import OCSSPostgres
import OCSSStore

/// `ocss migrate --from FILE.sqlite --to postgres://...`: moves a retailer from the embedded SQLite file to PostgreSQL.
/// The file must not be in use (its lock is taken, as an offline import does); the target must have no ocss tables.
/// Every table is copied in key order, in batches of multi-row INSERTs, inside one PostgreSQL transaction (a failed
/// copy leaves the target empty), with progress; then the tables are analysed and each one's rows counted on both sides.
enum MigrateCommand {
    struct TableCount: Equatable {
        var table: String
        var source: Int64
        var target: Int64
    }

    static func run(from path: String, to conninfo: String) throws -> [TableCount] {
        guard access(path, F_OK) == 0 else { throw ImportError(message: "no database at \(path)") }
        let lock = try DatabaseLock(dbPath: path)
        defer { withExtendedLifetime(lock) {} }
        let source = try Connection(path: path)
        try Migrations.apply(to: source)  // as a start-up would: the copy is of the current schema
        let target = try PGConnection(conninfo)
        let existing = try PGSchema.existingTables(target)
        guard existing.isEmpty else {
            throw ImportError(message: "the target already has ocss tables (\(existing.joined(separator: ", "))): migrate into an empty database")
        }
        try target.transaction {
            try target.execute(PGSchema.create)
            for (table, order) in PGSchema.tables { try copy(table, orderBy: order, from: source, to: target) }
            // Copied ids were given explicitly: the identity columns go on after the highest one.
            for table in PGSchema.identityTables {
                try target.query(
                    "SELECT setval(pg_get_serial_sequence('\(table)', 'id'), COALESCE((SELECT max(id) FROM \(table)), 0) + 1, false)")
            }
        }
        let counts = try PGSchema.tables.map { (table, _) in
            TableCount(
                table: table, source: try source.query("SELECT count(*) FROM \(table)") { $0.int(0) }.first ?? 0,
                target: try target.query("SELECT count(*) FROM \(table)").int(0, 0) ?? -1)
        }
        // Copied tables have no planner statistics until autovacuum gets to them (a minute later, competing with the
        // first orders): gather them now. Not for the empty ones: statistics saying "no rows" make the planner scan
        // them whole once they fill (measured: 2.2 ms of server CPU an order instead of 0.8), where a table never
        // analysed is planned from its size.
        for c in counts where c.target > 0 { try target.execute("ANALYZE \(c.table)") }
        return counts
    }

    static func copy(_ table: String, orderBy: String, from source: Connection, to target: PGConnection) throws {
        let total = try source.query("SELECT count(*) FROM \(table)") { $0.int(0) }.first ?? 0
        var progress = Progress(table)
        let t0 = monotonicSeconds()
        let rows = try source.prepare("SELECT * FROM \(table) ORDER BY \(orderBy)")
        let columns = (0..<rows.columnCount).map { rows.columnName($0) }
        // PostgreSQL takes at most 65,535 parameters a statement.
        let perBatch = max(1, min(1000, 60_000 / max(1, columns.count)))
        var batch: [PGValue] = []
        var pending = 0, copied = 0
        func flush() throws {
            guard pending > 0 else { return }
            var placeholders: [String] = []
            for r in 0..<pending {
                placeholders.append("(" + (1...columns.count).map { "$\(r * columns.count + $0)" }.joined(separator: ",") + ")")
            }
            try target.query("INSERT INTO \(table)(\(columns.joined(separator: ","))) VALUES " + placeholders.joined(separator: ","), batch)
            copied += pending
            progress.update(Double(copied) / Double(max(total, 1)), rows: copied)
            batch.removeAll(keepingCapacity: true)
            pending = 0
        }
        while try rows.step() {
            for c in 0..<rows.columnCount {
                switch rows.value(c) {
                case .null: batch.append(.null)
                case .int(let v): batch.append(.int(v))
                case .double(let v): batch.append(.double(v))
                case .text(let v): batch.append(.text(v))
                }
            }
            pending += 1
            if pending == perBatch { try flush() }
        }
        try flush()
        progress.finish(rows: copied, seconds: monotonicSeconds() - t0)
    }
}

extension CLI {
    static func migrate(_ o: inout Options) throws {
        guard let from = try o.value("--from"), let to = try o.value("--to") ?? env("OCSS_DB") else {
            throw OptionError(message: "migrate needs --from FILE.sqlite and --to postgres://...")
        }
        try o.finish()
        let counts = try MigrateCommand.run(from: from, to: to)
        print("table                     sqlite  postgresql")
        for c in counts {
            print(c.table.padding(toLength: 24, withPad: " ", startingAt: 0) + String(c.source).leftPadded(8) + String(c.target).leftPadded(12))
        }
        let wrong = counts.filter { $0.source != $0.target }
        guard wrong.isEmpty else { fail("counts differ: \(wrong.map(\.table).joined(separator: ", "))", code: 1) }
        print("migrated \(counts.reduce(0) { $0 + $1.source }) rows in \(counts.count) tables; counts equal")
    }
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { String(repeating: " ", count: max(0, n - count)) + self }
    fileprivate func padding(toLength n: Int, withPad pad: String, startingAt: Int) -> String {
        count >= n ? self : self + String(repeating: pad, count: n - count)
    }
}
