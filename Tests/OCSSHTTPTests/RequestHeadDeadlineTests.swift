import Foundation
import Glibc
import OCSSHTTP
import OCSSTestSupport
import Testing

/// Answers every request 200 with its path.
struct Echo: Responder {
    func respond(to request: Request, reply: Reply) {
        reply.send(Response(status: 200, headers: [("Content-Type", "text/plain")], body: Array(request.path.utf8)))
    }
}

@Suite(.serialized, .ownThreads) struct RequestHeadDeadlineTests {
    func server(headSeconds: Int, idleSeconds: Int = 30) throws -> HTTPServer {
        var c = ServerConfig(bindAddress: "127.0.0.1", port: 0)
        c.limits.requestHeadSeconds = headSeconds
        c.limits.connectionTimeoutSeconds = idleSeconds
        return try HTTPServer(config: c, responder: Echo())
    }

    /// Sends `line` every `every` seconds until the server closes the connection; the seconds that took, nil if it
    /// was still open after `limit`.
    func drip(_ fd: Int32, _ line: String, every: Double, limit: Double) -> Double? {
        let t0 = Date()
        while Date().timeIntervalSince(t0) < limit {
            let sent = line.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            var buf = [UInt8](repeating: 0, count: 64)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if sent <= 0 || (poll(&pfd, 1, Int32(every * 1000)) == 1 && recv(fd, &buf, buf.count, 0) <= 0) {
                return Date().timeIntervalSince(t0)
            }
        }
        return nil
    }

    /// Issue 22.C: libmicrohttpd's idle timeout restarts on every byte, so 2,000 connections sending a header line
    /// every 5 s stayed open and, from 20 addresses, filled the 4,096 slots. A head now has a deadline of its own.
    @Test func aClientDrippingHeadersIsCutOffAtTheDeadline() throws {
        let s = try server(headSeconds: 1)
        defer { s.stop() }
        let http = RawHTTP(port: s.port)
        let fd = try http.connectSocket(timeoutSeconds: 10)
        defer { close(fd) }
        let line = "GET /slow HTTP/1.1\r\nHost: x\r\n"
        #expect(line.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } > 0)
        let closedAfter = drip(fd, "X-Drip: 1\r\n", every: 0.2, limit: 6)
        #expect(closedAfter != nil && closedAfter! < 4, "still open: \(String(describing: closedAfter))")
        #expect(s.headTimeouts >= 1)
        // An ordinary request is served as before.
        #expect(try http.send("GET", "/fine").body == "/fine")
    }

    /// A request whose head arrives in time, and a kept-alive connection between requests, are not cut.
    @Test func promptRequestsOnAKeptAliveConnectionAreNotCut() throws {
        let s = try server(headSeconds: 1, idleSeconds: 5)
        defer { s.stop() }
        let fd = try RawHTTP(port: s.port).connectSocket(timeoutSeconds: 10)
        defer { close(fd) }
        for path in ["/a", "/b"] {
            let req = "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n"
            #expect(req.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } > 0)
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buf, buf.count, 0)
            #expect(n > 0 && String(decoding: buf[0..<max(0, n)], as: UTF8.self).hasSuffix(path))
            usleep(1_500_000)  // idle longer than the head deadline, shorter than the idle timeout
        }
        #expect(s.headTimeouts == 0)
    }
}
