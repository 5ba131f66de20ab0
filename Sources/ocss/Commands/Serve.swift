import Dispatch
import Glibc
import OCSSApp
import OCSSCore
import OCSSEngine

/// `ocss serve`: the service, its configuration from flags, file and environment, and its signals.
extension CLI {
    static func serve(_ o: inout Options) throws {
        // Taken first: a parent that dies while the service starts up must still count as gone.
        let parent = getppid()
        // A reload sent while a large database loads must not end the process (SIGHUP's default action); a SIGTERM
        // from the first moment on is caught too (one sent between start-up and the handlers was lost before).
        let signals = SignalHandlers()
        let given = o.args
        let c = try serviceConfig(&o)
        let service = try Service(config: c)
        let base = "http://\(c.bind):\(service.port)"
        // The token is printed only where nobody else keeps the output: when it was just made, or on a terminal.
        // Under docker or systemd stdout goes to logs that others read; there the banner says where the token is.
        let showToken: Bool
        switch service.adminTokenSource {
        case .generated: showToken = true
        default: showToken = isatty(STDOUT_FILENO) != 0
        }
        let token = showToken ? service.adminToken : "$OCSS_ADMIN_TOKEN"
        print(
            """
            ocss is running on \(base)  (database \(ClusterNode.redacted(c.dbPath)), \(service.engine.storeCount) stores)
            dashboard: \(base)/dashboard   API: \(base)/openapi.yaml   health: \(base)/healthz
            admin token: \(showToken ? service.adminToken + "  (" + service.adminTokenSource.description + ")" : service.adminTokenSource.description)
            try:
              curl -s -X POST \(base)/v1/orders -H "Authorization: Bearer \(token)" -H 'Content-Type: application/json' \\
                -d '{"platform":"direct","event":"order.paid","platform_order_id":"A1","idempotency_key":"direct:A1:order.paid",
                     "shipping":{"text":"浙江省杭州市西湖区文三路398号","coordinates":{"lat":30.2839,"lon":120.1271,"crs":"GCJ-02"}},
                     "lines":[{"sku":"SKU-1001","quantity":2}]}'
            stop with Ctrl-C (SIGINT) or SIGTERM; SIGHUP reloads the configuration (the log level changes at once).
            """)
        fflushStdout()
        if env("OCSS_EXIT_WITH_PARENT") == "1" { service.ownWorkers.run(exitWithParent(parent, service)) }
        signals.run(service) {
            // The same resolution as at start-up: flags over environment over the (re-read) config file.
            var again = Options(given)
            do { service.reload(try serviceConfig(&again)) } catch let e as OptionError {
                service.log.error("configuration not reloaded: the running settings stay", [("error", .string(e.message))])
            } catch {
                service.log.error("configuration not reloaded: the running settings stay", [("error", .string("\(error)"))])
            }
        }
    }

    /// `serve`'s settings: flags over environment over the config file over defaults.
    static func serviceConfig(_ o: inout Options) throws -> ServiceConfig {
        var c = ServiceConfig()
        // Precedence: flags > environment > config file > defaults.
        if let file = try o.value("--config") { try ConfigFile.load(path: file).apply(to: &c) }
        c.dbPath = try o.value("--db") ?? env("OCSS_DB") ?? c.dbPath
        c.advertise = try o.value("--advertise") ?? env("OCSS_ADVERTISE") ?? c.advertise
        c.bind = try o.value("--bind") ?? env("OCSS_BIND") ?? c.bind
        if let p = try o.value("--port") ?? env("OCSS_PORT") {
            guard let v = UInt16(p) else { throw OptionError(message: "--port must be 0...65535") }
            c.port = v
        }
        if let t = try o.int("--threads", 1...256) { c.threads = t }
        if let r = try o.value("--reach") {
            guard let v = Double(r), v > 0 else { throw OptionError(message: "--reach must be metres > 0") }
            c.reachMetres = v
        }
        if let b = try o.int("--max-body", 1...Int.max) { c.maxBodyBytes = b }
        if let n = try o.int("--max-connections", 1...1_000_000) { c.maxConnections = n }
        if let n = try o.int("--request-head-timeout-s", 0...3600) { c.requestHeadSeconds = n }
        if let n = try o.int("--per-ip-connections", 0...1_000_000) { c.perIPConnections = n }
        if let d = try o.int("--outbox-retention-days", 0...36_500) { c.outboxRetentionDays = d }
        if let d = try o.int("--redemption-audit-retention-days", 0...36_500) { c.redemptionAuditRetentionDays = d }
        if let d = try o.int("--webhook-freshness-s", 0...31_536_000) { c.webhookFreshnessSeconds = d }
        if let d = try o.int("--auth-failures-per-minute", 0...1_000_000) { c.authFailuresPerMinute = d }
        if let z = try o.value("--business-time-zone") ?? env("OCSS_BUSINESS_TIME_ZONE") { c.businessTimeZone = z }
        if let w = try o.int("--idempotency-window", 1...Int.max, env: env("OCSS_IDEMPOTENCY_WINDOW")) { c.idempotencyWindow = w }
        if let l = try o.value("--log-level") {
            guard let v = Logger.Level(rawValue: l) else { throw OptionError(message: "--log-level is debug, info, warn or error") }
            c.logLevel = v
        }
        if let d = try o.value("--docs") { c.docsDir = d }
        if let g = try o.value("--geodata") ?? env("OCSS_GEODATA") { c.geodataDir = g }
        if o.flag("--demo") { c.demo = true }
        if o.flag("--bench-endpoints") { c.benchEndpoints = true }
        try o.finish()
        return c
    }

    /// For a supervisor or test harness that starts ocss as its child: once that parent is gone (even killed with
    /// SIGKILL, or crashed), stop as on SIGTERM instead of living on, holding the port and the database lock.
    static func exitWithParent(_ parent: pid_t, _ service: Service) -> PeriodicWorker {
        PeriodicWorker(name: "parent-watch", every: 0.5) {
            guard getppid() != parent else { return }
            service.log.warn("parent process gone: stopping", [("parent_pid", .int(Int64(parent)))])
            // Off the worker's own queue: stopping waits for every worker's current step, this one's included.
            DispatchQueue.global().async {
                service.stop()
                exit(0)
            }
        }
    }
}

/// SIGTERM and SIGINT stop the service (answering what is in flight, letting the writer finish); SIGHUP reloads.
/// Made before the service starts: a signal that arrives while it starts ends the process at once (nothing is
/// acknowledged yet), and one that arrives later stops it cleanly.
final class SignalHandlers: @unchecked Sendable {
    private let lock = PThreadMutex()
    private var service: Service?
    private var reload: (@Sendable () -> Void)?
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in handle(sig) }
            source.resume()
            sources.append(source)
        }
    }

    private func handle(_ sig: Int32) {
        let (service, reload) = lock.locked { (self.service, self.reload) }
        if sig == SIGHUP {
            reload?()  // a reload while starting: the configuration being loaded is already the file's
            return
        }
        service?.stop()
        exit(0)
    }

    /// Hands the running service to the handlers and parks the main thread.
    func run(_ service: Service, reload: @escaping @Sendable () -> Void) -> Never {
        lock.locked {
            self.service = service
            self.reload = reload
        }
        dispatchMain()
    }
}

/// A pthread mutex (the executable imports no Foundation).
final class PThreadMutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return body()
    }
}
