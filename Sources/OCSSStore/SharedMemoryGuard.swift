import Glibc
import Synchronization

/// SQLite maps the database's `-shm` file into memory, and every connection, readers included, writes to it. If
/// someone makes that file immutable (`chattr +i`) or cuts it short (`truncate`) while ocss runs, the next write to a
/// mapped page is a SIGBUS, which ends the process and no error handling can catch (an unwritable WAL, by contrast,
/// is an I/O error and a 503). The guard looks at the file as the kernel will judge it, before each write batch and
/// before reads (at most every 100 ms), so the service refuses the work with a storage error, and `/healthz` says
/// why, instead of touching the mapping. A change made between a check and a write can still end the process.
public final class SharedMemoryGuard: Sendable {
    let path: String
    /// When the file was last looked at (monotonic seconds) and what was found.
    private let last = Mutex<(at: Double, problem: String?)>((-1, nil))
    static let recheckSeconds = 0.1
    /// The smallest `-shm` SQLite maps: one 32 KiB region.
    static let minimumSize = 32_768
    /// `FS_IOC_GETFLAGS`, and the inode flags that make a write through a shared mapping fault.
    static let getFlags: UInt = 0x8008_6601
    static let immutable = 0x10, appendOnly = 0x20

    public init(databasePath: String) { path = databasePath + "-shm" }

    /// Why the `-shm` cannot be written safely now, or nil (also when it does not exist yet: SQLite creates it).
    public func problem(now: Double) -> String? {
        let l = last.withLock { $0 }
        if l.at >= 0, now - l.at < Self.recheckSeconds { return l.problem }
        let found = look()
        last.withLock { $0 = (now, found) }
        return found
    }

    /// Looks now, whatever the last look found.
    public func problemNow() -> String? {
        let found = look()
        last.withLock { $0 = (-1, found) }
        return found
    }

    private func look() -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return errno == ENOENT ? nil : "cannot open \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size > 0, Int(st.st_size) < Self.minimumSize {
            return "\(path) was cut to \(st.st_size) bytes while mapped: restart ocss"
        }
        var flags = 0
        if ioctl(fd, Self.getFlags, &flags) == 0, flags & (Self.immutable | Self.appendOnly) != 0 {
            return "\(path) is immutable or append-only (chattr): writing through its mapping would end the process"
        }
        return nil
    }

    /// Throws the storage error the guard stands for, when there is a problem.
    func check(now: Double) throws(SQLiteError) {
        if let p = problem(now: now) { throw SQLiteError(code: 10 /* SQLITE_IOERR */, message: p, sql: nil) }
    }
}

/// Monotonic seconds (the guard's clock).
func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
