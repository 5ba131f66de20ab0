import Dispatch
import Glibc
import OCSSApp
import OCSSStore
import OCSSEngine
import OCSSCore

/// Command-line front end: `serve`, `import`, `route`.
enum CLI {
    /// Each command's usage, in the order `ocss help` lists them.
    static let commands: [(name: String, usage: String)] = [
        (
            "serve",
            """
              ocss serve [--config FILE.json] [--bind ADDR] [--port N] [--db PATH|postgres://...] [--advertise URL] [--threads N] [--reach METRES] [--demo] [--docs DIR] [--geodata DIR]
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
            "migrate",
            """
              ocss migrate --from FILE.sqlite --to postgres://USER@HOST/DB   (into an empty PostgreSQL database; counts every table after)
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
            case "migrate": try migrate(&opts)
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

    static func fflushStdout() { fflush(nil) }
}

extension CLI {
    /// `--db` (or OCSS_DB) for a command that works on the SQLite file itself, offline. A PostgreSQL URL is refused
    /// with what to do instead: on PostgreSQL the database belongs to the running nodes, whose leader's memory is the
    /// truth an offline change would bypass.
    static func sqliteFile(_ o: inout Options, _ command: String, instead: String) throws -> String {
        let db = try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite"
        guard !Connection.isPostgres(db) else {
            throw OptionError(message: "ocss \(command) --db works on a SQLite file; on PostgreSQL \(instead)")
        }
        return db
    }
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
