internal import CHTTP
import Glibc
import Synchronization

// C callbacks live here, outside main.swift, so they never inherit @MainActor.

private let jsonHeader = ("Content-Type", "application/json")

func errorResponse(_ status: Int, _ code: String, _ message: String, field: String? = nil) -> Response {
    var body = #"{"error":{"code":"\#(code)","message":"\#(message)""#
    if let field { body += #","field":"\#(field)""# }
    body += "}}"
    return Response(status: status, headers: [jsonHeader], body: Array(body.utf8))
}

@discardableResult
func queue(_ r: Response, on connection: OpaquePointer) -> MHD_Result {
    let resp = r.body.withUnsafeBytes { buf in
        MHD_create_response_from_buffer(buf.count, UnsafeMutableRawPointer(mutating: buf.baseAddress), MHD_ResponseMemoryMode.RESPMEM_MUST_COPY)
    }
    guard let resp else { return MHD_Result.NO }
    for (k, v) in r.headers { MHD_add_response_header(resp, k, v) }
    let rc = MHD_queue_response(connection, UInt32(r.status), resp)
    MHD_destroy_response(resp)
    return rc
}

/// Collects header or argument pairs.
final class PairSink {
    var pairs: [(String, String)] = []
}

func ocssCollectPair(
    _ cls: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind, _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?
) -> MHD_Result {
    guard let cls, let key else { return MHD_Result.YES }
    let sink = Unmanaged<PairSink>.fromOpaque(cls).takeUnretainedValue()
    sink.pairs.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return MHD_Result.YES
}

func values(_ connection: OpaquePointer, _ kind: MHD_ValueKind) -> [(String, String)] {
    let sink = PairSink()
    let p = Unmanaged.passUnretained(sink).toOpaque()
    _ = MHD_get_connection_values(connection, kind, ocssCollectPair, p)
    return withExtendedLifetime(sink) { sink.pairs }
}

func clientAddress(_ connection: OpaquePointer) -> String {
    guard let sa = ocss_mhd_client_address(connection) else { return "" }
    var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    switch Int32(sa.pointee.sa_family) {
    case AF_INET:
        return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
            var a = sin.pointee.sin_addr
            return inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count)).map { String(cString: $0) } ?? ""
        }
    case AF_INET6:
        return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
            var a = sin.pointee.sin6_addr
            return inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)).map { String(cString: $0) } ?? ""
        }
    default: return ""
    }
}

/// How much of an oversized chunked body is read (and dropped) so that its 413 reaches the client: at least 256 MiB
/// (8 times the limit cut off a 9 MiB upload without an answer). Reading and dropping costs no memory; past it the
/// connection is closed, since an upload that long is not a client that will read an answer.
func drainLimit(_ shared: ServerShared) -> Int { max(shared.limits.maxBodyBytes * 8, 256 << 20) }

