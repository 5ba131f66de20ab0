import Synchronization

/// Read-only connections handed out one per caller; WAL lets them read while the writer writes.
public final class ReaderPool: Sendable {
    private let open: @Sendable () throws -> Connection
    private let idle = Mutex<(connections: [UnsafeTransfer<Connection>], closed: Bool)>(([], false))
    /// Refuses reads while the `-shm` cannot be written safely (readers write their read marks into it).
    private let shm: SharedMemoryGuard?

    public init(path: String, guard shm: SharedMemoryGuard? = nil) {
        open = { try Connection(path: path, readOnly: true) }
        self.shm = shm
    }

    /// Readers of `database`, a SQLite file path or a PostgreSQL URL.
    public convenience init(database: String) {
        if Connection.isPostgres(database) { self.init(postgres: database) } else { self.init(path: database) }
    }

    /// Readers on PostgreSQL: sessions opened as needed; one found broken (the server went away) is dropped, so reads
    /// come back by themselves once the server does.
    public init(postgres conninfo: String) {
        open = { try Connection(postgres: conninfo, readOnly: true) }
        shm = nil
    }

    /// Ends the idle connections' sessions; connections in use are dropped when they come back (a stopped node's
    /// PostgreSQL sessions go back to the server at once).
    public func close() {
        let all = idle.withLock { p in
            p.closed = true
            defer { p.connections.removeAll() }
            return p.connections
        }
        for c in all { c.value.disconnect() }
    }

    /// Runs `body` with a connection of its own.
    public func read<T>(_ body: (Connection) throws -> T) throws -> T {
        try shm?.check(now: monotonic())
        let conn = try idle.withLock { $0.connections.popLast() }?.value ?? open()
        defer {
            conn.finishReads()
            if !conn.isBroken {
                let c = UnsafeTransfer(conn)
                idle.withLock { if $0.connections.count < 16 && !$0.closed { $0.connections.append(c) } }
            }
        }
        return try body(conn)
    }
}
