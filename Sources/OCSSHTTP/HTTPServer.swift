internal import CHTTP
import Glibc
import Synchronization

/// An HTTP/1.1 server on libmicrohttpd: an internal thread pool with epoll, every request
/// suspended while the application works on it, and limits checked before bodies are read.
public final class HTTPServer: Sendable {
    private let daemon: UnsafeSendable<OpaquePointer>
    private let shared: ServerShared
    /// The port actually bound (useful with port 0).
    public let port: UInt16

    public init(config: ServerConfig, responder: any Responder) throws {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = config.port.bigEndian
        guard inet_pton(AF_INET, config.bindAddress, &addr.sin_addr) == 1 else {
            throw HTTPServerError(message: "bind address '\(config.bindAddress)' is not an IPv4 address")
        }
        let shared = ServerShared(responder: responder, limits: config.limits)
        let cls = Unmanaged.passRetained(shared).toOpaque()
        let flags = UInt32(
            MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
                | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_TURBO.rawValue)
        let completed: MHD_RequestCompletedCallback = ocssRequestCompleted
        let notify: MHD_NotifyConnectionCallback = ocssConnectionNotified
        let uriLog: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) -> UnsafeMutableRawPointer? =
            ocssRequestLineReceived
        let unescape: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutablePointer<CChar>?) -> Int = ocssUnescape
        let d: OpaquePointer? = withUnsafePointer(to: &addr) { addrPtr in
            let args: [any CVarArg] = [
                Int32(MHD_OPTION.SOCK_ADDR.rawValue), Int(bitPattern: UnsafeRawPointer(addrPtr)),
                Int32(MHD_OPTION.THREAD_POOL_SIZE.rawValue), UInt32(max(1, config.threads)),
                Int32(MHD_OPTION.CONNECTION_MEMORY_LIMIT.rawValue), Int(config.limits.connectionMemoryBytes),
                Int32(MHD_OPTION.CONNECTION_TIMEOUT.rawValue), UInt32(config.limits.connectionTimeoutSeconds),
                Int32(MHD_OPTION.PER_IP_CONNECTION_LIMIT.rawValue), UInt32(config.limits.perIPConnectionLimit),
                Int32(MHD_OPTION.CONNECTION_LIMIT.rawValue), UInt32(config.limits.connectionLimit),
                Int32(MHD_OPTION.NOTIFY_COMPLETED.rawValue), Int(bitPattern: unsafeBitCast(completed, to: UnsafeRawPointer.self)),
                Int(bitPattern: cls),
                Int32(MHD_OPTION.UNESCAPE_CALLBACK.rawValue), Int(bitPattern: unsafeBitCast(unescape, to: UnsafeRawPointer.self)), Int(0),
                Int32(MHD_OPTION.NOTIFY_CONNECTION.rawValue), Int(bitPattern: unsafeBitCast(notify, to: UnsafeRawPointer.self)), Int(bitPattern: cls),
                Int32(MHD_OPTION.URI_LOG_CALLBACK.rawValue), Int(bitPattern: unsafeBitCast(uriLog, to: UnsafeRawPointer.self)), Int(bitPattern: cls),
                Int32(MHD_OPTION.END.rawValue),
            ]
            return withVaList(args) { va in
                MHD_start_daemon_va(flags, config.port, nil, nil, ocssAccessHandler, cls, va)
            }
        }
        guard let d else {
            Unmanaged<ServerShared>.fromOpaque(cls).release()
            throw HTTPServerError(message: "cannot listen on \(config.bindAddress):\(config.port) (in use, or not permitted)")
        }
        daemon = UnsafeSendable(d)
        self.shared = shared
        port = ocss_mhd_bound_port(d)
        if config.limits.requestHeadSeconds > 0 { shared.startHeadSweeper() }
    }

    /// Stops accepting (new requests on open connections get 503), answers long waits marked interruptible with 503,
    /// lets every other request in flight finish with its own answer for up to `drainSeconds` (an order waiting for
    /// its commit is answered what was stored: a 503 for an order that then committed told the platform to send it
    /// again), answers whatever is still suspended with 503, then stops the daemon.
    public func stop(drainSeconds: Double = 10) {
        guard shared.stopping.exchange(true, ordering: .acquiringAndReleasing) == false else { return }
        // Quiescing hands the listening socket back to us, and it is ours to close: left open, connections made after
        // the stop were accepted by the kernel and never answered. It is closed only once the daemon has stopped:
        // the worker threads take it out of their epoll sets on their own time, and libmicrohttpd aborts the process
        // if the descriptor is already gone when one does ("Failed to remove listen FD from epoll set").
        let listening = MHD_quiesce_daemon(daemon.value)
        // Let requests in flight finish (the 503s of long waits included), before the threads stop. A long wait that
        // registered just after a pass is caught by the next one.
        var ts = timespec(tv_sec: 0, tv_nsec: 5_000_000)
        for _ in 0..<max(1, Int(drainSeconds * 200)) where shared.live.load(ordering: .acquiring) > 0 {
            shared.failInterruptible()
            nanosleep(&ts, nil)
        }
        // libmicrohttpd aborts the process if it is stopped with a connection still suspended.
        shared.failSuspended()
        shared.stopHeadSweeper()
        MHD_stop_daemon(daemon.value)
        if listening >= 0 { close(listening) }
    }

    /// Connections closed because their request head took longer than `requestHeadSeconds`.
    public var headTimeouts: Int { shared.headTimeouts.load(ordering: .relaxed) }

    /// Requests currently suspended (waiting for the application).
    public var suspendedCount: Int { shared.suspended.withLock { $0.waiting.count } }
}

