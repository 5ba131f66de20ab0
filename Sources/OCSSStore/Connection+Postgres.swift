internal import OCSSPostgres

extension Connection {
    /// Opens a session on the PostgreSQL at `conninfo` (`postgres://user@host/db?...` or libpq's `key=value` pairs).
    /// Commits wait for the server's WAL flush (`synchronous_commit` as the server sets it; `on` by default, and the
    /// cluster notes ask for a synchronous standby), so a batch answered is a batch on disk, as with SQLite's FULL.
    /// A read-only connection refuses writes in the server as well (`default_transaction_read_only`).
    public convenience init(postgres conninfo: String, readOnly: Bool = false) throws(SQLiteError) {
        let session: PGConnection
        do {
            session = try PGConnection(conninfo)
            try session.execute("SET TIME ZONE 'UTC'")
            if readOnly { try session.execute("SET default_transaction_read_only = on") }
        } catch { throw SQLiteError(error, sql: nil) }
        self.init(server: session)
    }

    /// Whether `database` names a PostgreSQL database (`postgres://...`, `postgresql://...`) rather than a SQLite file.
    public static func isPostgres(_ database: String) -> Bool {
        database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
    }

    /// Opens `database`, a SQLite file path or a PostgreSQL URL.
    public convenience init(database: String, readOnly: Bool = false) throws(SQLiteError) {
        if Connection.isPostgres(database) {
            try self.init(postgres: database, readOnly: readOnly)
        } else {
            try self.init(path: database, readOnly: readOnly)
        }
    }

    /// Ends a PostgreSQL session now; nothing on SQLite (its handle closes with the connection).
    public func disconnect() { server?.close() }

    /// True on PostgreSQL: for the few statements with no form both engines take.
    public var isPostgres: Bool { server != nil }

    /// False once a PostgreSQL session is lost (the server stopped or the network cut): the connection is dropped and
    /// a new one opened. A SQLite connection never breaks this way.
    public var isBroken: Bool { server.map { !$0.isConnected } ?? false }

    /// Sends a notification inside the current transaction (delivered when it commits); nothing on SQLite.
    public func notify(_ channel: String, payload: String) throws(SQLiteError) {
        guard let server else { return }
        do { try server.notify(channel, payload: payload) } catch { throw SQLiteError(error, sql: "NOTIFY") }
    }

    func serverQuery(_ sql: String, _ args: [SQLValue]) throws(SQLiteError) -> PGRows {
        let params: [PGValue] = args.map {
            switch $0 {
            case .null: .null
            case .int(let v): .int(v)
            case .double(let v): .double(v)
            case .text(let v): .text(v)
            }
        }
        do {
            let rows = try server!.queryPrepared(sql, params)
            serverChanges = rows.changed
            return rows
        } catch { throw SQLiteError(error, sql: sql) }
    }
}

extension Statement {
    func resetServer() {
        serverArgs = []
        serverRows = nil
        serverRow = -1
    }

    func bindServer(_ args: [SQLValue]) {
        serverArgs = args
        serverRows = nil
        serverRow = -1
    }

    func stepServer() throws(SQLiteError) -> Bool {
        if serverRows == nil {
            serverRows = try connection.serverQuery(sql, serverArgs)
            serverRow = -1
        }
        serverRow += 1
        if serverRow >= serverRows!.count {
            serverRows = nil  // the result's memory goes back now, not at the statement's next use
            serverRow = Int.max
            return false
        }
        return true
    }

    private var onRow: Bool { serverRows != nil && serverRow >= 0 && serverRow != Int.max }

    func serverCell(_ col: Int32) -> String? { onRow ? serverRows!.text(serverRow, Int(col)) : nil }
    func serverIsNull(_ col: Int32) -> Bool { onRow ? serverRows!.isNull(serverRow, Int(col)) : true }

    /// Integers as SQLite would give them: sums come back as `numeric`, booleans as `t`/`f`.
    func serverInt(_ col: Int32) -> Int64 {
        guard onRow else { return 0 }
        if let v = serverRows!.int(serverRow, Int(col)) { return v }
        if let d = serverRows!.double(serverRow, Int(col)) { return Int64(d) }
        return serverCell(col) == "t" ? 1 : 0
    }

    func serverDouble(_ col: Int32) -> Double {
        guard onRow else { return 0 }
        if let v = serverRows!.double(serverRow, Int(col)) { return v }
        return serverCell(col) == "t" ? 1 : 0
    }

    func serverValue(_ col: Int32) -> SQLValue {
        guard let cell = serverCell(col) else { return .null }
        switch serverRows!.kinds[Int(col)] {
        case .integer: return Int64(cell).map { .int($0) } ?? .text(cell)
        case .real: return Double(cell).map { .double($0) } ?? .text(cell)
        case .boolean: return .int(cell == "t" ? 1 : 0)
        case .text: return .text(cell)
        }
    }
}

