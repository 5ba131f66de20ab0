import Dispatch
import Foundation
import OCSSCore
import OCSSEngine
import OCSSHTTP
import OCSSPostgres
import OCSSStore
import Synchronization

/// One node of several on one PostgreSQL (ARCHITECTURE.md, "More than one node"). A loop steps the leader's lease
/// (`LeaderLease`, a session advisory lock) every `leaseSeconds`: the node that holds it builds a deciding stack from
/// the tables and runs it; the others keep a reading stack, forward writes to the leader's advertised address, and
/// rebuild their stack when the stores or tokens change. A second loop listens for feed changes (`LISTEN`) and wakes
/// this node's long polls.
package final class ClusterNode: Sendable {
    package enum Role: Sendable, Equatable {
        case starting
        case leader
        case follower(leader: String?)
        case disconnected(reason: String)

        package var name: String {
            switch self {
            case .starting: "starting"
            case .leader: "leader"
            case .follower: "follower"
            case .disconnected: "disconnected"
            }
        }
    }

    let config: ServiceConfig
    let builder: StackBuilder
    let log: Logger
    private struct State {
        var role = Role.starting
        var advertise = ""
        /// The lease epoch the current deciding stack was built at; nil while the stack only reads (or is stale).
        var builtEpoch: Int64?
        /// What the stores and tokens looked like when the reading stack was built.
        var catalog = ""
        /// One more at every change of stack: a background refresh that finishes after another change is dropped.
        var generation = 0
        /// A reading stack is being rebuilt in the background (the stores or tokens changed).
        var refreshing = false
        var lease: LeaderLease?
        var listener: FeedListener?
    }
    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)
    private let loops = DispatchGroup()
    /// Writes forwarded to the leader, forwards that failed (leader unreachable), and writes refused with no leader.
    let forwarded = Atomic<Int>(0)
    let forwardFailures = Atomic<Int>(0)
    let refusedNoLeader = Atomic<Int>(0)

    init(config: ServiceConfig, builder: StackBuilder, log: Logger) {
        self.config = config
        self.builder = builder
        self.log = log
    }

    package var role: Role { state.withLock { $0.role } }
    package var advertise: String { state.withLock { $0.advertise } }
    /// Whether writes are decided here now: the lease is held and the deciding stack built on it.
    var decides: Bool { state.withLock { $0.role == .leader && $0.builtEpoch != nil } }
    /// Where writes go from here: the leader's advertised address, when another node leads.
    var leaderAddress: String? {
        state.withLock { s in
            if case .follower(let url?) = s.role, url != s.advertise { return url }
            return nil
        }
    }

    /// Takes the first step of the lease (a node alone leads when this returns), then starts the lease and listener
    /// loops. The server is up: `port` is its real port.
    func start(stacks: StackHolder, port: UInt16) {
        let advertise = config.advertise ?? "http://\(config.bind == "0.0.0.0" ? "127.0.0.1" : config.bind):\(port)"
        let lease = LeaderLease(conninfo: config.dbPath, advertise: advertise)
        let listener = FeedListener(
            conninfo: config.dbPath,
            deliver: { slot, position in stacks.ready?.engine.feed.notify(slot: slot, position: position) },
            resync: {
                // Notifications sent while the listener was away are gone: take the positions from the tables.
                guard let engine = stacks.ready?.engine else { return }
                if let newest = try? engine.readers.read({ try Repository.newestAssignments($0) }) {
                    for (slot, position) in newest { engine.feed.notify(slot: slot, position: position) }
                }
            })
        state.withLock {
            $0.advertise = advertise
            $0.lease = lease
            $0.listener = listener
        }
        step(lease: lease, stacks: stacks)
        loop("cluster-lease") { [self] in
            step(lease: lease, stacks: stacks)
            usleep(UInt32(config.leaseSeconds * 1_000_000))
        }
        loop("cluster-feed") { listener.step(timeout: 0.5) }
    }

    private func loop(_ name: String, _ body: @escaping @Sendable () -> Void) {
        loops.enter()
        let t = Thread { [self] in
            while !stopped.load(ordering: .acquiring) { body() }
            loops.leave()
        }
        t.name = name
        t.start()
    }

    /// Stops both loops: the role no longer changes.
    func stopLoops() {
        stopped.store(true, ordering: .releasing)
        _ = loops.wait(timeout: .now() + 5)
    }

    /// Gives the lease up, so that another node takes it at its next step (once this node's writes are drained).
    func resign() {
        let (lease, listener) = state.withLock { ($0.lease, $0.listener) }
        lease?.resign()
        listener?.close()
    }

    /// One step of the lease, and what a change of role makes this node do.
    private func step(lease: LeaderLease, stacks: StackHolder) {
        let role: Role =
            switch lease.step() {
            case .leader: .leader
            case .follower(let url): .follower(leader: url)
            case .disconnected(let reason): .disconnected(reason: reason)
            }
        let (before, built) = state.withLock { s in
            defer { s.role = role }
            return (s.role, s.builtEpoch)
        }
        if role.name != before.name {
            log.info("cluster role", [("role", .string(role.name)), ("was", .string(before.name)), ("leader", .string(describe(role)))])
        }
        switch role {
        case .leader:
            let epoch = lease.epoch
            if built == epoch, stacks.ready?.engine.writer.connectionLost == true {
                // The writer's session is gone while the lease's lives: give the lease up and start afresh.
                log.warn("writer connection lost: giving up the lease")
                lease.resign()
                demote(stacks)
            } else if built != epoch {
                promote(stacks, lease: lease, epoch: epoch)
            }
        case .follower, .disconnected, .starting:
            guard let current = stacks.ready, built == nil, !current.leading else { return demote(stacks) }
            if case .follower = role, let now = try? ClusterNode.catalog(current.engine.readers),
                now != state.withLock({ $0.catalog })
            {
                refreshInBackground(stacks)
            }
        }
    }

    private func promote(_ stacks: StackHolder, lease: LeaderLease, epoch: Int64) {
        let t0 = monotonicSeconds()
        do {
            let stack = try builder.leader(node: self, epoch: epoch)
            let old = state.withLock { s in
                s.builtEpoch = epoch
                s.generation += 1
                return stacks.swap(stack)
            }
            old?.stop()
            log.info(
                "leading",
                [
                    ("epoch", .int(epoch)), ("stores", .int(Int64(stack.engine.storeCount))),
                    ("load_ms", .double((monotonicSeconds() - t0) * 1000)),
                ])
        } catch {
            log.error("could not take the lead: giving the lease up", [("error", .string("\(error)"))])
            lease.resign()
        }
    }

    /// Stops deciding at once (writes are refused or forwarded from now on), then replaces the stack with a reading
    /// one when the database can be read; until then the old stack answers reads as far as it can.
    private func demote(_ stacks: StackHolder) {
        state.withLock { $0.builtEpoch = nil }
        if let current = stacks.ready, current.leading { current.workers.stop() }
        rebuildFollower(stacks)
    }

    private func rebuildFollower(_ stacks: StackHolder) {
        do {
            let stack = try builder.follower(node: self)
            let catalog = try ClusterNode.catalog(stack.engine.readers)
            let old = state.withLock { s in
                s.catalog = catalog
                s.generation += 1
                return stacks.swap(stack)
            }
            old?.stop()
        } catch {
            log.warn("cannot load the database yet", [("error", .string("\(error)"))])
        }
    }

    /// Rebuilds the reading stack off the lease loop (at 10k stores a load takes seconds, and the loop must go on
    /// stepping the lease meanwhile, to take over at once if the leader dies). The new stack replaces the current one
    /// only if nothing else replaced it meanwhile and this node still follows.
    private func refreshInBackground(_ stacks: StackHolder) {
        let generation: Int? = state.withLock { s in
            guard !s.refreshing else { return nil }
            s.refreshing = true
            return s.generation
        }
        guard let generation else { return }
        DispatchQueue.global().async { [self] in
            let built = Result { () throws -> (Stack, String) in
                let stack = try builder.follower(node: self)
                return (stack, try ClusterNode.catalog(stack.engine.readers))
            }
            let (old, unused): (Stack?, Stack?) = state.withLock { s -> (Stack?, Stack?) in
                s.refreshing = false
                guard case .success(let (stack, catalog)) = built else { return (nil, nil) }
                guard s.generation == generation, s.builtEpoch == nil, case .follower = s.role else { return (nil, stack) }
                s.catalog = catalog
                s.generation += 1
                return (stacks.swap(stack), nil)
            }
            old?.stop()
            unused?.stop()
            if case .failure(let error) = built { log.warn("cannot reload the stores", [("error", .string("\(error)"))]) }
        }
    }

    /// What a follower's stack depends on beyond the feed: stores (with their rules) and tokens. A change rebuilds it.
    static func catalog(_ readers: ReaderPool) throws -> String {
        try readers.read { db in
            try db.query(
                """
                SELECT (SELECT count(*) FROM stores), (SELECT COALESCE(max(updated_at), '') FROM stores),
                  (SELECT count(*) FROM store_tokens), (SELECT COALESCE(max(created_at), '') FROM store_tokens),
                  (SELECT COALESCE(max(version), 0) FROM policies)
                """, []
            ) { s in (0..<5).map { s.text(Int32($0)) }.joined(separator: "/") }.first ?? ""
        }
    }

    func describe(_ role: Role) -> String {
        switch role {
        case .leader: advertise
        case .follower(let url): url ?? ""
        case .starting, .disconnected: ""
        }
    }

    /// A connection string without its password, for logs.
    package static func redacted(_ conninfo: String) -> String {
        guard let scheme = conninfo.range(of: "://"), let at = conninfo.range(of: "@", range: scheme.upperBound..<conninfo.endIndex),
            let colon = conninfo.range(of: ":", range: scheme.upperBound..<at.lowerBound)
        else { return conninfo }
        return String(conninfo[..<colon.upperBound]) + "***" + String(conninfo[at.lowerBound...])
    }
}

