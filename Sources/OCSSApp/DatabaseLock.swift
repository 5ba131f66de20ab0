import Glibc
import Synchronization
import OCSSEngine

/// One process at a time writes a database: an exclusive `flock` on `<db>.lock`, held until `release()` or exit
/// (the kernel drops it when the process dies, `kill -9` included). SQLite itself would let a second process in,
/// but each ocss trusts its own copy of the inventory ledger and id counters: two of them on one file oversell and
/// collide on order ids.
package final class DatabaseLock: Sendable {
    private let fd: Int32
    private let held = Atomic<Bool>(true)

    /// Takes the lock or throws, naming the process that holds it.
    package init(dbPath: String, wait: Double = 2) throws {
        let path = dbPath + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        // From here on the instance is whole, so `deinit` runs even when this init throws: every way out below
        // goes through `release()`, which closes the descriptor exactly once (a second close could hit a
        // descriptor another thread has opened since, such as a server's listening socket).
        guard fd >= 0 else {
            let why = String(cString: strerror(errno))
            held.store(false, ordering: .relaxed)
            throw ImportError(message: "cannot open \(path): \(why)")
        }
        // A lock just given up can linger for a moment: a process spawned by another thread holds a copy of the
        // descriptor from its fork until its exec closes it (O_CLOEXEC), and a service restarting in place can race
        // the old one's exit. So a held lock is tried again for up to `wait` seconds before it counts as taken.
        var taken = flock(fd, LOCK_EX | LOCK_NB) == 0
        var waited = 0.0
        while !taken && errno == EWOULDBLOCK && waited < wait {
            usleep(50_000)
            waited += 0.05
            taken = flock(fd, LOCK_EX | LOCK_NB) == 0
        }
        guard taken else {
            var buf = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buf, buf.count, 0)
            release()
            let pid = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingNewline : "unknown"
            throw ImportError(message: "\(dbPath) is in use by another ocss process (pid \(pid)); stop it first, or use its HTTP API")
        }
        let text = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    /// Lets another process take the database (idempotent).
    package func release() {
        guard held.exchange(false, ordering: .acquiringAndReleasing) else { return }
        close(fd)
    }

    deinit { release() }
}

private extension String {
    var trimmingNewline: String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" || last == "\0" { s = s.dropLast() }
        return String(s)
    }
}
