import OCSSApp
import Dispatch
import Foundation
import Glibc
import Synchronization
import OCSSEngine

/// `ocss loadgen`: drives a server on this machine with canonical orders built from the shared/bench
/// orders (or with assignment polls), bounded in time, and reports throughput, latency percentiles
/// and errors by kind. One keep-alive connection per worker.
enum LoadGen {
    struct Options: Sendable {
        var host = "127.0.0.1"
        var port: UInt16 = 8080
        /// Requests per second in all, or nil for as fast as the workers go.
        var rate: Double?
        var duration = 10.0
        var workers = 8
        var dataDir = "/tmp/ocss-bench-data"
        var token = ""
        /// `orders` (POST /v1/orders), `ack` (POST the same bodies to `path`), or `poll` (GET `path`).
        var mode = "orders"
        var path = "/v1/orders"
        init() {}
    }

    struct Report: Sendable {
        var sent = 0
        var ok = 0
        var errors: [String: Int] = [:]
        var latenciesUS: [Double] = []
        var seconds = 0.0

        func percentile(_ p: Double) -> Double {
            guard !latenciesUS.isEmpty else { return 0 }
            return latenciesUS[min(latenciesUS.count - 1, Int(Double(latenciesUS.count) * p))]
        }

        var line: String {
            func f(_ x: Double) -> String { String(Int(x.rounded())) }
            let errs = errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            return "rps=\(f(Double(ok) / max(seconds, 1e-9))) sent=\(sent) ok=\(ok) p50_us=\(f(percentile(0.5))) p90_us=\(f(percentile(0.9))) "
                + "p99_us=\(f(percentile(0.99))) p999_us=\(f(percentile(0.999))) errors=\(errs.isEmpty ? "none" : errs)"
        }
    }