func ocssAccessHandler(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ url: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?, _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
    _ uploadSize: UnsafeMutablePointer<Int>?, _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let conCls, let uploadSize else { return MHD_Result.NO }
    let shared = Unmanaged<ServerShared>.fromOpaque(cls).takeUnretainedValue()

    // First call: headers only. Check them before any body is read.
    guard let raw = conCls.pointee else {
        markHead(shared, connection, .body)  // the head is complete
        let ctx = ConnectionContext(connection: connection, shared: shared)
        conCls.pointee = Unmanaged.passRetained(ctx).toOpaque()
        shared.live.add(1, ordering: .relaxed)
        let lengths = values(connection, MHD_ValueKind.HEADER_KIND).filter { $0.0.lowercased() == "content-length" }
        if lengths.count > 1 {
            ctx.rejected = true
            return queue(
                errorResponse(400, "duplicate_content_length", "more than one Content-Length header", field: "Content-Length"), on: connection)
        }
        if let v = lengths.first?.1 {
            guard let n = Int(v.trimmingCharacters(in: " ")), n >= 0 else {
                ctx.rejected = true
                return queue(errorResponse(400, "invalid_content_length", "Content-Length is not a number", field: "Content-Length"), on: connection)
            }
            if n > shared.limits.maxBodyBytes {
                ctx.rejected = true
                return queue(
                    errorResponse(413, "body_too_large", "request body exceeds \(shared.limits.maxBodyBytes) bytes", field: "Content-Length"),
                    on: connection)
            }
            ctx.body.reserveCapacity(n)
        }
        return MHD_Result.YES
    }
    let ctx = Unmanaged<ConnectionContext>.fromOpaque(raw).takeUnretainedValue()
    if ctx.rejected {
        uploadSize.pointee = 0
        return MHD_Result.YES
    }
    let tooLarge = { errorResponse(413, "body_too_large", "request body exceeds \(shared.limits.maxBodyBytes) bytes") }
    if ctx.draining > 0 {
        let n = uploadSize.pointee
        uploadSize.pointee = 0
        ctx.draining += n
        // The end of the body, or more of it than is worth reading: answer (past the limit, the connection closes).
        if n == 0 || ctx.draining > drainLimit(shared) {
            ctx.rejected = true
            return queue(tooLarge(), on: connection)
        }
        return MHD_Result.YES
    }
    // Called again after a resume: the answer is ready.
    if ctx.dispatched {
        guard let r = ctx.reply.takeResponse() else { return MHD_Result.YES }
        return queue(r, on: connection)
    }
    // Body chunks.
    if uploadSize.pointee > 0 {
        let n = uploadSize.pointee
        if ctx.body.count + n > shared.limits.maxBodyBytes {
            ctx.draining = ctx.body.count + n
            ctx.body = []
            uploadSize.pointee = 0
            return MHD_Result.YES
        }
        if let uploadData {
            uploadData.withMemoryRebound(to: UInt8.self, capacity: n) { ctx.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
        }
        uploadSize.pointee = 0
        return MHD_Result.YES
    }
    // Request complete: hand it to the application.
    ctx.dispatched = true
    let fullURL = url.map { String(cString: $0) } ?? "/"
    var headers: [String: String] = [:]
    for (k, v) in values(connection, MHD_ValueKind.HEADER_KIND) { headers[k.lowercased()] = v }
    var query: [String: String] = [:]
    for (k, v) in values(connection, MHD_ValueKind.GET_ARGUMENT_KIND) { query[k] = v }
    let request = Request(
        method: method.map { String(cString: $0) } ?? "GET",
        path: fullURL, query: query, headers: headers, body: ctx.body,
        remoteAddress: clientAddress(connection))
    ctx.body = []
    if shared.stopping.load(ordering: .acquiring) {
        return queue(errorResponse(503, "shutting_down", "server is stopping"), on: connection)
    }
    shared.responder.respond(to: request, reply: ctx.reply)
    if let r = ctx.reply.takeOrSuspend(ctx) { return queue(r, on: connection) }
    return MHD_Result.YES
}

/// Decodes `%HH` in the path and query values in place, except `%00`, which stays as typed. MHD's own decoder
/// turned `%00` into a NUL that ended the C string: `/v1/stores/HZ-001%00x` answered for store HZ-001, and
/// `?q=...%00<500 more characters>` passed the length check. Now such a path names no store and such a value
/// fails its own validation.
func ocssUnescape(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ s: UnsafeMutablePointer<CChar>?) -> Int {
    guard let s else { return 0 }
    func hex(_ c: CChar) -> UInt8? {
        switch UInt8(bitPattern: c) {
        case 48...57: UInt8(bitPattern: c) - 48
        case 65...70: UInt8(bitPattern: c) - 55
        case 97...102: UInt8(bitPattern: c) - 87
        default: nil
        }
    }
    var r = 0, w = 0
    while s[r] != 0 {
        // s[r + 2] is read only when s[r + 1] was a hex digit, so never past the terminator.
        if s[r] == 37, let h = hex(s[r + 1]), let l = hex(s[r + 2]), h | l != 0 {
            s[w] = CChar(bitPattern: h << 4 | l)
            r += 3
        } else {
            s[w] = s[r]
            r += 1
        }
        w += 1
    }
    s[w] = 0
    return w
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A connection opened (its head clock starts) or closed (forgotten).
func ocssConnectionNotified(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ toe: MHD_ConnectionNotificationCode
) {
    guard let cls, let connection else { return }
    let shared = Unmanaged<ServerShared>.fromOpaque(cls).takeUnretainedValue()
    let key = Int(bitPattern: UnsafeRawPointer(connection))
    if toe == MHD_ConnectionNotificationCode.CONNECTION_NOTIFY_STARTED {
        let fd = ocss_mhd_connection_fd(connection)
        guard fd >= 0 else { return }
        shared.heads.withLock { $0[key] = .init(fd: fd, phase: .head, since: monotonicNow()) }
    } else {
        _ = shared.heads.withLock { $0.removeValue(forKey: key) }
    }
}

/// The request line of a request arrived: a kept-alive connection that was idle is reading a head again. Returns the
/// request's initial context: none (the access handler makes it once the head is complete).
func ocssRequestLineReceived(_ cls: UnsafeMutableRawPointer?, _ uri: UnsafePointer<CChar>?, _ connection: OpaquePointer?) -> UnsafeMutableRawPointer?
{
    guard let cls, let connection else { return nil }
    let shared = Unmanaged<ServerShared>.fromOpaque(cls).takeUnretainedValue()
    let key = Int(bitPattern: UnsafeRawPointer(connection))
    shared.heads.withLock { all in
        if all[key]?.phase == .idle {
            all[key]?.phase = .head
            all[key]?.since = monotonicNow()
        }
    }
    return nil
}

/// Sets the head clock of `connection` to `phase`, starting now.
func markHead(_ shared: ServerShared, _ connection: OpaquePointer, _ phase: ServerShared.HeadClock.Phase) {
    let key = Int(bitPattern: UnsafeRawPointer(connection))
    shared.heads.withLock { all in
        guard all[key] != nil else { return }
        all[key]?.phase = phase
        all[key]?.since = monotonicNow()
    }
}

func ocssRequestCompleted(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ toe: MHD_RequestTerminationCode
) {
    if let cls, let connection { markHead(Unmanaged<ServerShared>.fromOpaque(cls).takeUnretainedValue(), connection, .idle) }
    guard let conCls, let raw = conCls.pointee else { return }
    Unmanaged<ConnectionContext>.fromOpaque(raw).release()
    conCls.pointee = nil
    if let cls { Unmanaged<ServerShared>.fromOpaque(cls).takeUnretainedValue().live.subtract(1, ordering: .relaxed) }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