/// A leader's check on each of its transactions: it still holds the leadership it was built at (a new leader's
/// takeover updates the row this reads, so it waits for this transaction or makes it fail), and the feed changes go
/// to every node's listener when the transaction commits.
final class ClusterCommitObserver: CommitObserver {
    let epoch: Int64
    init(epoch: Int64) { self.epoch = epoch }

    func willCommit(_ changes: WriteChanges, _ db: Connection) throws {
        let now = try db.query(LeaderLease.fenceSQL, []) { $0.int(0) }.first
        guard now == epoch else {
            throw SQLiteError(code: 10, message: "no longer the leader (led at epoch \(epoch), now \(now ?? 0))", sql: nil)
        }
        guard !changes.feed.isEmpty else { return }
        for payload in FeedRelay.payloads(changes.feed.map { ($0.slot, $0.position) }) {
            try db.notify(FeedRelay.channel, payload: payload)
        }
    }
}

/// The HTTP side of a cluster node: requests a follower can answer from the tables are answered here; writes (and
/// reads of what only the leader's memory holds) go to the leader, or are refused with 503 and `Retry-After` while no
/// leader is known, so that a proxy tries the next node.
final class ClusterResponder: Responder {
    let node: ClusterNode
    let stacks: StackHolder
    static let forwardedHeader = "x-ocss-forwarded-by"
    /// Reads a follower answers itself: they come from the tables (orders, feeds, analytics, customers), need no
    /// state (health, metrics, the API description, geocoding), or are the store app's pages, signed in by the store's
    /// token. The dashboard goes to the leader: its sign-in sessions live in the leader's memory.
    static let localReads: Set<String> = [
        "/healthz", "/metrics", "/openapi.yaml", "/v1/orders", "/v1/orders/{id}", "/v1/stores/{id}/assignments", "/v1/geocode",
        "/v1/customers", "/v1/customers/{id}", "/v1/analytics/sales", "/v1/analytics/routing", "/v1/analytics/stockouts",
        "/v1/analytics/promotions", "/v1/platforms/{platform}/orders/{platform_order_id}", "/v1/outbox", "/store", "/store/feed", "/store/print",
        "/store/app.js",
    ]
    private let forwarding = DispatchQueue(label: "ocss.forward", attributes: .concurrent)