    /// Canonical order bodies from orders.csv, with idempotency keys unique to `run`.
    static func orderBodies(dataDir: String, run: String, limit: Int = 100_000) -> [String] {
        guard let text = readFile(dataDir + "/orders.csv") else { return [] }
        var out: [String] = []
        for line in text.split(separator: "\n").dropFirst().prefix(limit) {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 6, let n = Int(f[3]) else { continue }
            var lines: [String] = []
            for j in 0..<n where 5 + 2 * j < f.count { lines.append(#"{"sku":"\#(f[4 + 2 * j])","quantity":\#(f[5 + 2 * j])}"#) }
            out.append(
                #"{"platform":"direct","event":"order.paid","platform_order_id":"\#(run)-\#(f[0])","idempotency_key":"direct:\#(run)-\#(f[0]):paid","#
                    + #""shipping":{"coordinates":{"lat":\#(f[1]),"lon":\#(f[2]),"crs":"WGS84"}},"lines":[\#(lines.joined(separator: ","))]}"#)
        }
        return out
    }

    static func run(_ o: Options) -> Report {
        let run = String(Int(SystemClock().now() * 1000) % 100_000_000)
        let bodies = o.mode == "poll" ? [] : orderBodies(dataDir: o.dataDir, run: run)
        let next = Atomic<Int>(0)
        let results = Mutex<[Report]>([])
        let start = monotonicSeconds()
        let end = start + o.duration
        let interval = o.rate.map { Double(o.workers) / $0 }
        // One thread per worker: concurrentPerform would run only as many at once as there are cores.
        let finished = DispatchGroup()
        for w in 0..<o.workers {
            finished.enter()
            let t = Thread {
                defer { finished.leave() }
                worker(w)
            }
            t.stackSize = 1 << 20
            t.start()
        }
        finished.wait()
        @Sendable func worker(_ w: Int) {
            var r = Report()
            r.latenciesUS.reserveCapacity(200_000)
            var conn = KeepAlive(host: o.host, port: o.port)
            var due = start + (interval ?? 0) * Double(w) / Double(o.workers)
            while true {
                let now = monotonicSeconds()
                if now >= end { break }
                if let interval {
                    if now < due { usleep(useconds_t(min(1e6, (due - now) * 1e6))) }
                    due += interval
                }
                let request: String
                if o.mode == "poll" {
                    request = "GET \(o.path) HTTP/1.1\r\nHost: \(o.host)\r\nAuthorization: Bearer \(o.token)\r\n\r\n"
                } else {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    guard i < bodies.count else { break }
                    let b = bodies[i]
                    request =
                        "POST \(o.path) HTTP/1.1\r\nHost: \(o.host)\r\nAuthorization: Bearer \(o.token)\r\nContent-Type: application/json\r\nContent-Length: \(b.utf8.count)\r\n\r\n"
                        + b
                }
                let t0 = monotonicSeconds()
                r.sent += 1
                switch conn.exchange(request) {
                case .success(let status) where (200..<300).contains(status):
                    r.ok += 1
                    r.latenciesUS.append((monotonicSeconds() - t0) * 1e6)
                case .success(let status): r.errors["http_\(status)", default: 0] += 1
                case .failure(let kind): r.errors[kind.rawValue, default: 0] += 1
                }
            }
            results.withLock { $0.append(r) }
        }
        var total = Report()
        for r in results.withLock({ $0 }) {
            total.sent += r.sent
            total.ok += r.ok
            total.latenciesUS += r.latenciesUS
            for (k, v) in r.errors { total.errors[k, default: 0] += v }
        }
        total.latenciesUS.sort()
        total.seconds = min(o.duration, monotonicSeconds() - start)
        return total
    }
}

enum TransportFailure: String, Error { case connect, send, receive, parse }

/// One keep-alive HTTP/1.1 connection that reconnects when the server closes it.
struct KeepAlive {
    let host: String
    let port: UInt16
    var fd: Int32 = -1
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    /// How long one receive may wait.
    let timeoutSeconds: Int

    init(host: String, port: UInt16, timeoutSeconds: Int = 10) {
        self.host = host
        self.port = port
        self.timeoutSeconds = timeoutSeconds
    }

    mutating func connectIfNeeded() -> Bool {
        if fd >= 0 { return true }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr(host)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            close(fd)
            fd = -1
            return false
        }
        return true
    }

    mutating func reset() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    /// Sends one request and reads its whole answer; the status code.
    mutating func exchange(_ request: String) -> Result<Int, TransportFailure> {
        exchangeWithBody(request).map(\.0)
    }

    /// Sends one request; the status code and body.
    mutating func exchangeWithBody(_ request: String) -> Result<(Int, [UInt8]), TransportFailure> {
        for attempt in 0..<2 {
            guard connectIfNeeded() else { return .failure(.connect) }
            let bytes = Array(request.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                off += n
            }
            if off < bytes.count {
                reset()
                if attempt == 0 { continue }
                return .failure(.send)
            }
            switch readResponse() {
            case .success(let (status, close, body)):
                if close { reset() }
                return .success((status, body))
            case .failure(let e):
                reset()
                // A keep-alive connection the server closed while idle: retry once on a new one.
                if attempt == 0 && e == .receive { continue }
                return .failure(e)
            }
        }
        return .failure(.receive)
    }

    mutating func readResponse() -> Result<(Int, Bool, [UInt8]), TransportFailure> {
        var data: [UInt8] = []
        var headerEnd = -1
        while headerEnd < 0 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return .failure(.receive) }
            data.append(contentsOf: buffer[0..<n])
            if data.count >= 4 {
                for i in max(0, data.count - n - 3)..<(data.count - 3)
                where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 {
                    headerEnd = i + 4
                    break
                }
            }
        }
        let head = String(decoding: data[0..<headerEnd], as: UTF8.self).lowercased()
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return .failure(.parse) }
        var length = 0
        if let r = head.range(of: "content-length:") {
            length = Int(head[r.upperBound...].prefix { $0 != "\r" }.trimmingCharacters()) ?? 0
        }
        while data.count - headerEnd < length {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return .failure(.receive) }
            data.append(contentsOf: buffer[0..<n])
        }
        return .success((status, head.contains("connection: close"), Array(data[headerEnd...])))
    }
}

extension CLI {
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
}
