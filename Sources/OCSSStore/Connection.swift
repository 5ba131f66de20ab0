internal import CSQLite
import Glibc
internal import OCSSPostgres

/// One connection to the database: a SQLite file (the embedded default) or a PostgreSQL session (several nodes, see
/// `init(postgres:)`). Not thread-safe: a connection belongs to one thread at a time (the writer queue, or a reader
/// checked out of the pool). The repositories write SQLite's dialect; on PostgreSQL each statement is translated once
/// (`PostgresDialect`) and the few that have no common form ask `isPostgres`.
public final class Connection {
    /// The SQLite handle; nil on PostgreSQL.
    let handle: OpaquePointer!
    /// The PostgreSQL session; nil on SQLite.
    let server: PGConnection?
    /// Rows the last statement changed, on PostgreSQL (SQLite counts them itself).
    var serverChanges = 0
    private var cache: [String: Statement] = [:]
    /// What the writer job in progress has changed (see `WriteChanges`); `nil` outside a group-commit job, where
    /// rollups are written at once (see `Rollups`) and feed positions concern nobody.
    var journal: WriteChanges?
    /// The newest position in the assignment feed, read on first use (`Repository.nextFeedPosition`); only the
    /// writer's connection moves it.
    var feedPosition: Int64?

    /// Opens (creating if needed) the database at `path` in WAL mode with `synchronous=FULL`.
    /// The file holds buyers' names, phones and addresses: it is created 0600, and SQLite gives its `-wal` and `-shm`
    /// the database file's mode. A file an older version created 0644 is tightened to 0600 on open, with its companions.
    public init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        if !readOnly && !path.hasPrefix(":") && !path.hasPrefix("file:") { Connection.ownerOnly(path) }
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let e = SQLiteError(code: rc, message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open", sql: nil)
            sqlite3_close(db)
            throw e
        }
        handle = db
        server = nil
        sqlite3_busy_timeout(db, 5_000)
        if !readOnly {
            try execute("PRAGMA journal_mode=WAL")
            // The writer touches orders, inventory and their indexes all over: 32 MB of page cache keeps them
            // from being read back through pread on every batch (the default is 2 MB).
            try execute("PRAGMA cache_size=-32768")
        }
        try execute("PRAGMA synchronous=FULL")
        try execute("PRAGMA foreign_keys=ON")
        // Statement journals for the writer's per-job savepoints would otherwise be temp files, created
        // and unlinked on every job.
        try execute("PRAGMA temp_store=MEMORY")
    }

    /// A connection over a PostgreSQL session (`init(postgres:)`).
    init(server: PGConnection) {
        handle = nil
        self.server = server
    }

    /// Creates `path` 0600 if it does not exist; takes group and other permissions off it and its `-wal` and `-shm`.
    static func ownerOnly(_ path: String) {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        for file in [path, path + "-wal", path + "-shm"] {
            var st = stat()
            if stat(file, &st) == 0, st.st_mode & 0o077 != 0 { chmod(file, st.st_mode & 0o700) }
        }
    }

    deinit {
        cache.removeAll()
        if let handle { sqlite3_close_v2(handle) }
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(SQLiteError) {
        if let server {
            let translated = PostgresDialect.translate(sql)
            if translated.isEmpty { return }
            do { try server.execute(translated) } catch { throw SQLiteError(error, sql: translated) }
            return
        }
        try check(sqlite3_exec(handle, sql, nil, nil, nil), handle, sql: sql)
    }

    /// A prepared statement, cached by its text; reset and unbound.
    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        if let s = cache[sql] {
            s.reset()
            return s
        }
        let s = try Statement(connection: self, sql: server == nil ? sql : PostgresDialect.translate(sql))
        cache[sql] = s
        return s
    }

    /// Runs `sql` with `args` and returns nothing.
    public func run(_ sql: String, _ args: SQLValue...) throws(SQLiteError) { try run(sql, args) }

    /// Runs `sql` with `args` and returns nothing.
    public func run(_ sql: String, _ args: [SQLValue]) throws(SQLiteError) {
        let s = try prepare(sql)
        try s.bind(args)
        while try s.step() {}
    }

    /// Runs a query and maps every row.
    public func query<T>(_ sql: String, _ args: [SQLValue] = [], _ row: (Statement) throws(SQLiteError) -> T) throws(SQLiteError) -> [T] {
        let s = try prepare(sql)
        try s.bind(args)
        var out: [T] = []
        while try s.step() { out.append(try row(s)) }
        return out
    }

    /// Rows changed by the last statement.
    public var changes: Int { server == nil ? Int(sqlite3_changes(handle)) : serverChanges }

    /// False inside an open transaction. SQLite rolls a whole transaction back on its own after some errors
    /// (a full disk or database, an I/O error), which leaves the connection in autocommit mode again.
    public var isAutocommit: Bool { server.map { !$0.isInTransaction } ?? (sqlite3_get_autocommit(handle) != 0) }

    /// Ends the read transaction a statement stepped part-way leaves open (its rows not all read, never reset).
    /// A pooled reader that kept one would go on reading that old snapshot, blind to every later commit.
    public func finishReads() {
        guard server == nil else { return }  // a PostgreSQL statement is read whole when it runs
        guard sqlite3_txn_state(handle, nil) != SQLITE_TXN_NONE, isAutocommit else { return }
        var stmt = sqlite3_next_stmt(handle, nil)
        while let s = stmt {
            if sqlite3_stmt_busy(s) != 0 { sqlite3_reset(s) }
            stmt = sqlite3_next_stmt(handle, s)
        }
    }

    /// Runs `body` in a transaction (BEGIN IMMEDIATE), committing on success.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let v = try body()
            try execute("COMMIT")
            return v
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Online backup of this database into a new file at `path` (SQLite's backup API).
    public func backup(to path: String) throws(SQLiteError) {
        guard server == nil else {
            throw SQLiteError(code: 1, message: "a PostgreSQL database is backed up by PostgreSQL (pg_basebackup, pg_dump)", sql: nil)
        }
        var dest: OpaquePointer?
        Connection.ownerOnly(path)  // a copy of the buyers' data is as private as the database
        try check(sqlite3_open(path, &dest), dest)
        defer { sqlite3_close(dest) }
        guard let b = sqlite3_backup_init(dest, "main", handle, "main") else { try check(sqlite3_errcode(dest), dest); return }
        var rc = SQLITE_OK
        repeat { rc = sqlite3_backup_step(b, 256) } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        sqlite3_backup_finish(b)
        if rc != SQLITE_DONE { try check(rc, dest) }
    }
}

