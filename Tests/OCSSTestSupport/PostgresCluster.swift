import Foundation

/// A throwaway PostgreSQL 15 cluster in a temp directory (`scripts/pg-test-cluster.sh`): Unix socket only, fsync on,
/// run as an unprivileged user. Stopped (immediately, as a crash would) and removed by `stop()`.
public final class PostgresCluster: @unchecked Sendable {
    public let dir: String
    /// The libpq connection string of its `ocss` database.
    public let conninfo: String
    static let script: String = {
        var p = #filePath
        for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
        return p + "/scripts/pg-test-cluster.sh"
    }()

    /// nil when PostgreSQL 15 is not installed (the script says so on stderr; `make test` installs it).
    public init?() {
        let base = TempDir("ocss-pg")
        dir = base.path
        // No pipes: the server started by the script would inherit one and keep it open.
        guard PostgresCluster.run(["start", dir]) == 0,
            let text = try? String(contentsOfFile: dir + "/conninfo", encoding: .utf8)
        else {
            _ = PostgresCluster.run(["stop", dir])
            base.remove()
            return nil
        }
        conninfo = text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func run(_ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script] + args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Stops the server as a crash would, keeping its data; `resume()` starts it again.
    public func halt() { _ = PostgresCluster.run(["stop", dir]) }
    public func resume() { _ = PostgresCluster.run(["resume", dir]) }

    public func stop() {
        _ = PostgresCluster.run(["stop", dir])
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Which engine the storage and API suites run on: SQLite unless `OCSS_TEST_DB=postgres` (`make test` runs them once
/// on each). On PostgreSQL every database a test asks for is a new one in one cluster this test process starts.
public enum TestDatabase {
    public static let isPostgres = ProcessInfo.processInfo.environment["OCSS_TEST_DB"] == "postgres"

    /// The test process's cluster, started on first use and stopped when the process exits.
    static let cluster: PostgresCluster? = {
        guard let c = PostgresCluster() else { return nil }
        atexit { TestDatabase.cluster?.stop() }
        return c
    }()
    static let counter = NSLock()
    nonisolated(unsafe) static var next = 0

    /// Where a test's service keeps its data: `file` in `dir` on SQLite, a new empty database on PostgreSQL.
    public static func fresh(_ dir: TempDir, file: String = "ocss.sqlite") -> String {
        guard isPostgres else { return dir.file(file) }
        guard let cluster else { fatalError("OCSS_TEST_DB=postgres, but no PostgreSQL 15 cluster could start") }
        return createDatabase(in: cluster)
    }

    /// A new empty database in `cluster`, as a connection string.
    public static func createDatabase(in cluster: PostgresCluster) -> String {
        let name = counter.withLock {
            next += 1
            return "t\(getpid())_\(next)"
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/lib/postgresql/15/bin/psql")
        p.arguments = [cluster.conninfo, "-q", "-c", "CREATE DATABASE \(name)"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
        return cluster.conninfo.replacingOccurrences(of: "postgresql:///ocss?", with: "postgresql:///\(name)?")
    }
}