extension SQLiteError {
    /// A PostgreSQL error in the terms the engine already answers by (`code` is the SQLite code of the same kind; the
    /// description names PostgreSQL and its SQLSTATE): a unique or check violation is a constraint,
    /// a lost session or a full disk is a storage failure (503 `storage_unavailable`, nothing acknowledged).
    init(_ e: PGError, sql: String?) {
        let code: Int32
        switch e.sqlState {
        case let s? where s.hasPrefix("23"): code = 19  // SQLITE_CONSTRAINT
        case "53100"?: code = 13  // disk full: SQLITE_FULL
        case "25006"?: code = 8  // read-only transaction: SQLITE_READONLY
        case _ where e.isConnectionLost: code = 10  // SQLITE_IOERR
        case "57P03"?, "53300"?: code = 10  // starting up, too many connections
        default: code = 1
        }
        self.init(code: code, message: e.description, sql: sql, engine: "postgresql")
    }
}

/// SQLite's dialect, as the repositories write it, in PostgreSQL's: `?` and `?N` parameters become `$N`, `INSERT OR
/// IGNORE` an `ON CONFLICT DO NOTHING`, two-argument `max`/`min` `GREATEST`/`LEAST`, `BEGIN IMMEDIATE` a `BEGIN`;
/// PRAGMAs have no counterpart and are dropped. Statements outside these forms are written for each engine where
/// they are used (`Connection.isPostgres`).
enum PostgresDialect {
    static func translate(_ sql: String) -> String {
        var text = Substring(sql)
        while let f = text.first, f == " " || f == "\n" { text.removeFirst() }
        if text.uppercased().hasPrefix("PRAGMA") { return "" }
        if text.hasPrefix("BEGIN IMMEDIATE") { return "BEGIN" + text.dropFirst(15) }
        var out = parameters(String(text))
        out = scalarMaxMin(out)
        if let r = out.firstRange(of: "INSERT OR IGNORE INTO") {
            out.replaceSubrange(r, with: "INSERT INTO")
            var body = out
            while let l = body.last, l == ";" || l == " " || l == "\n" { body.removeLast() }
            if let returning = body.firstRange(of: " RETURNING ") {
                body.insert(contentsOf: " ON CONFLICT DO NOTHING", at: returning.lowerBound)
            } else {
                body += " ON CONFLICT DO NOTHING"
            }
            out = body
        }
        return out
    }

    /// `?` → `$1, $2, ...` in order; `?N` → `$N`; nothing inside quotes.
    static func parameters(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var next = 0
        var quote: Character?
        var it = sql.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? it.next() {
            pending = nil
            if let q = quote {
                out.append(c)
                if c == q { quote = nil }
                continue
            }
            if c == "'" || c == "\"" {
                quote = c
                out.append(c)
                continue
            }
            guard c == "?" else {
                out.append(c)
                continue
            }
            var digits = ""
            while let d = it.next() {
                if d.isASCII, d.isNumber {
                    digits.append(d)
                } else {
                    pending = d
                    break
                }
            }
            if digits.isEmpty {
                next += 1
                out += "$\(next)"
            } else {
                out += "$" + digits
                next = max(next, Int(digits) ?? 0)
            }
        }
        return out
    }

    /// `max(a, b)` → `GREATEST(a, b)` and `min(a, b)` → `LEAST(a, b)`: SQLite's scalar forms; the one-argument
    /// aggregates stay.
    static func scalarMaxMin(_ sql: String) -> String {
        var chars = Array(sql)
        var i = 0
        while i + 3 < chars.count {
            let word = String(chars[i..<i + 3]).lowercased()
            let before = i == 0 ? " " : chars[i - 1]
            guard word == "max" || word == "min", chars[i + 3] == "(", !(before.isLetter || before.isNumber || before == "_") else {
                i += 1
                continue
            }
            var depth = 0, j = i + 3, comma = false
            var quote: Character?
            while j < chars.count {
                let c = chars[j]
                if let q = quote {
                    if c == q { quote = nil }
                } else if c == "'" {
                    quote = c
                } else if c == "(" {
                    depth += 1
                } else if c == ")" {
                    depth -= 1
                    if depth == 0 { break }
                } else if c == ",", depth == 1 {
                    comma = true
                }
                j += 1
            }
            if comma {
                let name = Array(word == "max" ? "GREATEST" : "LEAST")
                chars.replaceSubrange(i..<i + 3, with: name)
                i += name.count
            } else {
                i += 3
            }
        }
        return String(chars)
    }
}
