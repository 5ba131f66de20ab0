import Dispatch
import Foundation
import OCSSStore
import OCSSTestSupport
import Synchronization
import Testing

/// Issue 20: several `ocss serve` processes on one PostgreSQL. One leads (the advisory lock), the others read and
/// forward writes; killing the leader, or PostgreSQL itself, loses and duplicates nothing and oversells nothing.
/// Real processes, a real PostgreSQL 15 started by the project's script.
@Suite(.serialized, .ownThreads, .disabled(if: TestDatabase.isPostgres, "starts its own PostgreSQL clusters: once is enough"))
struct ClusterTests {
    /// Three nodes on one database, and the clients that talk to them.
    final class Nodes: @unchecked Sendable {
        let pg: PostgresCluster
        let db: String
        var processes: [Process?] = []
        var ports: [UInt16] = []

        init(count: Int, pg: PostgresCluster, db: String) throws {
            self.pg = pg
            self.db = db
            for _ in 0..<count {
                let (p, port) = try CrashTests().start(db: db, extra: ["--geodata", ""])
                processes.append(p)
                ports.append(port)
            }
        }

        func http(_ i: Int) -> RawHTTP { RawHTTP(port: ports[i]) }

        func kill(_ i: Int) {
            guard let p = processes[i] else { return }
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            processes[i] = nil
        }

        /// Starts node `i` again (on a new port).
        func restart(_ i: Int) throws {
            let (p, port) = try CrashTests().start(db: db, extra: ["--geodata", ""])
            processes[i] = p
            ports[i] = port
        }

        func role(_ i: Int) -> String? {
            guard processes[i] != nil, let r = try? http(i).send("GET", "/healthz", timeoutSeconds: 5) else { return nil }
            return parse(r.body)["role"] as? String
        }

        /// The index of the node that leads, waiting up to `seconds` for one.
        func leader(within seconds: Double) -> Int? {
            let until = monotonic() + seconds
            repeat {
                if let i = processes.indices.first(where: { role($0) == "leader" }) { return i }
                usleep(50_000)
            } while monotonic() < until
            return nil
        }

        func stop() {
            for i in processes.indices { kill(i) }
        }

        func database() throws -> Connection { try Connection(postgres: db, readOnly: true) }
    }

    /// What a client got for one order: the first 2xx answer, and how many 503s and other answers came before it.
    struct Outcome: Sendable {
        var key: String
        var status = 0
        var body = ""
        var unavailable = 0
        var otherErrors: [String] = []
    }

    /// Posts `order` to node `first`, moving to the next live node on 503 or a refused connection (as a proxy with
    /// `proxy_next_upstream` would), with the same idempotency key, until a final answer or `deadline`.
    static func post(_ nodes: Nodes, first: Int, key: String, body: String, deadline: Double) -> Outcome {
        var out = Outcome(key: key)
        var attempt = 0
        while monotonic() < deadline {
            let i = (first + attempt) % nodes.ports.count
            attempt += 1
            guard nodes.processes[i] != nil else { continue }
            guard let r = try? nodes.http(i).send("POST", "/v1/orders", headers: admin + json, body: body, timeoutSeconds: 40) else {
                usleep(50_000)
                continue
            }
            if r.status == 503 {
                out.unavailable += 1
                usleep(100_000)
                continue
            }
            if r.status >= 500 { out.otherErrors.append("\(r.status) \(r.body)") }
            out.status = r.status
            out.body = r.body
            return out
        }
        return out
    }

    /// Orders over the demo stores' cities on ten SKUs whose stock runs out: some route far, some not at all.
    static func orders(_ n: Int, seed: UInt64, prefix: String) -> [(key: String, body: String)] {
        var rng = SplitMix64(seed: seed)
        let cities = [(30.27, 120.15), (31.23, 121.47), (39.91, 116.41), (22.54, 114.06), (23.13, 113.3), (30.65, 104.07)]
        return (0..<n).map { i in
            let (lat, lon) = cities[Int(rng.next() % UInt64(cities.count))]
            let lines: [(String, Int)] = (0..<Int(1 + rng.next() % 2)).map { l in
                ("L\((Int(rng.next() % 5) * 2 + l) % 10)", Int(1 + rng.next() % 3))
            }
            let body = orderBody(
                id: "\(prefix)\(i)", lat: lat + Double(rng.next() % 100) / 1000, lon: lon + Double(rng.next() % 100) / 1000, lines: lines)
            return ("direct:\(prefix)\(i):order.paid", body)
        }
    }

