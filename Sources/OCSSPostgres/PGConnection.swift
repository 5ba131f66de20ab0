internal import CPostgres
import Glibc

/// A PostgreSQL error: SQLSTATE (when the server sent one) and its message.
public struct PGError: Error, Sendable, CustomStringConvertible {
    /// The five-character SQLSTATE (`23505` unique violation, `40001` serialization failure, ...); nil for a
    /// connection that failed or was lost.
    public let sqlState: String?
    public let message: String

    public var description: String { (sqlState.map { "[\($0)] " } ?? "") + message }
    /// The connection is gone (server stopped, network cut): reconnect, then retry what is safe to retry.
    public var isConnectionLost: Bool { sqlState == nil || sqlState!.hasPrefix("08") || sqlState == "57P01" }
    public var isUniqueViolation: Bool { sqlState == "23505" }
}

/// A parameter of a statement, sent in PostgreSQL's text format.
public enum PGValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)

    var text: String? {
        switch self {
        case .null: nil
        case .int(let v): String(v)
        case .double(let v): "\(v)"
        case .text(let v): v
        case .bool(let v): v ? "t" : "f"
        }
    }
}

/// A statement's rows, read in place from libpq's result (cleared when the last reference goes): a start-up that
/// loads a million stock rows parses each number from the result's own bytes, without a string per cell.
public final class PGRows: @unchecked Sendable {
    private let result: OpaquePointer
    public let count: Int
    public let columnCount: Int
    /// Rows the statement changed (INSERT, UPDATE, DELETE).
    public let changed: Int

    init(_ r: OpaquePointer) {
        result = r
        count = Int(PQntuples(r))
        columnCount = Int(PQnfields(r))
        changed = Int(String(cString: PQcmdTuples(r))) ?? 0
    }

    deinit { PQclear(result) }

    public var columns: [String] { (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) } }
    /// Each column's kind, from its type's OID: what a caller that wants typed values (a copy, an export) reads as.
    public var kinds: [PGColumnKind] { (0..<columnCount).map { PGColumnKind(oid: PQftype(result, Int32($0))) } }
    /// Every row as text (nil for NULL): for small results.
    public var rows: [[String?]] { (0..<count).map { r in (0..<columnCount).map { text(r, $0) } } }

    public func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) == 1 }
    public func text(_ row: Int, _ column: Int) -> String? {
        isNull(row, column) ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
    }
    /// An integer column (or a numeric one with no fraction) without making a string of it.
    public func int(_ row: Int, _ column: Int) -> Int64? {
        guard !isNull(row, column), let p = PQgetvalue(result, Int32(row), Int32(column)) else { return nil }
        var end: UnsafeMutablePointer<CChar>?
        let v = strtoll(p, &end, 10)
        guard let end, end != UnsafeMutablePointer(mutating: p), end.pointee == 0 else { return nil }
        return Int64(v)
    }
    public func double(_ row: Int, _ column: Int) -> Double? {
        guard !isNull(row, column), let p = PQgetvalue(result, Int32(row), Int32(column)) else { return nil }
        var end: UnsafeMutablePointer<CChar>?
        let v = strtod(p, &end)
        guard let end, end != UnsafeMutablePointer(mutating: p), end.pointee == 0 else { return nil }
        return v
    }
    public func bool(_ row: Int, _ column: Int) -> Bool? { text(row, column).map { $0 == "t" } }
}

/// How a column's text is to be read: PostgreSQL's integer types, its floating types, booleans, and everything else.
public enum PGColumnKind: Sendable {
    case integer, real, boolean, text

    init(oid: UInt32) {
        switch oid {
        case 20, 21, 23: self = .integer  // int8, int2, int4
        case 700, 701, 1700: self = .real  // float4, float8, numeric
        case 16: self = .boolean
        default: self = .text
        }
    }
}

/// A notification from `LISTEN`: its channel and payload.
public struct PGNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}

/// One libpq connection (`PGconn`): not thread-safe, a connection belongs to one thread at a time, like a SQLite
/// `Connection`. Statements use the extended protocol with text parameters (`$1`, `$2`, ...), never string splicing.
/// The session is what the multi-node design leans on: a session advisory lock is the leader's lease, released by
/// PostgreSQL when the session ends, however the process ended; `LISTEN` carries feed wake-ups between nodes.
public final class PGConnection {
    private let conn: OpaquePointer

