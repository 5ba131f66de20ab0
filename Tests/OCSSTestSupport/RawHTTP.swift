import Foundation
import Glibc

/// A deliberately small HTTP/1.1 client over a raw socket, for live-server tests: it sends bytes
/// exactly as given (duplicate headers, oversized headers, slow bodies) and reads to EOF.
public struct RawHTTP: Sendable {
    public struct Reply: Sendable {
        public var status: Int
        /// Header names lower-cased.
        public var headers: [String: String]
        public var body: String

        public init(status: Int, headers: [String: String], body: String) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    public let port: UInt16
    public init(port: UInt16) { self.port = port }

    /// Sends a request with `Connection: close` and returns the parsed answer.
    @discardableResult
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil,
        timeoutSeconds: Int = 40
    ) throws -> Reply {
        let host = headers.contains { $0.0.lowercased() == "host" } ? "" : "Host: 127.0.0.1\r\n"
        var head = "\(method) \(path) HTTP/1.1\r\n\(host)Connection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body, !headers.contains(where: { $0.0.lowercased() == "content-length" }) { head += "Content-Length: \(body.utf8.count)\r\n" }
        head += "\r\n"
        return try raw(head + (body ?? ""), timeoutSeconds: timeoutSeconds)
    }

    /// Sends `bytes` as they are and parses what comes back.
    public func raw(_ bytes: String, timeoutSeconds: Int = 40) throws -> Reply {
        let fd = try connectSocket(timeoutSeconds: timeoutSeconds)
        defer { close(fd) }
        var data = Array(bytes.utf8)
        var off = 0
        while off < data.count {
            let n = data.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may answer and close early (413)
            off += n
        }
        // No half-close: MHD reads EOF as the client going away and drops a request still in flight.
        return try parse(readAll(fd))
    }

    public func connectSocket(timeoutSeconds: Int = 40) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw RawHTTPError(message: "connect to \(port) failed: errno \(errno)")
        }
        return fd
    }

    public func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    func parse(_ bytes: [UInt8]) throws -> Reply {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw RawHTTPError(message: "no HTTP answer (got \(bytes.count) bytes)") }
        let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = head.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw RawHTTPError(message: "bad status line") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let c = line.firstIndex(of: ":") {
                headers[line[..<c].lowercased()] = String(line[line.index(after: c)...]).trimmingCharacters(in: .whitespaces)
            }
        }
        return Reply(status: status, headers: headers, body: String(text[split.upperBound...]))
    }
}

public struct RawHTTPError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
