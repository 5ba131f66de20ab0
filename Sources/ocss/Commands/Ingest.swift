import Glibc
import OCSSApp
import OCSSCore
import OCSSPlatforms
import OCSSEngine

/// `ocss ingest --platform P [--secret S] [--header 'Name: value']... --dry-run < body`: verifies a
/// delivery and prints the canonical event, as integrators check their webhook set-up.
enum IngestCommand {
    /// (exit code, stdout, stderr): 0 with the canonical event; 2 for a bad signature; 1 for a bad payload.
    static func run(
        platform: String, secret: String?, headers: [String: String], body: [UInt8],
        appKey: String? = nil, callbackURL: String? = nil, detail: Bool = false
    ) -> (Int32, String, String) {
        let credentials = PlatformCredentials(base_url: "", app_key: appKey, app_secret: secret, callback_url: callbackURL)
        func failure(_ code: Int32, _ kind: String, _ message: String, field: String?) -> (Int32, String, String) {
            (code, "", APIError(code == 2 ? 401 : 400, kind, message, field: field).body.text + "\n")
        }
        guard let adapter = Adapters.adapter(for: platform) else {
            return failure(
                1, "unknown_platform", "no adapter for '\(platform)' (have: \(Adapters.all.keys.sorted().joined(separator: ", ")))", field: "platform"
            )
        }
        let m = InboundMessage(headers: headers, body: body)
        do {
            // --detail: a detail-API answer (what a connector or the fetcher gets back), no signature.
            let outcome: AdapterOutcome
            if detail {
                outcome = try AdapterOutcome.fromDetail(platform: platform, body: body)
            } else {
                if !adapter.isUnsignedPing(m) && !adapter.needsBearer(m) { try adapter.verify(m, credentials: credentials) }
                outcome = try adapter.parse(m)
            }
            switch outcome {
            case .event(let order):
                return (0, String(decoding: CanonicalJSON.encode(order), as: UTF8.self) + "\n", "")
            case .needsDetail(let id, let topic):
                return (
                    0,
                    JSON.object([
                        ("event", .string("needs_detail")), ("platform_order_id", .string(id)), ("topic", .string(topic)),
                        ("platform", .string(platform)),
                    ]).text + "\n", ""
                )
            case .ignored(let reason):
                return (0, JSON.object([("event", .string("ignore")), ("reason", .string(reason)), ("platform", .string(platform))]).text + "\n", "")
            }
        } catch {
            return error.kind == .signature
                ? failure(2, "bad_signature", error.message, field: error.field)
                : failure(1, "invalid_field", error.message, field: error.field)
        }
    }
}

extension CLI {
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
}