    /// Connects with a libpq connection string (`postgresql:///db?host=/run/dir&user=u`, or `key=value` pairs).
    public init(_ conninfo: String) throws(PGError) {
        guard let c = PQconnectdb(conninfo) else { throw PGError(sqlState: nil, message: "out of memory") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c)).trimmingNewlines()
            PQfinish(c)
            throw PGError(sqlState: nil, message: message)
        }
        conn = c
    }

    /// Set by `close()`: the handle is gone, and every later call fails as on a lost connection.
    private var closed = false

    deinit { if !closed { PQfinish(conn) } }

    /// Ends the session now (a stopped node hands its connections back to the server at once).
    public func close() {
        guard !closed else { return }
        closed = true
        PQfinish(conn)
    }

    /// Whether the session is up (it says no once a statement found the server gone).
    public var isConnected: Bool { !closed && PQstatus(conn) == CONNECTION_OK }

    /// True inside a transaction block (open, or failed and waiting for its ROLLBACK); false when idle or lost.
    public var isInTransaction: Bool {
        if closed { return false }
        let s = PQtransactionStatus(conn)
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE
    }

    /// The server process serving this session (what `pg_terminate_backend` takes).
    public var backendPID: Int32 { closed ? 0 : PQbackendPID(conn) }

    /// Runs `sql` (one or more statements, no parameters) and drops what they return.
    public func execute(_ sql: String) throws(PGError) {
        guard !closed else { throw PGError(sqlState: nil, message: "connection closed") }
        guard let r = PQexec(conn, sql) else { throw lost() }
        defer { PQclear(r) }
        try check(r)
    }

    /// Runs one statement with parameters and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ params: [PGValue] = []) throws(PGError) -> PGRows {
        guard !closed else { throw PGError(sqlState: nil, message: "connection closed") }
        return try rows(withTexts(params) { PQexecParams(conn, sql, Int32(params.count), nil, $0, nil, nil, 0) })
    }

    /// `params` as the C strings libpq takes (NULL for SQL NULL), for the duration of `body`.
    private func withTexts(_ params: [PGValue], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> OpaquePointer?) -> OpaquePointer? {
        let texts = params.map { $0.text.map { strdup($0) } ?? nil }
        defer { for t in texts { free(t) } }
        let values: [UnsafePointer<CChar>?] = texts.map { $0.map { UnsafePointer($0) } }
        return values.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    /// A statement's result as rows (cleared here), or its error.
    private func rows(_ result: OpaquePointer?) throws(PGError) -> PGRows {
        guard let r = result else { throw lost() }
        do { try check(r) } catch {
            PQclear(r)
            throw error
        }
        return PGRows(r)
    }

    /// Statements prepared on this session, by their text: name and parameter count.
    private var prepared: [String: String] = [:]

    /// Runs one statement as `query` does, preparing it on first use (its parse and plan are then the server's once
    /// per session, not once per call). For the statements a program runs over and over, not for one-off texts.
    @discardableResult
    public func queryPrepared(_ sql: String, _ params: [PGValue] = []) throws(PGError) -> PGRows {
        guard !closed else { throw PGError(sqlState: nil, message: "connection closed") }
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            name = "s\(prepared.count)"
            guard let r = PQprepare(conn, name, sql, Int32(params.count), nil) else { throw lost() }
            defer { PQclear(r) }
            try check(r)
            prepared[sql] = name
        }
        return try rows(withTexts(params) { PQexecPrepared(conn, name, Int32(params.count), $0, nil, nil, 0) })
    }

    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let v = try body()
            try execute("COMMIT")
            return v
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    // MARK: the leader's lease

    /// Takes the session advisory lock `key` if nobody holds it: true when this session now holds it. It is held until
    /// `unlock` or until the session ends (a crash, a `kill -9`, a cut network once the server notices).
    public func tryAdvisoryLock(_ key: Int64) throws(PGError) -> Bool {
        try query("SELECT pg_try_advisory_lock($1)", [.int(key)]).bool(0, 0) ?? false
    }

    public func advisoryUnlock(_ key: Int64) throws(PGError) {
        try query("SELECT pg_advisory_unlock($1)", [.int(key)])
    }

    // MARK: LISTEN / NOTIFY

    /// Subscribes this session to `channel` (an identifier: letters, digits, underscores).
    public func listen(_ channel: String) throws(PGError) {
        guard !channel.isEmpty, channel.utf8.allSatisfy({ $0 == 95 || ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 122) }) else {
            throw PGError(sqlState: nil, message: "channel names are lowercase letters, digits and underscores")
        }
        try execute("LISTEN \(channel)")
    }

    /// Sends `payload` to every session listening on `channel`, when the current transaction commits (at once outside
    /// one).
    public func notify(_ channel: String, payload: String) throws(PGError) {
        try query("SELECT pg_notify($1, $2)", [.text(channel), .text(payload)])
    }

    /// Notifications received, waiting up to `timeout` seconds for the first; empty when none came.
    public func notifications(timeout: Double) throws(PGError) -> [PGNotification] {
        guard !closed else { throw PGError(sqlState: nil, message: "connection closed") }
        var out = drainNotifications()
        if !out.isEmpty { return out }
        var pfd = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        guard pfd.fd >= 0 else { throw lost() }
        let ready = poll(&pfd, 1, Int32(max(0, timeout) * 1000))
        guard ready > 0 else { return [] }
        guard PQconsumeInput(conn) == 1 else { throw lost() }
        out = drainNotifications()
        return out
    }

    private func drainNotifications() -> [PGNotification] {
        var out: [PGNotification] = []
        while let n = PQnotifies(conn) {
            out.append(PGNotification(channel: String(cString: n.pointee.relname), payload: String(cString: n.pointee.extra)))
            PQfreemem(n)
        }
        return out
    }

    // MARK: errors

    private func check(_ r: OpaquePointer) throws(PGError) {
        switch PQresultStatus(r) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default:
            let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message =
                PQresultErrorField(r, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
                ?? String(cString: PQerrorMessage(conn)).trimmingNewlines()
            throw PGError(sqlState: state, message: message)
        }
    }

    private func lost() -> PGError {
        PGError(sqlState: nil, message: String(cString: PQerrorMessage(conn)).trimmingNewlines())
    }
}

extension String {
    fileprivate func trimmingNewlines() -> String {
        var s = Substring(self)
        while s.last == "\n" || s.last == " " { s.removeLast() }
        return String(s)
    }
}
