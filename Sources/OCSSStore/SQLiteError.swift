internal import CSQLite

/// A failed SQLite call: the result code, SQLite's own message and the statement, if any.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// Primary or extended SQLite result code.
    public let code: Int32
    public let message: String
    public let sql: String?
    /// Which database said it: "sqlite", or "postgresql" (whose errors are mapped onto SQLite's codes).
    public let engine: String

    public init(code: Int32, message: String, sql: String?, engine: String = "sqlite") {
        self.code = code
        self.message = message
        self.sql = sql
        self.engine = engine
    }

    public var description: String {
        (engine == "sqlite" ? "sqlite error \(code): " : "\(engine) error: ") + message + (sql.map { " in `\($0.prefix(120))`" } ?? "")
    }

    /// True for UNIQUE / PRIMARY KEY violations.
    public var isConstraintViolation: Bool { code & 0xff == SQLITE_CONSTRAINT }

    /// True when the storage itself is failing (disk or database full, I/O error, read-only or corrupt file),
    /// rather than one statement being refused.
    public var isStorageFailure: Bool {
        [SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB].contains(code & 0xff)
    }
}

/// The one checker every SQLite status goes through.
@discardableResult
func check(_ rc: Int32, _ db: OpaquePointer?, sql: String? = nil) throws(SQLiteError) -> Int32 {
    switch rc {
    case SQLITE_OK, SQLITE_ROW, SQLITE_DONE: return rc
    default:
        let msg = db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
        throw SQLiteError(code: db.map { sqlite3_extended_errcode($0) } ?? rc, message: msg, sql: sql)
    }
}
