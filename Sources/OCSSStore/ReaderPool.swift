import Synchronization

/// Read-only connections handed out one per caller; WAL lets them read while the writer writes.
public final class ReaderPool: Sendable {
    private let path: String
    private let idle = Mutex<[UnsafeTransfer<Connection>]>([])
    /// Refuses reads while the `-shm` cannot be written safely (readers write their read marks into it).
    private let shm: SharedMemoryGuard?

    public init(path: String, guard shm: SharedMemoryGuard? = nil) {
        self.path = path
        self.shm = shm
    }

    /// Runs `body` with a connection of its own.
    public func read<T>(_ body: (Connection) throws -> T) throws -> T {
        try shm?.check(now: monotonic())
        let conn = try idle.withLock { $0.popLast() }?.value ?? Connection(path: path, readOnly: true)
        defer {
            conn.finishReads()
            let c = UnsafeTransfer(conn)
            idle.withLock { if $0.count < 16 { $0.append(c) } }
        }
        return try body(conn)
    }
}
