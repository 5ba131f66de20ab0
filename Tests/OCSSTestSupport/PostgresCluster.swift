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