    init(node: ClusterNode, stacks: StackHolder) {
        self.node = node
        self.stacks = stacks
    }

    func respond(to request: Request, reply: Reply) {
        guard let stack = stacks.ready else { return reply.send(noLeader("this node is starting")) }
        if node.decides && stack.leading { return stack.app.respond(to: request, reply: reply) }
        if isLocalRead(request) { return stack.app.respond(to: request, reply: reply) }
        guard request.header(ClusterResponder.forwardedHeader) == nil, let leader = node.leaderAddress else {
            node.refusedNoLeader.add(1, ordering: .relaxed)
            return reply.send(noLeader("no leader is known yet"))
        }
        let by = node.advertise
        forwarding.async { [node] in
            if let response = LeaderForwarder.forward(request, to: leader, by: by) {
                node.forwarded.add(1, ordering: .relaxed)
                reply.send(response)
            } else {
                node.forwardFailures.add(1, ordering: .relaxed)
                reply.send(self.noLeader("the leader at \(leader) did not answer"))
            }
        }
    }

    func isLocalRead(_ r: Request) -> Bool {
        guard r.method == "GET" || r.method == "HEAD" else { return false }
        let segments = r.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard case .found(let route, _) = App.routes.match("GET", segments, benchEndpoints: false) else { return false }
        return ClusterResponder.localReads.contains(route.template)
    }

