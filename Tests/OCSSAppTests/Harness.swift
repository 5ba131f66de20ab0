import Dispatch
import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSStore
import OCSSTestSupport
import Testing

let adminToken = "adm_test_token_0123456789abcdef0123"
let admin = [("Authorization", "Bearer \(adminToken)")]
let json = [("Content-Type", "application/json")]

/// A real service (SQLite file, HTTP server on 127.0.0.1 port 0) in a temp directory.
final class Live: @unchecked Sendable {
    let dir: TempDir
    var service: Service
    var http: RawHTTP { RawHTTP(port: service.port) }

    let configure: @Sendable (inout ServiceConfig) -> Void
    let clock: any WallClock
    /// The SQLite file, or the PostgreSQL database under `OCSS_TEST_DB=postgres` (kept across restarts).
    let db: String

    init(
        demo: Bool = false, dir: TempDir = TempDir("ocss-app"), clock: any WallClock = SystemClock(),
        configure: @escaping @Sendable (inout ServiceConfig) -> Void = { _ in }
    ) throws {
        self.dir = dir
        self.configure = configure
        self.clock = clock
        db = TestDatabase.fresh(dir)
        service = try Live.start(dir: dir, db: db, demo: demo, clock: clock, configure: configure)
    }

    static func start(
        dir: TempDir, db: String? = nil, demo: Bool, clock: any WallClock = SystemClock(),
        configure: (inout ServiceConfig) -> Void = { _ in }
    ) throws -> Service {
        var c = ServiceConfig()
        c.dbPath = db ?? dir.file("ocss.sqlite")
        c.port = 0
        c.adminToken = adminToken
        c.demo = demo
        c.logLevel = .error
        // The auth matrices fail credentials on purpose, many a second; the throttle has its own test.
        c.authFailuresPerMinute = 0
        c.docsDir = Live.packageRoot + "/docs"
        c.geodataDir = Live.packageRoot + "/geodata"
        configure(&c)
        return try Service(config: c, clock: clock)
    }

    /// Stops and starts the service on the same database (a clean restart).
    func restart() throws {
        service.stop()
        service = try Live.start(dir: dir, db: db, demo: false, clock: clock, configure: configure)
    }

    func stop() {
        service.stop()
        dir.remove()
    }

    /// A connection of the test's own to the service's database, whichever engine it is on.
    func database(readOnly: Bool = true) throws -> Connection {
        TestDatabase.isPostgres ? try Connection(postgres: db, readOnly: readOnly) : try Connection(path: db, readOnly: readOnly)
    }

    static let packageRoot: String = {
        var p = #filePath
        for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
        return p
    }()

    @discardableResult
    func putStore(_ id: String, lat: Double, lon: Double, status: String = "open") throws -> RawHTTP.Reply {
        try api.send(
            "PUT", "/v1/stores/\(id)", headers: admin + json,
            body: #"{"name":"Store \#(id)","lat":\#(lat),"lon":\#(lon),"status":"\#(status)"}"#)
    }

    @discardableResult
    func putInventory(_ id: String, _ rows: [(String, Int)]) throws -> RawHTTP.Reply {
        let body = "[" + rows.map { #"{"sku":"\#($0.0)","qty":\#($0.1)}"# }.joined(separator: ",") + "]"
        return try api.send("PUT", "/v1/stores/\(id)/inventory", headers: admin + json, body: body)
    }

    /// The in-process tier: the same requests through the app's route table and handlers, without a socket or the
    /// transport. The default for API behaviour; `http` (a real socket) stays for transport, restart, crash and signal
    /// tests.
    var api: InProcessHTTP { InProcessHTTP(app: service.app) }

    func token(for store: String) throws -> String {
        let r = try api.send("POST", "/v1/stores/\(store)/tokens", headers: admin)
        return try #require(parse(r.body)["token"] as? String)
    }
}

/// A canonical order body.
func orderBody(id: String, lat: Double, lon: Double, crs: String = "WGS84", lines: [(String, Int)], key: String? = nil) -> String {
    let ls = lines.map { #"{"sku":"\#($0.0)","quantity":\#($0.1)}"# }.joined(separator: ",")
    return #"{"platform":"direct","event":"order.paid","platform_order_id":"\#(id)","idempotency_key":"\#(key ?? "direct:\(id):order.paid")","#
        + #""shipping":{"text":"somewhere","coordinates":{"lat":\#(lat),"lon":\#(lon),"crs":"\#(crs)"}},"lines":[\#(ls)]}"#
}

func parse(_ s: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any] ?? [:]
}

/// Calls a responder in-process and waits for its answer.
func call(
    _ app: any Responder, _ method: String, _ path: String, headers: [(String, String)] = [], body: String = "",
    query: [String: String] = [:]
) -> Response {
    let box = ResponseBox()
    let sem = DispatchSemaphore(value: 0)
    var h: [String: String] = [:]
    for (k, v) in headers { h[k.lowercased()] = v }
    app.respond(
        to: Request(method: method, path: path, query: query, headers: h, body: Array(body.utf8)),
        reply: Reply { r in
            box.set(r); sem.signal()
        })
    _ = sem.wait(timeout: .now() + 30)
    return box.get()!
}

final class ResponseBox: @unchecked Sendable {
    private var r: Response?
    private let lock = NSLock()
    func set(_ v: Response) { lock.withLock { r = v } }
    func get() -> Response? { lock.withLock { r } }
}

extension Response {
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A clock the test moves by hand.
final class ManualClock: WallClock, @unchecked Sendable {
    private let lock = NSLock()
    private var t: Double
    init(_ start: Double = 1_800_000_000) { t = start }
    func now() -> Double { lock.withLock { t } }
    func advance(_ seconds: Double) { lock.withLock { t += seconds } }
}

/// Waits for `condition` up to `seconds`, polling; true when it held.
func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

/// Sends a request to an `App` in process and waits for its answer: what `RawHTTP` does over a socket, minus the
/// transport (header limits, chunked bodies, connection handling are the live tier's to test).
struct InProcessHTTP {
    let app: App

    @discardableResult
    func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil,
        timeoutSeconds: Int = 40
    ) throws -> RawHTTP.Reply {
        let parts = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = kv.count > 1 ? String(kv[1]).replacingOccurrences(of: "+", with: " ") : ""
                query[String(kv[0]).removingPercentEncoding ?? String(kv[0])] = value.removingPercentEncoding ?? value
            }
        }
        var h: [String: String] = ["host": "127.0.0.1"]
        for (k, v) in headers { h[k.lowercased()] = v }
        let request = Request(
            method: method, path: String(parts[0]), query: query, headers: h, body: Array((body ?? "").utf8),
            remoteAddress: "127.0.0.1")
        let box = ResponseBox()
        let done = DispatchSemaphore(value: 0)
        app.respond(
            to: request,
            reply: Reply { r in
                box.set(r)
                done.signal()
            })
        guard done.wait(timeout: .now() + .seconds(timeoutSeconds)) == .success, let r = box.get() else {
            throw InProcessTimeout(method: method, path: path)
        }
        var replyHeaders: [String: String] = [:]
        for (k, v) in r.headers { replyHeaders[k.lowercased()] = v }
        return RawHTTP.Reply(status: r.status, headers: replyHeaders, body: String(decoding: r.body, as: UTF8.self))
    }
}

struct InProcessTimeout: Error, CustomStringConvertible {
    let method: String, path: String
    var description: String { "no answer in process to \(method) \(path)" }
}