/// State shared by the daemon's threads.
final class ServerShared: Sendable {
    let responder: any Responder
    let limits: ServerLimits
    let stopping = Atomic<Bool>(false)
    /// Requests between their first access-handler call and MHD's completion callback.
    let live = Atomic<Int>(0)
    /// Suspended requests; once `closed` (stopping), none may be suspended any more: each is answered 503 at once.
    /// One lock for both, so a request is either in the set `failSuspended` answers or sees it closed.
    let suspended = Mutex<(waiting: [ObjectIdentifier: ConnectionContext], closed: Bool)>(([:], false))
    static let stoppingResponse = Response(
        status: 503, headers: [("Content-Type", "application/json")],
        body: Array(#"{"error":{"code":"shutting_down","message":"server is stopping"}}"#.utf8))

    init(responder: any Responder, limits: ServerLimits) {
        self.responder = responder
        self.limits = limits
    }

    /// Where each open connection is in its request: reading a head (since when), past it, or idle between requests.
    struct HeadClock {
        enum Phase { case head, body, idle }
        var fd: Int32
        var phase: Phase
        var since: Double
    }
    /// By connection (its pointer's address); added when libmicrohttpd accepts it, removed when it closes it, before
    /// the socket is closed, so a descriptor in here is never one reused by another connection.
    let heads = Mutex<[Int: HeadClock]>([:])
    let headTimeouts = Atomic<Int>(0)
    private let sweeper = Mutex<(thread: pthread_t?, stop: Bool)>((nil, false))

    /// Closes the connections whose head is overdue: reading one for longer than the deadline, or idle-then-dripping
    /// a request line for longer than the idle timeout and the deadline together.
    func sweepHeads(now: Double) {
        let head = Double(limits.requestHeadSeconds), idle = Double(limits.connectionTimeoutSeconds)
        heads.withLock { all in
            for (key, c) in all {
                let overdue =
                    switch c.phase {
                    case .head: now - c.since > head
                    case .idle: now - c.since > idle + head
                    case .body: false
                    }
                guard overdue else { continue }
                headTimeouts.add(1, ordering: .relaxed)
                shutdown(c.fd, Int32(SHUT_RDWR))
                all[key]?.phase = .body  // shut once; libmicrohttpd reports the close
            }
        }
    }

    func startHeadSweeper() {
        let me = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(
            &t, nil,
            { arg in
                let shared = Unmanaged<ServerShared>.fromOpaque(arg!).takeRetainedValue()
                // A sweep every 250 ms; a stop is noticed within 25 ms (a server stops in every live test).
                var ts = timespec(tv_sec: 0, tv_nsec: 25_000_000)
                var tick = 0
                while !shared.sweeper.withLock({ $0.stop }) {
                    nanosleep(&ts, nil)
                    tick += 1
                    if tick % 10 == 0 { shared.sweepHeads(now: monotonicNow()) }
                }
                return nil
            }, me)
        if rc == 0 { sweeper.withLock { $0.thread = t } } else { Unmanaged<ServerShared>.fromOpaque(me).release() }
    }

    func stopHeadSweeper() {
        guard
            let t = sweeper.withLock({ s -> pthread_t? in
                s.stop = true
                return s.thread
            })
        else { return }
        pthread_join(t, nil)
    }

    /// Answers 503 to the suspended requests that are long waits (marked interruptible).
    func failInterruptible() {
        let waits = suspended.withLock { s in s.waiting.values.filter { $0.reply.isInterruptible } }
        for c in waits { c.reply.send(Self.stoppingResponse) }
    }

    func failSuspended() {
        let all = suspended.withLock { s in
            s.closed = true
            return Array(s.waiting.values)
        }
        for c in all { c.reply.send(Self.stoppingResponse) }
    }
}

/// Per-request state, owned by MHD's `con_cls` slot from the first access-handler call until
/// the completion callback.
final class ConnectionContext: @unchecked Sendable {
    // Touched only by the MHD thread that owns the connection.
    var body: [UInt8] = []
    var dispatched = false
    var rejected = false
    /// A body without Content-Length (chunked) that outgrew the limit: what is left of it is read and dropped, up to
    /// `drainLimit` bytes, and the 413 goes out once it has ended. Answering mid-upload made libmicrohttpd close a
    /// socket the client was still writing to, and the reset discarded the answer before the client read it.
    var draining = 0
    let reply: Reply

    init(connection: OpaquePointer, shared: ServerShared) {
        reply = Reply(connection: connection, shared: shared)
        reply.context = nil
    }
}

/// The application's handle for answering one request, from any thread, exactly once.
public final class Reply: @unchecked Sendable {
    private struct State {
        var response: Response?
        var suspended = false
        var sent = false
        var interruptible = false
    }
    private let state = Mutex(State())
    private let connection: UnsafeSendable<OpaquePointer>?
    private unowned(unsafe) let shared: ServerShared?
    private let inProcess: (@Sendable (Response) -> Void)?
    weak var context: ConnectionContext?

    init(connection: OpaquePointer, shared: ServerShared) {
        self.connection = UnsafeSendable(connection)
        self.shared = shared
        inProcess = nil
    }

    /// A reply that hands the response to `handler` instead of a socket: for calling a
    /// `Responder` in-process (tests, tools).
    public init(_ handler: @escaping @Sendable (Response) -> Void) {
        connection = nil
        shared = nil
        inProcess = handler
    }

    /// Marks this request as a long wait (a long poll) that stopping the server may end with 503; a request not marked
    /// is let finish with its own answer. Marked while the server is already stopping, it is answered 503 at once.
    public func markInterruptible() {
        state.withLock { $0.interruptible = true }
        if let shared, shared.stopping.load(ordering: .acquiring) { send(ServerShared.stoppingResponse) }
    }

    var isInterruptible: Bool { state.withLock { $0.interruptible } }

    /// Answers the request. Later calls are ignored.
    public func send(_ response: Response) {
        if let inProcess {
            guard
                state.withLock({ s in
                    defer { s.sent = true }; return !s.sent
                })
            else { return }
            inProcess(response)
            return
        }
        let resume = state.withLock { s -> Bool in
            guard !s.sent else { return false }
            s.sent = true
            s.response = response
            if s.suspended {
                s.suspended = false
                return true
            }
            return false
        }
        if resume, let connection, let shared {
            if let c = context { _ = shared.suspended.withLock { $0.waiting.removeValue(forKey: ObjectIdentifier(c)) } }
            MHD_resume_connection(connection.value)
        }
    }

    /// Called by the handler after the responder returned: the ready response, or nil after
    /// suspending the connection until `send`.
    func takeOrSuspend(_ ctx: ConnectionContext) -> Response? {
        state.withLock { s -> Response? in
            if let r = s.response {
                s.response = nil
                return r
            }
            guard let connection, let shared else { return nil }
            // A request that reaches this point after `stop` began (the application parked it just before) would
            // otherwise be suspended after the 503s went out, and stay suspended until the daemon stopped.
            let closed = shared.suspended.withLock { w -> Bool in
                if w.closed { return true }
                w.waiting[ObjectIdentifier(ctx)] = ctx
                return false
            }
            if closed {
                s.sent = true
                return ServerShared.stoppingResponse
            }
            s.suspended = true
            context = ctx
            MHD_suspend_connection(connection.value)
            return nil
        }
    }

    /// The response stored by `send` after a resume.
    func takeResponse() -> Response? {
        state.withLock { s in
            defer { s.response = nil }
            return s.response
        }
    }
}

struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
