import Dispatch
import Glibc
import OCSSApp
import OCSSEngine
import OCSSCore

/// Command-line front end: `serve`, `import`, `route`.
enum CLI {
    /// Each command's usage, in the order `ocss help` lists them.
    static let commands: [(name: String, usage: String)] = [
        (
            "serve",
            """
              ocss serve [--config FILE.json] [--bind ADDR] [--port N] [--db PATH] [--threads N] [--reach METRES] [--demo] [--docs DIR] [--geodata DIR]
                         [--max-body BYTES] [--log-level debug|info|warn|error] [--idempotency-window KEYS]
                         [--max-connections N] [--per-ip-connections N (0: no limit, behind a proxy)]
                         [--request-head-timeout-s N]   (request line and headers must arrive within N s; default 10, 0: off)
                         [--outbox-retention-days N] [--redemption-audit-retention-days N]   (0: keep forever)
                         [--webhook-freshness-s N]   (signed platform timestamps further than N s from now are refused; 0: off)
                         [--auth-failures-per-minute N]   (then 429 for a growing time per client address; 0: off)
                         [--business-time-zone Asia/Shanghai]   (the calendar days analytics count in)
            """
        ),
        (
            "import",
            """
              ocss import stores FILE.csv (--url http://127.0.0.1:8080 --token T | --db PATH)   (id,name,lat,lon[,code,kind,status])
              ocss import inventory FILE.csv (--url http://127.0.0.1:8080 --token T | --db PATH) [--dry-run]   (store_id,sku,qty)
                         sets the listed rows only; [--store ID] replaces that store's catalogue (its unlisted SKUs go to 0);
                         [--replace-all [--force] [--max-emptied-share 0.10]] replaces the whole chain's; [--version N]
            """
        ),
        (
            "replay",
            """
              ocss replay --policy FILE.json [--db PATH] [--since YYYY-MM-DD] [--show N]
                                                         (re-decide recorded orders under a candidate policy; changes nothing)
            """
        ),
        (
            "loadgen",
            """
              ocss loadgen --url http://127.0.0.1:8080 --token T [--rate N|max] [--duration S] [--data DIR]
                           [--mode orders|ack|poll] [--path /v1/...] [--workers N]
            """
        ),
        (
            "ingest",
            """
              ocss ingest --platform P [--secret S] [--app-key K] [--callback-url U] [--header 'Name: value']... [--form] [--detail] --dry-run < BODY
            """
        ),
        (
            "backup",
            """
              ocss backup FILE --db PATH                 (online backup; restore: stop ocss, copy FILE over PATH)
            """
        ),
        (
            "health",
            """
              ocss health [--url http://127.0.0.1:8080]  (GET /healthz; exit 0 when healthy, 1 otherwise: for HEALTHCHECK)
            """
        ),
        (
            "route",
            """
              ocss route --db PATH --lat LAT --lon LON --line SKU:QTY [--line SKU:QTY]... [--reach METRES]
            """
        ),
        (
            "export",
            """
              ocss export customers --format csv|jsonl [--db PATH]   (every customer, for a CRM; admin data)
            """
        ),
        (
            "geocode",
            """
              ocss geocode [--geodata DIR] [--explain] < ADDRESSES  (one address per line, or JSONL {"id":..,"address":..}; JSONL out)
            """
        ),
        (
            "help",
            """
              ocss help [COMMAND]   (also: ocss COMMAND --help)
              ocss --version
            """
        ),
    ]

    static var usage: String {
        "usage:\n" + commands.map(\.usage).joined(separator: "\n")
            + "\nenvironment: OCSS_ADMIN_TOKEN, OCSS_DB, OCSS_PORT, OCSS_BIND, OCSS_GEODATA, OCSS_IDEMPOTENCY_WINDOW"
    }

    /// One command's usage, or nil for an unknown command.
    static func usage(of name: String) -> String? { commands.first { $0.name == name }.map { "usage:\n" + $0.usage } }

