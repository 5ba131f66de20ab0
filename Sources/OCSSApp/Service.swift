import Dispatch
import Glibc
import OCSSCore
package import OCSSHTTP
package import OCSSPlatforms
import OCSSStore
package import OCSSEngine

/// How to run the service. Every field has a documented default (README, Configuration).
package struct ServiceConfig: Sendable {
    package var dbPath = "var/ocss.sqlite"
    package var bind = "127.0.0.1"
    package var port: UInt16 = 8080
    package var threads = 2
    /// Admin bearer token; nil reads OCSS_ADMIN_TOKEN, then `<db dir>/admin.token`, creating it. At least
    /// `Service.minAdminTokenLength` characters, whatever its source.
    package var adminToken: String?
    /// Failed credentials one client address may present in a minute before it is refused for a while; 0: no limit.
    package var authFailuresPerMinute = 20
    package var reachMetres = 50_000.0
    /// Load the bundled demo stores and inventory when the database has no stores.
    package var demo = false
    /// Where `openapi.yaml` is read from; nil tries `docs/` then `/usr/share/ocss/docs`.
    package var docsDir: String?
    /// Where the gazetteer is read from; nil looks in `geodata/`, next to the binary, then `/usr/share/ocss/geodata`;
    /// "" runs without a geocoder (address-only orders wait for review).
    package var geodataDir: String?
    package var limits = ServerLimits()
    /// Largest request body in bytes (413 above it); shorthand for `limits.maxBodyBytes`.
    package var maxBodyBytes: Int {
        get { limits.maxBodyBytes }
        set { limits.maxBodyBytes = newValue }
    }
    /// Seconds a request head may take; shorthand for `limits.requestHeadSeconds`.
    package var requestHeadSeconds: Int {
        get { limits.requestHeadSeconds }
        set { limits.requestHeadSeconds = newValue }
    }
    /// Concurrent connections in all; shorthand for `limits.connectionLimit`.
    package var maxConnections: Int {
        get { limits.connectionLimit }
        set { limits.connectionLimit = newValue }
    }
    /// Concurrent connections per client address, 0 for none (behind a proxy); shorthand for `limits.perIPConnectionLimit`.
    package var perIPConnections: Int {
        get { limits.perIPConnectionLimit }
        set { limits.perIPConnectionLimit = newValue }
    }
    package var logLevel: Logger.Level = .info
    /// Run the SLA timer every `tickSeconds` (tests turn it off and call `engine.tick()` on their clock).
    package var timers = true
    package var tickSeconds = 1.0
    /// Run the outbox dispatcher.
    package var outboxEnabled = true
    package var outbox = OutboxDispatcher.Settings()
    /// Platform credentials from the config file, saved at start-up.
    package var platformCredentials: [String: PlatformCredentials] = [:]
    /// How many of the newest idempotency keys are held in memory; older ones are looked up in the database.
    package var idempotencyWindow = Engine.defaultIdempotencyWindow
    /// Days a sent outbox message is kept; 0 keeps them forever. Pending and dead messages are always kept.
    package var outboxRetentionDays = 30
    /// Days a promotion-code redemption attempt (the masked audit) is kept; 0 keeps them forever.
    package var redemptionAuditRetentionDays = 180
    /// How far a platform's signed timestamp may be from now, in seconds, before the delivery is refused as a replay
    /// (Meituan, Ele.me, Ele.me retail, JD Daojia sign one); 0 turns the check off.
    package var webhookFreshnessSeconds = 600
    /// The time zone whose calendar days analytics count in (an IANA name such as Asia/Shanghai, or UTC).
    package var businessTimeZone = "Asia/Shanghai"
    /// Serve POST /v1/orders/ack, the parse-and-acknowledge baseline for the end-to-end benchmark.
    package var benchEndpoints = false
    /// On PostgreSQL: where the other nodes reach this one (`--advertise`, OCSS_ADVERTISE); nil is
    /// `http://BIND:PORT`, right only when the bind address is one the other nodes can reach.
    package var advertise: String?
    /// On PostgreSQL: seconds between two steps of the leader's lease (renewal, or a follower's try).
    package var leaseSeconds = 0.5

    package init() {}

}

