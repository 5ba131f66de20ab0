/// An HTTP request as the transport hands it to a `Responder`.
public struct Request: Sendable {
    public var method: String
    /// Path without the query string, percent-decoding left to the router.
    public var path: String
    /// Query arguments, decoded; the last value wins for repeated names.
    public var query: [String: String]
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// Client IP address as text ("127.0.0.1", "::1"), empty when unknown.
    public var remoteAddress: String

    public init(
        method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:],
        body: [UInt8] = [], remoteAddress: String = ""
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// Header value by case-insensitive name.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// An HTTP response.
public struct Response: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Application side of the transport. `respond` runs on a transport thread and must not block:
/// answer at once with `reply.send`, or keep `reply` and send later from any thread (long polls,
/// waits for a commit). A request is suspended, not parked on a thread, while it waits.
public protocol Responder: Sendable {
    func respond(to request: Request, reply: Reply)
}

/// Limits the transport enforces before the application sees a request.
public struct ServerLimits: Sendable {
    /// Largest request body, bytes; larger Content-Length is refused with 413 before reading.
    public var maxBodyBytes: Int = 1 << 20
    /// Memory per connection for headers and buffers, bytes (MHD answers 431 past it). MHD zeroes all of it
    /// before every request on a keep-alive connection, so it costs CPU per request: 64 KiB made polls about
    /// 15% slower than 32 KiB (Benchmarks/README.md). 32 KiB of headers is nginx's default limit too.
    public var connectionMemoryBytes: Int = 32 * 1024
    /// Idle connection timeout, seconds. libmicrohttpd restarts it on every byte, so it alone lets a client hold a
    /// connection for ever by sending a header line every few seconds.
    public var connectionTimeoutSeconds: Int = 30
    /// Seconds a request head (request line and headers) may take from the connection's start, or from the first
    /// line of a later request on a kept-alive connection; past it the connection is closed. 0: no deadline.
    public var requestHeadSeconds: Int = 10
    /// Concurrent connections one IP address may hold; 0 for no limit (behind a proxy every connection comes from
    /// the proxy's address, and the proxy limits each client).
    public var perIPConnectionLimit: Int = 256
    /// Concurrent connections in all (each store's long poll holds one).
    public var connectionLimit: Int = 4096

    public init() {}
}

/// Where and how to listen.
public struct ServerConfig: Sendable {
    /// IPv4 address to bind, default loopback only.
    public var bindAddress: String = "127.0.0.1"
    /// 0 picks a free port (see `HTTPServer.port`).
    public var port: UInt16 = 8080
    /// Transport threads (MHD's pool).
    public var threads: Int = 2
    public var limits = ServerLimits()

    public init(bindAddress: String = "127.0.0.1", port: UInt16 = 8080) {
        self.bindAddress = bindAddress
        self.port = port
    }
}

/// A transport failure.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "http server: \(message)" }
}