    /// Ten limited SKUs in every demo store (the same calls on any deployment give the same stock).
    static func stock(_ http: RawHTTP) throws {
        let stores = try #require(parse(try http.send("GET", "/v1/stores", headers: admin).body)["stores"] as? [[String: Any]])
        #expect(stores.count == 25)
        for s in stores.compactMap({ $0["id"] as? String }).sorted() {
            let rows = (0..<10).map { #"{"sku":"L\#($0)","qty":\#(20 + $0 % 5)}"# }.joined(separator: ",")
            #expect(try http.send("PUT", "/v1/stores/\(s)/inventory", headers: admin + json, body: "[" + rows + "]").status == 200)
        }
    }

    /// Nothing lost, nothing twice, nothing oversold: every acknowledged key is one order, each platform order is one
    /// order, no stock row has more reserved than on hand, and reservations add up to what the rows say.
    static func checkInvariants(_ nodes: Nodes, acked: [Outcome]) throws {
        let db = try nodes.database()
        let keys = Set(try db.query("SELECT idempotency_key FROM orders") { $0.text(0) })
        let lost = acked.filter { !keys.contains($0.key) }
        #expect(lost.isEmpty, "acknowledged but missing: \(lost.prefix(5).map(\.key))")
        #expect(
            try db.query(
                "SELECT count(*) FROM (SELECT 1 FROM orders WHERE parent_id IS NULL GROUP BY platform, platform_order_id HAVING count(*) > 1) d"
            ) { $0.int(0) } == [0])
        #expect(try db.query("SELECT count(*) FROM inventory WHERE reserved > on_hand") { $0.int(0) } == [0])
        #expect(
            try db.query(
                """
                SELECT count(*) FROM inventory i WHERE reserved <> (SELECT COALESCE(sum(quantity), 0) FROM reservations r
                  WHERE r.store_slot = i.store_slot AND r.sku_idx = i.sku_idx)
                """
            ) { $0.int(0) } == [0])
    }

    @Test func threeNodesTakeOrdersThroughAKillOfTheLeaderAndWakeLongPollsAcrossNodes() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let nodes = try Nodes(count: 3, pg: pg, db: pg.conninfo)
        defer { nodes.stop() }
        let first = try #require(nodes.leader(within: 10), "no node leads")
        #expect(nodes.processes.indices.filter { nodes.role($0) == "follower" }.count == 2)
        let follower = (first + 1) % 3
        // Set-up through a follower: forwarded to the leader.
        try Self.stock(nodes.http(follower))
        let metrics = try nodes.http(follower).send("GET", "/metrics").body
        #expect(metrics.contains("ocss_leader 0") && !metrics.contains("ocss_forwarded_total 0"))
        #expect(try nodes.http(first).send("GET", "/metrics").body.contains("ocss_leader 1"))

        // A store's long poll parked on one follower wakes when an order made through the other node is assigned.
        let token = try #require(parse(try nodes.http(follower).send("POST", "/v1/stores/HZ-001/tokens", headers: admin).body)["token"] as? String)
        let storeAuth = [("Authorization", "Bearer \(token)")]
        let other = (first + 2) % 3
        // Followers learn of new tokens when they reload their view of the stores (within a lease step or two).
        var cursor = ""
        let until = monotonic() + 10
        while monotonic() < until {
            let r = try nodes.http(other).send("GET", "/v1/stores/HZ-001/assignments?open=true", headers: storeAuth)
            if r.status == 200, let c = parse(r.body)["next_cursor"] as? String {
                cursor = c
                break
            }
            usleep(100_000)
        }
        #expect(!cursor.isEmpty, "the follower never accepted the new store token")
        let woke = Mutex<(at: Double, body: String)?>(nil)
        let parked = DispatchSemaphore(value: 0)
        let after = cursor
        let wait = Thread {
            let r = try? nodes.http(other).send("GET", "/v1/stores/HZ-001/assignments?after=\(after)&wait=20", headers: storeAuth)
            woke.withLock { $0 = (monotonic(), r?.body ?? "") }
            parked.signal()
        }
        wait.start()
        usleep(300_000)
        #expect(woke.withLock { $0 } == nil, "the poll answered before any order")
        let sent = monotonic()
        let hz = orderBody(id: "poll-1", lat: 30.2839, lon: 120.1271, lines: [("L1", 1)])
        let placed = Self.post(nodes, first: follower, key: "direct:poll-1:order.paid", body: hz, deadline: monotonic() + 30)
        #expect(placed.status == 201 && placed.body.contains(#""store_id":"HZ-001""#), "\(placed.body)")
        #expect(parked.wait(timeout: .now() + 25) == .success)
        let (wokeAt, body) = try #require(woke.withLock { $0 })
        #expect(body.contains(#""order_id""#), "\(body)")
        // From the order's sending (through one follower, forwarded, committed, NOTIFY) to the poll's answer on the other.
        let wakeDelay = wokeAt - sent
        #expect(wakeDelay > 0 && wakeDelay < 1, "the poll woke \(wakeDelay) s after the order was sent")

        // 2,000 orders, 16 at a time, round-robin over the nodes; the leader is killed a third of the way in.
        let work = Self.orders(2000, seed: 20, prefix: "c")
        let outcomes = Mutex<[Outcome]>([])
        let done = Atomic<Int>(0)
        let killedAt = Mutex<Double?>(nil)
        let loadStart = monotonic()
        let deadline = loadStart + 240
        let killer = Thread {
            while done.load(ordering: .relaxed) < 650 { usleep(5_000) }
            killedAt.withLock { $0 = monotonic() }
            nodes.kill(first)
        }
        killer.start()
        DispatchQueue.concurrentPerform(iterations: 16) { w in
            for i in stride(from: w, to: work.count, by: 16) {
                let o = Self.post(nodes, first: i % 3, key: work[i].key, body: work[i].body, deadline: deadline)
                outcomes.withLock { $0.append(o) }
                done.add(1, ordering: .relaxed)
            }
        }
        let results = outcomes.withLock { $0 }
        #expect(results.count == 2000)
        #expect(
            results.allSatisfy { $0.status == 201 },
            "not answered: \(results.filter { $0.status != 201 }.prefix(3).map { "\($0.status) \($0.body)" })")
        #expect(results.flatMap(\.otherErrors).isEmpty, "\(results.flatMap(\.otherErrors).prefix(3))")
        let unavailable = results.reduce(0) { $0 + $1.unavailable }
        let newLeader = try #require(nodes.leader(within: 10), "no node took the lead")
        #expect(newLeader != first)
        let killed = try #require(killedAt.withLock { $0 })
        // When the new leader took over: its log's "leading" line is not reachable from here, its health is.
        let routed = results.filter { $0.body.contains(#""status":"assigned""#) }.count
        #expect(routed > 500 && routed < 2000, "\(routed) of 2,000 routed: the stock was meant to run out")
        try Self.checkInvariants(nodes, acked: results)

        // Retries, to any node, get the original answers.
        for (n, o) in results.enumerated() where n % 7 == 0 {
            let body = work.first { $0.key == o.key }!.body
            let again = Self.post(nodes, first: n % 3, key: o.key, body: body, deadline: monotonic() + 30)
            #expect(again.status == 201 && again.body == o.body, "\(o.key): \(again.body) vs \(o.body)")
        }
        // The killed node comes back as a follower.
        try nodes.restart(first)
        #expect(nodes.role(first) == "follower")
        print(
            "cluster: 2,000 orders, \(routed) routed, \(unavailable) 503s retried, leader killed at \(String(format: "%.1f", killed - loadStart)) s; "
                + "long poll woke \(String(format: "%.3f", wakeDelay)) s after the order was sent")
    }

    /// The same orders one at a time, round-robin over three nodes, answer exactly as a single SQLite node answers them.
    @Test func serialAnswersEqualASingleSQLiteNodes() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let nodes = try Nodes(count: 3, pg: pg, db: pg.conninfo)
        defer { nodes.stop() }
        let dir = TempDir("ocss-single")
        defer { dir.remove() }
        let (single, port) = try CrashTests().start(db: dir.file("ocss.sqlite"), extra: ["--geodata", ""])
        defer {
            Glibc.kill(single.processIdentifier, SIGKILL)
            single.waitUntilExit()
        }
        let sqlite = RawHTTP(port: port)
        _ = try #require(nodes.leader(within: 10))
        try Self.stock(nodes.http(1))
        try Self.stock(sqlite)
        var differ: [String] = []
        for (i, o) in Self.orders(300, seed: 7, prefix: "s").enumerated() {
            let a = try nodes.http(i % 3).send("POST", "/v1/orders", headers: admin + json, body: o.body)
            let b = try sqlite.send("POST", "/v1/orders", headers: admin + json, body: o.body)
            if a.status != b.status || a.body != b.body { differ.append("\(o.key): \(a.status) \(a.body) | \(b.status) \(b.body)") }
        }
        #expect(differ.isEmpty, "\(differ.count) answers differ, first: \(differ.first ?? "")")
    }

    /// `ocss migrate` of the benchmark's 10k-store database (1.1 M stock rows): every table's count equal, and a SQLite
    /// node on the file and a PostgreSQL node on the copy answer the same 300 dataset orders byte for byte.
    @Test func theBenchmarkDatabaseMovesToPostgreSQLAndRoutesTheSame() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let dir = TempDir("ocss-migrate10k")
        defer { dir.remove() }
        var data = ProcessInfo.processInfo.environment["BENCH_DATA"] ?? "/tmp/ocss-bench-data"
        if !FileManager.default.fileExists(atPath: data + "/inventory_10k.csv") {
            data = dir.file("data")
            let gen = try runProgram("/usr/bin/python3", [Live.packageRoot + "/Benchmarks/data/gen_dataset.py", data, "--sizes", "10000"])
            #expect(gen.status == 0)
        }
        let file = dir.file("bench.sqlite")
        let bin = CrashTests.binary
        #expect(try runProgram(bin, ["import", "stores", data + "/stores_10k.csv", "--db", file]).status == 0)
        #expect(try runProgram(bin, ["import", "inventory", data + "/inventory_10k.csv", "--db", file]).status == 0)
        let copy = dir.file("copy.sqlite")
        try FileManager.default.copyItem(atPath: file, toPath: copy)
        let migrated = try runProgram(bin, ["migrate", "--from", copy, "--to", pg.conninfo])
        #expect(migrated.status == 0 && migrated.out.contains("counts equal"), "\(migrated.out)")
        #expect(migrated.out.contains("inventory") && migrated.out.contains("1128888"), "\(migrated.out)")
        let (sqliteNode, sqlitePort) = try CrashTests().start(db: file, extra: ["--geodata", ""])
        let (pgNode, pgPort) = try CrashTests().start(db: pg.conninfo, extra: ["--geodata", ""])
        defer {
            for p in [sqliteNode, pgNode] {
                Glibc.kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        let rows = try String(contentsOfFile: data + "/orders.csv", encoding: .utf8).split(separator: "\n").dropFirst().prefix(300)
        var same = 0, routed = 0
        var first: String?
        for row in rows {
            let f = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let n = Int(f[3]) ?? 0
            let lines = (0..<n).map { #"{"sku":"\#(f[4 + 2 * $0])","quantity":\#(f[5 + 2 * $0])}"# }.joined(separator: ",")
            let body =
                #"{"platform":"direct","event":"order.paid","platform_order_id":"m\#(f[0])","idempotency_key":"direct:m\#(f[0]):paid","#
                + #""shipping":{"coordinates":{"lat":\#(f[1]),"lon":\#(f[2]),"crs":"WGS84"}},"lines":[\#(lines)]}"#
            let a = try RawHTTP(port: sqlitePort).send("POST", "/v1/orders", headers: admin + json, body: body)
            let b = try RawHTTP(port: pgPort).send("POST", "/v1/orders", headers: admin + json, body: body)
            if a.status == b.status && a.body == b.body { same += 1 } else if first == nil { first = "\(a.body) | \(b.body)" }
            if a.body.contains(#""status":"assigned""#) { routed += 1 }
        }
        #expect(same == 300, "first difference: \(first ?? "")")
        #expect(routed > 200, "\(routed) of 300 routed")

        // At 10k stores, a follower leads within 10 s of a kill -9 of the leader: it takes an order by then.
        let (follower, followerPort) = try CrashTests().start(db: pg.conninfo, extra: ["--geodata", ""])
        defer {
            Glibc.kill(follower.processIdentifier, SIGKILL)
            follower.waitUntilExit()
        }
        #expect(parse(try RawHTTP(port: followerPort).send("GET", "/healthz").body)["role"] as? String == "follower")
        let killed = monotonic()
        Glibc.kill(pgNode.processIdentifier, SIGKILL)
        var tookOrder: Double?
        let order =
            #"{"platform":"direct","event":"order.paid","platform_order_id":"fo","idempotency_key":"direct:fo:paid","#
            + #""shipping":{"coordinates":{"lat":31.83,"lon":117.3,"crs":"WGS84"}},"lines":[{"sku":"3","quantity":1}]}"#
        while monotonic() - killed < 20 {
            if let r = try? RawHTTP(port: followerPort).send("POST", "/v1/orders", headers: admin + json, body: order, timeoutSeconds: 5),
                r.status == 201
            {
                tookOrder = monotonic() - killed
                break
            }
            usleep(50_000)
        }
        let failover = try #require(tookOrder, "no order taken within 20 s of the leader's kill -9")
        #expect(failover < 10)
        print("failover at 10k stores: an order taken \(String(format: "%.2f", failover)) s after the leader's kill -9")
    }

    /// PostgreSQL stopped for 5 s under load: writes answer 503 (nothing acknowledged that is not committed), nothing
    /// answers another 5xx, and the nodes take orders again by themselves when it is back.
    @Test func losingPostgreSQLForFiveSecondsAnswers503AndRecoversAlone() throws {
        let pg = try #require(PostgresCluster(), "postgresql-15 is not installed (scripts/install-deps.sh test installs it)")
        defer { pg.stop() }
        let nodes = try Nodes(count: 2, pg: pg, db: pg.conninfo)
        defer { nodes.stop() }
        _ = try #require(nodes.leader(within: 10))
        try Self.stock(nodes.http(0))
        let statuses = Mutex<[Int: Int]>([:])
        let acked = Mutex<[Outcome]>([])
        let stop = Atomic<Bool>(false)
        let work = Self.orders(100_000, seed: 9, prefix: "o")
        let next = Atomic<Int>(0)
        let clients = DispatchGroup()
        for _ in 0..<4 {
            clients.enter()
            Thread {
                while !stop.load(ordering: .relaxed) {
                    let i = next.add(1, ordering: .relaxed).newValue
                    let o = work[i]
                    let r = try? nodes.http(i % 2).send("POST", "/v1/orders", headers: admin + json, body: o.body, timeoutSeconds: 40)
                    statuses.withLock { $0[r?.status ?? 0, default: 0] += 1 }
                    if let r, r.status == 201 { acked.withLock { $0.append(Outcome(key: o.key, status: 201, body: r.body)) } }
                    if r?.status == 503 { usleep(50_000) }
                }
                clients.leave()
            }.start()
        }
        usleep(1_500_000)
        pg.halt()
        usleep(5_000_000)
        let during = statuses.withLock { $0 }
        pg.resume()
        // Back by themselves: an order is taken within 30 s of PostgreSQL's return.
        let back = monotonic()
        var recovered: Double?
        while monotonic() - back < 30 {
            if let r = try? nodes.http(0).send("POST", "/v1/orders", headers: admin + json, body: Self.orders(1, seed: 1, prefix: "r")[0].body),
                r.status == 201
            {
                recovered = monotonic() - back
                break
            }
            usleep(200_000)
        }
        usleep(1_000_000)
        stop.store(true, ordering: .relaxed)
        _ = clients.wait(timeout: .now() + 60)
        let all = statuses.withLock { $0 }
        #expect(recovered != nil, "no order taken in 30 s after PostgreSQL came back: \(all)")
        #expect(all[503, default: 0] > 0, "\(all)")
        #expect(all.keys.allSatisfy { $0 == 201 || $0 == 503 }, "answers other than 201 and 503: \(all)")
        #expect(during[201, default: 0] > 0)
        try Self.checkInvariants(nodes, acked: acked.withLock { $0 })
        print("postgresql outage: answers \(all.sorted { $0.key < $1.key }), back \(String(format: "%.1f", recovered ?? -1)) s after restart")
    }
}

private func monotonic() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