    func noLeader(_ why: String) -> Response {
        var r = APIError(503, "no_leader", why + "; retry (every write is idempotent by its key)").response
        r.headers.append(("Retry-After", "1"))
        return r
    }
}

/// Forwards one request to the leader over HTTP/1.1 and gives back its answer; nil when the leader cannot be reached
/// or its answer did not arrive whole (the caller answers 503: the write may or may not have been made, and a retry
/// with the same idempotency key gets the same answer either way).
enum LeaderForwarder {
    static let hopByHop: Set<String> = ["connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade", "te"]

    static func forward(_ r: Request, to base: String, by: String) -> Response? {
        guard let (host, port) = address(base) else { return nil }
        var target = r.path.isEmpty ? "/" : r.path
        if !r.query.isEmpty {
            target +=
                "?"
                + r.query.sorted(by: { $0.key < $1.key }).map { encode($0.key) + "=" + encode($0.value) }.joined(separator: "&")
        }
        var head = "\(r.method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in r.headers where !hopByHop.contains(name) { head += "\(name): \(value)\r\n" }
        if !r.remoteAddress.isEmpty && r.headers["x-forwarded-for"] == nil { head += "X-Forwarded-For: \(r.remoteAddress)\r\n" }
        head += "\(ClusterResponder.forwardedHeader): \(by)\r\nContent-Length: \(r.body.count)\r\n\r\n"
        guard let raw = exchange(host: host, port: port, bytes: Array(head.utf8) + r.body) else { return nil }
        return parse(raw)
    }

    static func address(_ url: String) -> (String, UInt16)? {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7).prefix { $0 != "/" }
        guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]) else { return (String(rest), 80) }
        return (String(rest[..<colon]), port)
    }

    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 46 || b == 95 || b == 126 {
                out.append(Character(Unicode.Scalar(b)))
            } else {
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    /// Sends `bytes` and reads until the leader closes (every forwarded request says `Connection: close`).
    static func exchange(host: String, port: UInt16, bytes: [UInt8]) -> [UInt8]? {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else { return nil }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A forwarded write waits for the leader's commit; an order's answer comes in milliseconds, 35 s is a dead
        // leader (its connection would have been refused or reset if the process had ended).
        var tv = timeval(tv_sec: 35, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else { return nil }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return nil }
            sent += n
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { break }
            guard n > 0 else { return nil }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// An HTTP/1.1 response: status line, headers, and a body by Content-Length, chunked, or to the end.
    static func parse(_ raw: [UInt8]) -> Response? {
        guard let end = (0..<max(0, raw.count - 3)).first(where: { raw[$0] == 13 && raw[$0 + 1] == 10 && raw[$0 + 2] == 13 && raw[$0 + 3] == 10 })
        else { return nil }
        let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = lines.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        guard let status else { return nil }
        var headers: [(String, String)] = []
        var length: Int?
        var chunked = false
        for line in lines.dropFirst() {
            guard let c = line.firstIndex(of: ":") else { continue }
            let name = line[..<c].lowercased()
            let value = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding" && value.lowercased().contains("chunked") { chunked = true }
            if !hopByHop.contains(name) && name != "date" { headers.append((String(line[..<c]), value)) }
        }
        var body = Array(raw[(end + 4)...])
        if chunked {
            guard let decoded = dechunk(body) else { return nil }
            body = decoded
        } else if let length {
            guard body.count >= length else { return nil }
            body = Array(body.prefix(length))
        }
        return Response(status: status, headers: headers, body: body)
    }

    static func dechunk(_ b: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            guard let lineEnd = (i..<b.count - 1).first(where: { b[$0] == 13 && b[$0 + 1] == 10 }) else { return nil }
            let sizeText = String(decoding: b[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            if size == 0 { return out }
            let start = lineEnd + 2
            guard start + size <= b.count else { return nil }
            out.append(contentsOf: b[start..<start + size])
            i = start + size + 2
        }
        return nil
    }
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