    static func run(_ args: [String]) {
        guard let cmd = args.first else { fail(usage, code: 64) }
        if ["--version", "-V", "version"].contains(cmd) {
            print("ocss \(BuildInfo.version)")
            return
        }
        // `ocss help import`, `ocss import --help`: that command's usage on stdout, exit 0.
        if cmd == "help" || cmd == "--help" || cmd == "-h" {
            guard let sub = args.dropFirst().first else { return print(usage) }
            guard let text = usage(of: sub) else { fail("unknown command '\(sub)'\n" + usage, code: 64) }
            return print(text)
        }
        if args.dropFirst().contains(where: { $0 == "--help" || $0 == "-h" }), let text = usage(of: cmd) { return print(text) }
        var opts = Options(Array(args.dropFirst()))
        do {
            switch cmd {
            case "serve": try serve(&opts)
            case "import": try importCommand(&opts)
            case "route": try route(&opts)
            case "replay": try replay(&opts)
            case "backup": try backup(&opts)
            case "health": try health(&opts)
            case "loadgen": try loadgen(&opts)
            case "ingest": try ingest(&opts)
            case "geocode": try geocode(&opts)
            case "export": try export(&opts)
            default: fail("unknown command '\(cmd)'\n" + usage, code: 64)
            }
        } catch let e as OptionError {
            fail(e.message + "\n" + (usage(of: cmd) ?? usage), code: 64)
        } catch {
            fail("error: \(error)", code: 1)
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        writeStderr(message + "\n")
        exit(code)
    }

    static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

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
            ocss is running on \(base)  (database \(c.dbPath), \(service.engine.storeCount) stores)
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
        if env("OCSS_EXIT_WITH_PARENT") == "1" { service.workers.run(exitWithParent(parent, service)) }
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

    static func importCommand(_ o: inout Options) throws {
        guard let what = o.positional(), let file = o.positional() else { throw OptionError(message: "import needs stores|inventory FILE") }
        guard what == "stores" || what == "inventory" else { throw OptionError(message: "import takes stores or inventory, not '\(what)'") }
        if what == "inventory" {
            // Versions only grow: the default is the current time in milliseconds.
            var io = InventoryImport.Options(
                version: try o.value("--version").map { v -> Int64 in
                    guard let n = Int64(v), n > 0 else { throw OptionError(message: "--version is a positive integer") }
                    return n
                } ?? Int64(SystemClock().now() * 1000))
            let store = try o.value("--store")
            let replaceAll = o.flag("--replace-all")
            if store != nil && replaceAll { throw OptionError(message: "--store and --replace-all replace different things: give one") }
            io.mode = replaceAll ? .replaceAll : store.map { .store($0) } ?? .rows
            io.dryRun = o.flag("--dry-run")
            io.force = o.flag("--force")
            if let share = try o.value("--max-emptied-share") {
                guard let v = Double(share), (0...1).contains(v) else { throw OptionError(message: "--max-emptied-share is a fraction from 0 to 1") }
                io.maxEmptiedShare = v
            }
            let target: InventoryImport.Target
            if let url = try o.value("--url") {
                let (host, port) = try hostPort(url)
                target = .server(host: host, port: port, token: try o.value("--token") ?? env("OCSS_ADMIN_TOKEN") ?? "")
            } else {
                target = .database(try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite")
            }
            try o.finish()
            print(try InventoryImport.run(path: file, target: target, options: io) { writeStderr($0 + "\n") })
            return
        }
        if let url = try o.value("--url") {
            let (host, port) = try hostPort(url)
            let token = try o.value("--token") ?? env("OCSS_ADMIN_TOKEN") ?? ""
            try o.finish()
            print(try StoreImport.send(path: file, host: host, port: port, token: token))
            return
        }
        let dbPath = try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite"
        try o.finish()
        _ = try Importer.importStores(file: file, dbPath: dbPath)
    }

    /// `http://HOST:PORT` on this machine.
    static func hostPort(_ url: String) throws -> (String, UInt16) {
        let hostPort = url.replacingPrefix("http://").split(separator: "/").first.map(String.init) ?? ""
        let hp = hostPort.split(separator: ":")
        guard hp.count == 2, let port = UInt16(hp[1]) else { throw OptionError(message: "--url is http://HOST:PORT") }
        let host = hp[0] == "localhost" ? "127.0.0.1" : String(hp[0])
        guard host.hasPrefix("127.") else { throw OptionError(message: "only this machine (127.0.0.0/8) is reachable") }
        return (host, port)
    }

    static func replay(_ o: inout Options) throws {
        guard let policyFile = try o.value("--policy") else { throw OptionError(message: "replay needs --policy FILE.json") }
        let dbPath = try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite"
        let since = try o.value("--since") ?? "0000"
        let show = try o.int("--show", 0...Int.max) ?? 20
        try o.finish()
        let policy = try ReplayCommand.loadPolicy(path: policyFile)
        print(try ReplayCommand.run(dbPath: dbPath, policy: policy, since: since, show: max(0, show)).text)
    }

    static func loadgen(_ o: inout Options) throws {
        var l = LoadGen.Options()
        let (host, port) = try hostPort(try o.value("--url") ?? "http://127.0.0.1:8080")
        l.host = host
        l.port = port
        if let r = try o.value("--rate"), r != "max" {
            guard let v = Double(r), v > 0 else { throw OptionError(message: "--rate is requests per second or max") }
            l.rate = v
        }
        if let d = try o.seconds("--duration", 0.1...600) { l.duration = d }
        if let w = try o.int("--workers", 1...256) { l.workers = w }
        l.dataDir = try o.value("--data") ?? l.dataDir
        l.token = try o.value("--token") ?? env("OCSS_ADMIN_TOKEN") ?? ""
        l.mode = try o.value("--mode") ?? "orders"
        guard ["orders", "ack", "poll"].contains(l.mode) else { throw OptionError(message: "--mode is orders, ack or poll") }
        l.path = try o.value("--path") ?? (l.mode == "ack" ? "/v1/orders/ack" : "/v1/orders")
        try o.finish()
        let r = LoadGen.run(l)
        print("loadgen mode=\(l.mode) workers=\(l.workers) rate=\(l.rate.map { String(Int($0)) } ?? "max") duration_s=\(l.duration) " + r.line)
    }

    static func ingest(_ o: inout Options) throws {
        guard let platform = try o.value("--platform") else { throw OptionError(message: "ingest needs --platform") }
        let secret = try o.value("--secret") ?? env("OCSS_PLATFORM_SECRET")
        var headers: [String: String] = [:]
        while let h = try o.value("--header") {
            guard let c = h.firstIndex(of: ":") else { throw OptionError(message: "--header is 'Name: value'") }
            var value = Substring(h[h.index(after: c)...])
            while value.first == " " { value.removeFirst() }
            headers[String(h[..<c])] = String(value)
        }
        _ = o.flag("--form")  // form bodies are read as they come; the adapter knows its own encoding
        let detail = o.flag("--detail")
        let appKey = try o.value("--app-key")
        let callbackURL = try o.value("--callback-url")
        guard o.flag("--dry-run") else { throw OptionError(message: "ingest only runs with --dry-run (it stores nothing)") }
        try o.finish()
        var body: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(0, &buf, buf.count)
            if n <= 0 { break }
            body.append(contentsOf: buf[0..<n])
        }
        let (code, out, err) = IngestCommand.run(
            platform: platform, secret: secret, headers: headers, body: body, appKey: appKey,
            callbackURL: callbackURL, detail: detail)
        if !out.isEmpty { print(out, terminator: "") }
        if !err.isEmpty { writeStderr(err) }
        exit(code)
    }

    static func backup(_ o: inout Options) throws {
        guard let file = o.positional() else { throw OptionError(message: "backup needs the FILE to write") }
        let dbPath = try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite"
        try o.finish()
        let orders = try Backup.run(dbPath: dbPath, to: file)
        print(#"{"backup":"\#(file)","orders":\#(orders),"integrity":"ok"}"#)
    }

    static func health(_ o: inout Options) throws {
        let url = try o.value("--url") ?? "http://127.0.0.1:\(env("OCSS_PORT") ?? "8080")"
        try o.finish()
        let (host, port) = try hostPort(url)
        let (healthy, line) = HealthCheck.run(host: host, port: port)
        print(line)
        exit(healthy ? 0 : 1)
    }

    static func route(_ o: inout Options) throws {
        let dbPath = try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite"
        guard let latS = try o.value("--lat"), let lat = Double(latS), let lonS = try o.value("--lon"), let lon = Double(lonS),
            GeoPoint(lon: lon, lat: lat).isValid
        else { throw OptionError(message: "--lat and --lon are required WGS84 degrees") }
        var lines: [(String, Int32)] = []
        while let l = try o.value("--line") {
            let parts = l.split(separator: ":")
            guard parts.count == 2, let q = Int32(parts[1]), q > 0 else { throw OptionError(message: "--line is SKU:QTY with QTY > 0") }
            lines.append((String(parts[0]), q))
        }
        guard !lines.isEmpty else { throw OptionError(message: "at least one --line SKU:QTY") }
        let reach =
            try o.value("--reach").map { r -> Double in
                guard let v = Double(r), v > 0 else { throw OptionError(message: "--reach must be metres > 0") }
                return v
            } ?? 50_000
        try o.finish()
        let json = try RouteCommand.decide(dbPath: dbPath, point: GeoPoint(lon: lon, lat: lat), lines: lines, reachMetres: reach)
        print(json)
    }

    static func export(_ o: inout Options) throws {
        guard o.positional() == "customers" else { throw OptionError(message: "export customers --format csv|jsonl [--db PATH]") }
        let dbPath = try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite"
        guard let format = ExportCommand.Format(rawValue: try o.value("--format") ?? "csv") else {
            throw OptionError(message: "--format is csv or jsonl")
        }
        try o.finish()
        let n = try ExportCommand.customers(dbPath: dbPath, format: format) { writeStdout($0) }
        writeStderr("export: \(n) customers\n")
    }

    static func geocode(_ o: inout Options) throws {
        let dir = try o.value("--geodata") ?? env("OCSS_GEODATA")
        let explain = o.flag("--explain")
        try o.finish()
        let loaded = try GeocodeCommand.load(dir)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let (n, resolved) = GeocodeCommand.run(gazetteer: loaded.gazetteer, explain: explain)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        writeStderr(
            "geocode: \(n) lines, \(resolved) resolved, \(Int(Double(n) / max(seconds, 1e-9))) lines/s; "
                + "gazetteer \(loaded.directory) loaded in \(Int(loaded.milliseconds)) ms\n")
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

    static func fflushStdout() { fflush(nil) }
}

struct OptionError: Error {
    let message: String
}

/// Minimal flag parser: `--name value`, `--flag`, positionals; unknown flags are errors.
struct Options {
    var args: [String]
    init(_ args: [String]) { self.args = args }

    mutating func value(_ name: String) throws -> String? {
        guard let i = args.firstIndex(of: name) else { return nil }
        guard i + 1 < args.count else { throw OptionError(message: "\(name) needs a value") }
        let v = args[i + 1]
        args.removeSubrange(i...(i + 1))
        return v
    }

    /// An integer flag within `range`; a value that is not one is an error naming the flag, never a silent default.
    mutating func int(_ name: String, _ range: ClosedRange<Int>, env: String? = nil) throws -> Int? {
        guard let text = try value(name) ?? env else { return nil }
        guard let v = Int(text), range.contains(v) else {
            let bound = range.upperBound == Int.max ? ">= \(range.lowerBound)" : "\(range.lowerBound)...\(range.upperBound)"
            throw OptionError(message: "\(name) must be an integer \(bound), not '\(text)'")
        }
        return v
    }

    /// A number-of-seconds flag within `range` (decimals allowed).
    mutating func seconds(_ name: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let text = try value(name) else { return nil }
        guard let v = Double(text), range.contains(v) else {
            throw OptionError(message: "\(name) must be seconds within \(range.lowerBound)...\(range.upperBound), not '\(text)'")
        }
        return v
    }

    mutating func flag(_ name: String) -> Bool {
        guard let i = args.firstIndex(of: name) else { return false }
        args.remove(at: i)
        return true
    }

    mutating func positional() -> String? {
        guard let i = args.firstIndex(where: { !$0.hasPrefix("--") }) else { return nil }
        return args.remove(at: i)
    }

    func finish() throws {
        if let extra = args.first { throw OptionError(message: "unexpected argument '\(extra)'") }
    }
}

extension String {
    func replacingPrefix(_ p: String) -> String { hasPrefix(p) ? String(dropFirst(p.count)) : self }
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
