import Glibc
import OCSSApp
import OCSSEngine
/// `ocss health`: one `GET /healthz` against a server on this machine, for container and supervisor health checks
/// (the runtime image has no curl).
enum HealthCheck {
    /// Whether the server answered 200, and a line saying what it answered (its body, or why there was none).
    static func run(host: String, port: UInt16, timeoutSeconds: Int = 3) -> (healthy: Bool, line: String) {
        var conn = KeepAlive(host: host, port: port, timeoutSeconds: timeoutSeconds)
        defer { conn.reset() }
        switch conn.exchangeWithBody("GET /healthz HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n") {
        case .success(let (status, body)):
            let text = String(decoding: body, as: UTF8.self)
            return (status == 200, status == 200 ? text : "HTTP \(status): \(text)")
        case .failure(let e):
            return (false, "no answer from http://\(host):\(port)/healthz (\(e.rawValue) failed)")
        }
    }
}

extension CLI {
    static func health(_ o: inout Options) throws {
        let url = try o.value("--url") ?? "http://127.0.0.1:\(env("OCSS_PORT") ?? "8080")"
        try o.finish()
        let (host, port) = try hostPort(url)
        let (healthy, line) = HealthCheck.run(host: host, port: port)
        print(line)
        exit(healthy ? 0 : 1)
    }
}
