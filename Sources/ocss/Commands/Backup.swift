import OCSSApp
import Glibc
import OCSSStore
import OCSSEngine

/// `ocss backup FILE --db PATH`: a consistent copy through SQLite's online backup API, safe while
/// the service runs (WAL readers and the writer carry on).
enum Backup {
    /// Copies the database at `dbPath` to `file` (which must not exist). Returns the orders copied.
    @discardableResult
    static func run(dbPath: String, to file: String) throws -> Int {
        guard access(dbPath, F_OK) == 0 else { throw ImportError(message: "no database at \(dbPath)") }
        guard access(file, F_OK) != 0 else { throw ImportError(message: "\(file) exists; refusing to overwrite it") }
        let source = try Connection(path: dbPath)
        try source.backup(to: file)
        let copy = try Connection(path: file, readOnly: true)
        guard try copy.query("PRAGMA integrity_check", [], { $0.text(0) }) == ["ok"] else {
            throw ImportError(message: "integrity check of \(file) failed")
        }
        return Int(try copy.query("SELECT COUNT(*) FROM orders", [], { $0.int(0) }).first ?? 0)
    }
}

extension CLI {
    static func backup(_ o: inout Options) throws {
        guard let file = o.positional() else { throw OptionError(message: "backup needs the FILE to write") }
        let dbPath = try sqliteFile(&o, "backup", instead: "back the database up with PostgreSQL's own tools (pg_basebackup, pg_dump)")
        try o.finish()
        let orders = try Backup.run(dbPath: dbPath, to: file)
        print(#"{"backup":"\#(file)","orders":\#(orders),"integrity":"ok"}"#)
    }
}