/// The composition root: database, engine, HTTP server.
///
/// On SQLite a service is one engine for its life. On PostgreSQL it is one node of several (ARCHITECTURE.md, "More
/// than one node"): its `ClusterNode` holds or waits for the leader's lease, and the engine side (`Stack`) is built
/// anew from the tables at every change of role, as a start-up would load it.
package final class Service: Sendable {
    private let stacks: StackHolder
    package var engine: Engine { stacks.current.engine }
    package var app: App { stacks.current.app }
    package var dispatcher: OutboxDispatcher { stacks.current.dispatcher }
    package var retention: Retention { stacks.current.retention }
    /// The background workers (outbox, retention, ticker, and any the caller adds), stopped in reverse order.
    package var workers: WorkerGroup { stacks.current.workers }
    package let server: HTTPServer
    /// Workers of the process rather than of an engine (they outlive a change of role), stopped first.
    package let ownWorkers: WorkerGroup
    package let adminToken: String
    /// Where the admin token came from, for the start banner (which prints a token only when it was just made).
    package let adminTokenSource: AdminTokenSource
    package let config: ServiceConfig
    package let log: Logger
    /// This process's hold on the database (a second ocss on the same file is refused); none on PostgreSQL, where
    /// nodes share the database and the leader's lease decides who writes.
    private let dbLock: DatabaseLock?
    /// The node's part in a cluster (PostgreSQL only).
    package let node: ClusterNode?

    /// The port the server listens on (the real one when configured with 0).
    package var port: UInt16 { server.port }

    package init(config: ServiceConfig, clock: any WallClock = SystemClock()) throws {
        // A write to a pipe nobody reads (a log shipper restarting, `ocss serve 2>&1 | head`) must fail, not end
        // the process: SIGPIPE's default action is to terminate.
        signal(SIGPIPE, SIG_IGN)
        self.config = config
        let log = Logger(minimum: config.logLevel, clock: clock)
        self.log = log
        ownWorkers = WorkerGroup(log: log)
        try Service.setBusinessTimeZone(config.businessTimeZone)
        let postgres = Connection.isPostgres(config.dbPath)
        let dir = postgres ? "" : Service.directory(of: config.dbPath)
        if !dir.isEmpty { mkdir(dir, 0o755) }
        (adminToken, adminTokenSource) = try config.adminToken.map { ($0, .configured) } ?? Service.adminToken(dir: dir)
        guard adminToken.unicodeScalars.count >= Service.minAdminTokenLength else {
            throw ImportError(
                message: "the admin token (\(adminTokenSource.description)) has \(adminToken.unicodeScalars.count) characters: "
                    + "use at least \(Service.minAdminTokenLength) random ones (for example: openssl rand -hex 32)")
        }
        let geocoder = try Service.loadGeocoder(config, log: log)
        let builder = StackBuilder(config: config, adminToken: adminToken, geocoder: geocoder, clock: clock, log: log)
        let stack: Stack?
        var version = Migrations.all.count
        if postgres {
            dbLock = nil
            // The schema is made once, by whichever node starts first (under a transaction lock).
            _ = try Migrations.apply(to: try Connection(postgres: config.dbPath))
            node = ClusterNode(config: config, builder: builder, log: log)
            stack = nil  // built by the node's first lease step, for the role it takes
        } else {
            node = nil
            dbLock = try DatabaseLock(dbPath: config.dbPath)
            let db = try Connection(path: config.dbPath)
            // Some migrations rewrite a table (10 gives every assignment a feed position: about 1.5 s per 200,000): say so.
            let from = try db.query("PRAGMA user_version") { Int($0.int(0)) }.first ?? 0
            let started = monotonicSeconds()
            if from > 0 && from < Migrations.all.count {
                log.info("migrating the database", [("from", .int(Int64(from))), ("to", .int(Int64(Migrations.all.count)))])
            }
            version = try Migrations.apply(to: db)
            if from > 0 && from < version {
                log.info("database migrated", [("schema_version", .int(Int64(version))), ("ms", .double((monotonicSeconds() - started) * 1000))])
            }
            let shm = SharedMemoryGuard(databasePath: config.dbPath)
            stack = try builder.leader(db: db, readers: ReaderPool(path: config.dbPath, guard: shm), shm: shm)
        }
        stacks = StackHolder(stack)
        // Every connection is a descriptor: a systemd service starts with a soft limit of 1,024, far below the
        // connection limit, and accept() would fail with EMFILE long before it.
        let files = Service.raiseFileLimit(toAtLeast: config.limits.connectionLimit + 256)
        if files.soft < config.limits.connectionLimit + 256 {
            log.warn(
                "open-file limit below the connection limit: raise LimitNOFILE / ulimit -n",
                [
                    ("soft", .int(Int64(files.soft))), ("hard", .int(Int64(files.hard))),
                    ("max_connections", .int(Int64(config.limits.connectionLimit))),
                ])
        }
        var sc = ServerConfig(bindAddress: config.bind, port: config.port)
        sc.threads = config.threads
        sc.limits = config.limits
        if let node {
            server = try HTTPServer(config: sc, responder: ClusterResponder(node: node, stacks: stacks))
            node.start(stacks: stacks, port: server.port)
            guard stacks.ready != nil else {
                node.stopLoops()
                node.resign()
                server.stop()
                throw ImportError(message: "could not load the database at \(ClusterNode.redacted(config.dbPath)) (the log says why)")
            }
        } else {
            server = try HTTPServer(config: sc, responder: stacks.current.app)
        }
        log.info(
            "ocss listening",
            [
                ("bind", .string(config.bind)), ("port", .int(Int64(server.port))),
                ("db", .string(postgres ? ClusterNode.redacted(config.dbPath) : config.dbPath)),
                ("schema_version", .int(Int64(version))), ("stores", .int(Int64(stacks.current.engine.storeCount))),
                ("role", .string(node == nil ? "single" : "starting")),
            ])
    }

    static func loadGeocoder(_ config: ServiceConfig, log: Logger) throws -> any Geocoder {
        guard config.geodataDir != "" else { return NoGeocoder() }
        do {
            let g = try GazetteerFiles.shared(config.geodataDir)
            log.info(
                "gazetteer loaded",
                [
                    ("dir", .string(g.directory)), ("units", .int(Int64(g.gazetteer.unitCount))),
                    ("names", .int(Int64(g.gazetteer.counts.names))), ("ms", .double(g.milliseconds)),
                ])
            return g.gazetteer
        } catch {
            // An explicit directory must load; the default search may come up empty (addresses then wait for review).
            if config.geodataDir != nil { throw error }
            log.warn("no gazetteer: address-only orders will wait for address review", [("error", .string("\(error)"))])
            return NoGeocoder()
        }
    }

    /// Stops accepting, answers waiting requests, lets the writer finish, and returns.
    package func stop() {
        // Requests in flight finish first (they may need a worker's state), then the workers, then the writer.
        server.stop()
        ownWorkers.stop()
        // A leader drains its writes before it gives the lease up: the next leader loads what they committed.
        node?.stopLoops()
        stacks.current.stop()
        node?.resign()
        dbLock?.release()
        log.info("ocss stopped")
    }

    /// What a reload did: the settings it changed, and the ones that differ from the running service's but take
    /// effect only at the next start (config-file key names).
    package struct Reload: Sendable, Equatable {
        package var applied: [String] = []
        package var needRestart: [String] = []
    }

    /// Applies `new`, the configuration resolved again exactly as at start-up (flags over environment over the
    /// config file), on SIGHUP. What can change while running changes now: the log level. Everything else is named
    /// when it differs, so an operator knows the edit has not taken effect. Platform credentials from the file are
    /// saved only at start-up: the admin API may have changed them since, and a reload must not undo that.
    @discardableResult
    package func reload(_ new: ServiceConfig) -> Reload {
        var r = Reload()
        if new.logLevel != log.minimum {
            r.applied.append("log_level")
            log.minimum = new.logLevel
        }
        r.needRestart = Service.restartOnly.filter { $0.differs(config, new) }.map(\.key)
        log.warn(
            "configuration reloaded",
            [
                ("applied", .array(r.applied.map { .string($0) })),
                ("needs_restart", .array(r.needRestart.map { .string($0) })),
                ("log_level", .string(log.minimum.rawValue)),
            ])
        return r
    }

    /// Config-file keys that take effect only at start-up, and how to tell a change. With `log_level` (applied at
    /// once), these are every key the config file has (a test holds the two lists together).
    static let restartOnly: [(key: String, differs: @Sendable (ServiceConfig, ServiceConfig) -> Bool)] = [
        ("bind", { $0.bind != $1.bind }), ("port", { $0.port != $1.port }), ("db", { $0.dbPath != $1.dbPath }),
        ("threads", { $0.threads != $1.threads }), ("reach_m", { $0.reachMetres != $1.reachMetres }),
        ("max_body", { $0.limits.maxBodyBytes != $1.limits.maxBodyBytes }),
        ("idle_timeout_s", { $0.limits.connectionTimeoutSeconds != $1.limits.connectionTimeoutSeconds }),
        ("request_head_timeout_s", { $0.limits.requestHeadSeconds != $1.limits.requestHeadSeconds }),
        ("per_ip_connections", { $0.limits.perIPConnectionLimit != $1.limits.perIPConnectionLimit }),
        ("max_connections", { $0.limits.connectionLimit != $1.limits.connectionLimit }),
        ("idempotency_window", { $0.idempotencyWindow != $1.idempotencyWindow }),
        ("outbox_retention_days", { $0.outboxRetentionDays != $1.outboxRetentionDays }),
        ("redemption_audit_retention_days", { $0.redemptionAuditRetentionDays != $1.redemptionAuditRetentionDays }),
        ("webhook_freshness_s", { $0.webhookFreshnessSeconds != $1.webhookFreshnessSeconds }),
        ("auth_failures_per_minute", { $0.authFailuresPerMinute != $1.authFailuresPerMinute }),
        ("business_time_zone", { $0.businessTimeZone != $1.businessTimeZone }),
        ("docs", { $0.docsDir != $1.docsDir }), ("geodata", { $0.geodataDir != $1.geodataDir }), ("demo", { $0.demo != $1.demo }),
        ("platforms", { $0.platformCredentials != $1.platformCredentials }),
    ]

    /// Raises the soft limit on open files to `wanted`, or as far as the hard limit allows; returns both.
    static func raiseFileLimit(toAtLeast wanted: Int) -> (soft: Int, hard: Int) {
        var l = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0 else { return (0, 0) }
        // RLIM_INFINITY is all ones.
        let asInt = { (v: rlim_t) -> Int in v > rlim_t(Int.max) ? Int.max : Int(v) }
        let hard = asInt(l.rlim_max)
        if asInt(l.rlim_cur) < wanted {
            l.rlim_cur = rlim_t(min(wanted, hard))
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        }
        return (asInt(l.rlim_cur), hard)
    }

    static func directory(of path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "" }
        return String(path[..<i])
    }

    /// Makes `zone` the process's time zone (`TZ`), which Swift's `localtime_r` and SQLite's `localtime` follow. An
    /// unknown name is refused: glibc would silently fall back to UTC.
    static func setBusinessTimeZone(_ zone: String) throws {
        let valid = zone == "UTC" || (!zone.contains("..") && !zone.hasPrefix("/") && access("/usr/share/zoneinfo/" + zone, R_OK) == 0)
        guard valid else {
            throw ImportError(
                message: "business time zone '\(zone)' is not in /usr/share/zoneinfo (install tzdata, or use a name such as Asia/Shanghai)")
        }
        setenv("TZ", zone, 1)
        tzset()
    }

    /// Shortest admin token accepted: guessing 32 random characters is hopeless even unthrottled.
    package static let minAdminTokenLength = 32

    static func adminToken(dir: String) throws -> (String, AdminTokenSource) {
        if let t = getenv("OCSS_ADMIN_TOKEN").map({ String(cString: $0) }), !t.isEmpty { return (t, .environment) }
        let path = (dir.isEmpty ? "." : dir) + "/admin.token"
        if let existing = readFile(path)?.split(whereSeparator: \.isNewline).first, !existing.isEmpty { return (String(existing), .file(path)) }
        let token = Crypto.token(prefix: "adm_")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw APIError(500, "config", "cannot write \(path)") }
        _ = (token + "\n").withCString { write(fd, $0, strlen($0)) }
        close(fd)
        return (token, .generated(path))
    }

    static func readOpenAPI(_ dir: String?) -> String? {
        for d in [dir, "docs", "/usr/share/ocss/docs"].compactMap({ $0 }) {
            if let s = readFile(d + "/openapi.yaml") { return s }
        }
        return nil
    }
}

/// Whole small file as UTF-8, nil when unreadable.
package func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: buf[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Where the admin token came from.
package enum AdminTokenSource: Sendable, Equatable, CustomStringConvertible {
    /// Made at this start and written to the file.
    case generated(String)
    /// Read from the file a previous start wrote.
    case file(String)
    case environment
    /// Given in the service's configuration (a test, an embedding program).
    case configured

    package var description: String {
        switch self {
        case .generated(let path): "generated into \(path)"
        case .file(let path): "from \(path)"
        case .environment: "from OCSS_ADMIN_TOKEN"
        case .configured: "from the configuration"
        }
    }
}
