import FoundationEssentials
import OCSSCore
import OCSSHTTP
package import OCSSPlatforms
import OCSSEngine

/// `ocss serve --config FILE`: a JSON object with any of these keys; flags and environment override it.
/// ```json
/// {"bind": "127.0.0.1", "port": 8080, "db": "var/ocss.sqlite", "threads": 2, "reach_m": 50000,
///  "max_body": 1048576, "log_level": "info", "docs": "docs", "geodata": "geodata", "demo": false,
///  "idle_timeout_s": 30, "request_head_timeout_s": 10, "per_ip_connections": 256, "max_connections": 4096, "idempotency_window": 200000,
///  "outbox_retention_days": 30, "redemption_audit_retention_days": 180, "webhook_freshness_s": 600,
///  "auth_failures_per_minute": 20, "business_time_zone": "Asia/Shanghai"}
/// ```
package struct ConfigFile: Decodable, Sendable {
    package var bind: String?
    package var port: Int?
    package var db: String?
    package var threads: Int?
    package var reach_m: Double?
    package var max_body: Int?
    package var log_level: String?
    package var docs: String?
    /// Directory of gazetteer.tsv/chars.tsv; "" turns the geocoder off.
    package var geodata: String?
    package var demo: Bool?
    package var idle_timeout_s: Int?
    /// Seconds a request head may take (0: no deadline).
    package var request_head_timeout_s: Int?
    package var per_ip_connections: Int?
    package var max_connections: Int?
    /// How many of the newest idempotency keys are held in memory.
    package var idempotency_window: Int?
    /// Days a sent outbox message is kept (0: forever).
    package var outbox_retention_days: Int?
    /// Days a redemption attempt (masked audit) is kept (0: forever).
    package var redemption_audit_retention_days: Int?
    /// Seconds a platform's signed timestamp may be from now (0: no check).
    package var webhook_freshness_s: Int?
    /// Failed credentials a client address may present in a minute before it is refused for a while (0: no limit).
    package var auth_failures_per_minute: Int?
    /// The time zone analytics days follow (IANA name; default Asia/Shanghai).
    package var business_time_zone: String?
    /// Platform credentials by platform name (as PUT /v1/platforms/{platform}/credentials takes them),
    /// saved at start-up; the admin API can change them later.
    package var platforms: [String: PlatformCredentials]?

    /// Reads and checks a config file; errors name the key.
    package static func load(path: String) throws -> ConfigFile {
        guard let text = readFile(path) else { throw ImportError(message: "cannot read config file \(path)") }
        let c: ConfigFile
        do { c = try JSONDecoder().decode(ConfigFile.self, from: Data(text.utf8)) } catch let e as DecodingError {
            let f = CanonicalJSON.fieldError(e)
            throw ImportError(message: "config \(path): \(f.field.isEmpty ? "" : f.field + ": ")\(f.message)")
        }
        // A misspelt key would otherwise be ignored without a word, and its setting silently left at the default.
        if let unknown = try? JSONDecoder().decode(TopLevelKeys.self, from: Data(text.utf8)).names.filter({ !known.contains($0) }).sorted(),
            let first = unknown.first
        {
            throw ImportError(message: "config \(path): \(first): unknown key (known: \(known.sorted().joined(separator: ", ")))")
        }
        if let p = c.port, !(0...65_535).contains(p) { throw ImportError(message: "config \(path): port must be 0...65535") }
        // Values a flag would refuse are refused here too, by key.
        for (key, value, least) in [
            ("threads", c.threads, 1), ("max_body", c.max_body, 1), ("idle_timeout_s", c.idle_timeout_s, 1),
            ("request_head_timeout_s", c.request_head_timeout_s, 0),
            ("per_ip_connections", c.per_ip_connections, 0), ("max_connections", c.max_connections, 1),
            ("idempotency_window", c.idempotency_window, 1),
            ("outbox_retention_days", c.outbox_retention_days, 0),
            ("redemption_audit_retention_days", c.redemption_audit_retention_days, 0),
            ("webhook_freshness_s", c.webhook_freshness_s, 0), ("auth_failures_per_minute", c.auth_failures_per_minute, 0),
        ] {
            if let value, value < least { throw ImportError(message: "config \(path): \(key) must be >= \(least), not \(value)") }
        }
        if let r = c.reach_m, !(r > 0) { throw ImportError(message: "config \(path): reach_m must be metres > 0") }
        if let l = c.log_level, Logger.Level(rawValue: l) == nil {
            throw ImportError(message: "config \(path): log_level is debug, info, warn or error")
        }
        return c
    }

    /// Every key the file may have: the stored properties above, read off the type so the list cannot drift.
    static let known = Set(Mirror(reflecting: ConfigFile()).children.compactMap(\.label))

    /// The names of a JSON object's keys, whatever their values.
    private struct TopLevelKeys: Decodable {
        struct Key: CodingKey {
            let stringValue: String
            init?(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }
        let names: [String]
        init(from decoder: any Decoder) throws { names = try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue) }
    }

    /// Applies the file's values onto `c`.
    package func apply(to c: inout ServiceConfig) {
        if let v = bind { c.bind = v }
        if let v = port { c.port = UInt16(v) }
        if let v = db { c.dbPath = v }
        if let v = threads { c.threads = v }
        if let v = reach_m { c.reachMetres = v }
        if let v = max_body { c.maxBodyBytes = v }
        if let v = log_level.flatMap(Logger.Level.init(rawValue:)) { c.logLevel = v }
        if let v = docs { c.docsDir = v }
        if let v = geodata { c.geodataDir = v }
        if let v = demo { c.demo = v }
        if let v = idle_timeout_s { c.limits.connectionTimeoutSeconds = v }
        if let v = request_head_timeout_s { c.limits.requestHeadSeconds = v }
        if let v = per_ip_connections { c.limits.perIPConnectionLimit = v }
        if let v = max_connections { c.limits.connectionLimit = v }
        if let v = idempotency_window { c.idempotencyWindow = v }
        if let v = outbox_retention_days { c.outboxRetentionDays = v }
        if let v = redemption_audit_retention_days { c.redemptionAuditRetentionDays = v }
        if let v = webhook_freshness_s { c.webhookFreshnessSeconds = v }
        if let v = auth_failures_per_minute { c.authFailuresPerMinute = v }
        if let v = business_time_zone { c.businessTimeZone = v }
        if let v = platforms { c.platformCredentials = v }
    }
}