/// A value bound to or read from SQL.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)

    public init(_ v: String?) { self = v.map { .text($0) } ?? .null }
    public init(_ v: Int?) { self = v.map { .int(Int64($0)) } ?? .null }
    public init(_ v: Int64?) { self = v.map { .int($0) } ?? .null }
    public init(_ v: Double?) { self = v.map { .double($0) } ?? .null }
}

/// A prepared statement, owned by its connection.
public final class Statement {
    /// SQLite's statement; nil on PostgreSQL, where `bind` keeps the arguments and the first `step` runs it.
    let handle: OpaquePointer!
    unowned let connection: Connection
    let sql: String
    var serverArgs: [SQLValue] = []
    var serverRows: PGRows?
    var serverRow = -1

    init(connection: Connection, sql: String) throws(SQLiteError) {
        if connection.server != nil {
            handle = nil
            self.connection = connection
            self.sql = sql
            return
        }
        var stmt: OpaquePointer?
        try check(sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil), connection.handle, sql: sql)
        guard let stmt else { throw SQLiteError(code: SQLITE_MISUSE, message: "empty statement", sql: sql) }
        handle = stmt
        self.connection = connection
        self.sql = sql
    }

    deinit { if let handle { sqlite3_finalize(handle) } }

    func reset() {
        guard let handle else { return resetServer() }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func bind(_ args: [SQLValue]) throws(SQLiteError) {
        guard handle != nil else { return bindServer(args) }
        for (i, v) in args.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(handle, idx)
            case .int(let x): rc = sqlite3_bind_int64(handle, idx, x)
            case .double(let x): rc = sqlite3_bind_double(handle, idx, x)
            case .text(let s):
                rc = s.utf8CString.withUnsafeBufferPointer { ocss_sqlite3_bind_text_transient(handle, idx, $0.baseAddress, Int32($0.count - 1)) }
            }
            try check(rc, connection.handle, sql: sql)
        }
    }

    /// Advances; true when a row is available.
    public func step() throws(SQLiteError) -> Bool {
        guard handle != nil else { return try stepServer() }
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        sqlite3_reset(handle)
        try check(rc, connection.handle, sql: sql)
        return false
    }

    public func int(_ col: Int32) -> Int64 { handle == nil ? serverInt(col) : sqlite3_column_int64(handle, col) }
    public func double(_ col: Int32) -> Double { handle == nil ? serverDouble(col) : sqlite3_column_double(handle, col) }
    public func isNull(_ col: Int32) -> Bool { handle == nil ? serverIsNull(col) : sqlite3_column_type(handle, col) == SQLITE_NULL }
    public var columnCount: Int32 { handle == nil ? Int32(serverRows?.columnCount ?? 0) : sqlite3_column_count(handle) }
    public func text(_ col: Int32) -> String {
        guard handle != nil else { return serverCell(col) ?? "" }
        guard let p = sqlite3_column_text(handle, col) else { return "" }
        let n = Int(sqlite3_column_bytes(handle, col))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }
    public func optionalText(_ col: Int32) -> String? { isNull(col) ? nil : text(col) }
    public func optionalDouble(_ col: Int32) -> Double? { isNull(col) ? nil : double(col) }
    public func optionalInt(_ col: Int32) -> Int64? { isNull(col) ? nil : int(col) }

    /// A column's name in the result.
    public func columnName(_ col: Int32) -> String {
        handle == nil ? serverRows?.columns[Int(col)] ?? "" : String(cString: sqlite3_column_name(handle, col))
    }

    /// A column's value as SQLite stored it (integer, real, text or null; the schema has no blobs: one reads as text).
    public func value(_ col: Int32) -> SQLValue {
        guard handle != nil else { return serverValue(col) }
        switch sqlite3_column_type(handle, col) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .int(int(col))
        case SQLITE_FLOAT: return .double(double(col))
        default: return .text(text(col))
        }
    }
}
