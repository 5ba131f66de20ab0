public import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSProj
public import OCSSStore
import Dispatch
import Synchronization

/// The in-memory fast path over the durable truth in SQLite: the store index, the inventory
/// ledger, id counters, idempotency keys and store tokens, all behind one lock (inventory is the
/// only hot mutable state and has one owner). Rebuilt from the database at start-up.
public final class Engine: Sendable {
    struct State: ~Copyable {
        var index: StoreIndex
        var ledger: InventoryLedger
        var nextOrderID: Int64
        var nextAssignmentID: Int64
        /// The newest committed keys -> body hash (older ones are looked up in the database).
        var committed: IdempotencyWindow
        /// Keys whose transaction is in flight -> body hash and the replies waiting for it.
        var pending: [String: (hash: String, waiters: [any ResponseSink])]
        /// Platform orders (`Engine.platformHash`) -> the id of the order each became, newest first out of memory
        /// like `committed` (it holds a subset of those orders, so it is complete whenever `committed` is); and, by
        /// `Engine.platformKey`, the idempotency key of each whose order is in flight. A second routed event for one
        /// platform order (order.created, then order.paid under another key) gets that order's answer instead of
        /// becoming a second order. The committed side keeps a 64-bit hash, not the text (16 bytes an entry instead
        /// of about 200); a hit is confirmed against the order itself.
        var platformOrders: RecentWindow<Int, Int64>
        var pendingPlatform: [String: String] = [:]
        /// Platform orders the platform cancelled before ocss received them (`platform_cancellations`): a routed
        /// event for one of them is refused, not routed.
        var cancelledPlatformOrders: Set<String> = []
        /// SHA-256 of store tokens -> store slot.
        var tokens: [String: Int32]
        /// Per-SKU trees; stale after store changes (the router then falls back), rebuilt in the background.
        var stock: StockIndex?
        var stockRebuildPending = false
        /// Orders between assigned and delivered, by id, with when the SLA timer next looks at each.
        var active: ActiveOrders
        /// Store SLAs by slot.
        var slas: [StoreSLA]
        /// Platforms whose status calls are configured (credentials saved): their events get an outbox row too.
        var platformTargets: Set<String>
        /// The routing policy in force and its version (0 = defaults, never stored); the last version handed out.
        var router: Router
        var policyVersion: Int64
        var lastPolicyVersion: Int64
        /// Assignments per store today (daily capacity).
        var capacity: CapacityBook
        /// UTC offsets of `index.timeZones`, computed for `offsetsMinute`.
        var offsets: [Int32] = []
        var offsetsMinute: Int64 = -1
        /// Multi-part snapshots in progress, by scope.
        var snapshotSessions: [String: SnapshotSession] = [:]
        /// Orders routed by an address correction (guards two admins correcting one order at once).
        var corrected: Set<Int64> = []
        /// Unroutable orders being routed again (`routeAgain`), until their commit.
        var routingAgain: Set<Int64> = []
        /// Orders cancelled while they held no stock (address review, unroutable): never corrected or routed again,
        /// even while the cancellation is still being committed.
        var cancelledInactive: Set<Int64> = []
        /// Stock or stores changed since the last pass over unroutable orders (`retryUnroutable`); `.stores` also
        /// retries orders no store was in reach of.
        var retryCause: RetryCause?
        /// Where the next pass over unroutable orders starts (an order id; passes go round the queue).
        var retryCursor: Int64 = 0
        /// When the last pass over unroutable orders ran (monotonic seconds).
        var lastRetryPass = -Double.infinity
        let scratch = WalkScratch()

        func sla(for slot: Int32?) -> StoreSLA {
            guard let slot, Int(slot) < slas.count else { return StoreSLA() }
            return slas[Int(slot)]
        }
    }

    let state: Mutex<State>
    public let writer: GroupCommitWriter
    public let readers: ReaderPool
    /// The policy from configuration, in force until one is stored.
    let configuredPolicy: RoutingPolicy
    let geodesy = EllipsoidalGeodesy()
    let crs = CRSTransform()
    let geocoder: any Geocoder
    /// Failed promotion-code redemptions per store and per phone (lockouts).
    let throttle = Mutex(RedemptionThrottle())
    let clock: any WallClock
    let metrics: Metrics
    let feed: FeedHub
    let log: Logger
    /// How many of the newest idempotency keys are answered from memory.
    let idempotencyWindow: Int
    /// False once some committed key is not in memory: new keys are then looked up in the database first.
    let windowComplete: Atomic<Bool>
    /// Keys looked up in the database for that reason (`/metrics`).
    let idempotencyLookups = Atomic<Int>(0)
    /// Moves whenever a store token is revoked: request authentication remembers tokens only within a generation.
    let tokenGeneration = Atomic<Int>(0)
    /// Routed events answered with the order their platform order already became (`/metrics`).
    let duplicatePlatformOrders = Atomic<Int>(0)
    public static let defaultIdempotencyWindow = 200_000
    private let outboxHook = Mutex<(@Sendable () -> Void)?>(nil)

    /// Called after commits that may have written outbox rows (the dispatcher sets it).
    func setOutboxWake(_ f: @escaping @Sendable () -> Void) { outboxHook.withLock { $0 = f } }
    func wakeOutbox() { outboxHook.withLock { $0 }?() }

    /// Loads everything from the database behind `writer`/`readers`.
    public init(writerConnection: Connection, readers: ReaderPool, writer: GroupCommitWriter, policy: RoutingPolicy,
                geocoder: any Geocoder = NoGeocoder(), clock: any WallClock = SystemClock(), metrics: Metrics = Metrics(),
                log: Logger = Logger(), idempotencyWindow: Int = Engine.defaultIdempotencyWindow) throws {
        let snapshot = try EngineSnapshot(db: writerConnection, fallbackPolicy: policy, now: clock.now(), window: idempotencyWindow)
        state = Mutex(snapshot.state())
        self.idempotencyWindow = idempotencyWindow
        windowComplete = Atomic(snapshot.committed.complete)
        self.writer = writer
        self.readers = readers
        configuredPolicy = policy
        self.geocoder = geocoder
        self.clock = clock
        self.metrics = metrics
        self.log = log
        let feed = FeedHub(newest: try Repository.newestAssignments(writerConnection))
        self.feed = feed
        // Every commit that changes a store's assignments wakes that store's long polls, before any request in the
        // commit is answered: a store that polls right after an answer sees what the answer said.
        writer.onCommit { changes in
            for c in changes { feed.notify(slot: c.slot, position: c.position) }
        }
    }

    // MARK: queries

    public var storeCount: Int { state.withLock { $0.index.stores.count } }

    func store(id: String) -> (slot: Int32, store: Store)? {
        state.withLock { s in s.index.slotByID[id].map { ($0, s.index.stores[Int($0)]) } }
    }

    func store(slot: Int32) -> Store? {
        state.withLock { s in Int(slot) < s.index.stores.count ? s.index.stores[Int(slot)] : nil }
    }

    var allStores: [Store] { state.withLock { $0.index.stores } }

    func slot(forTokenHash h: String) -> Int32? { state.withLock { $0.tokens[h] } }

    /// Available quantity for tests and the CLI.
    public func available(storeID: String, sku: String) -> Int32? {
        state.withLock { s in
            guard let slot = s.index.slotByID[storeID], let k = s.ledger.index(of: sku) else { return nil }
            return s.ledger.available(store: slot, sku: k)
        }
    }

    /// Every stock row of the store in `slot` as routing sees it: SKU, on hand, reserved, safety stock. Copied
    /// under the lock, named outside it.
    func stockRows(slot: Int32) -> [(sku: String, onHand: Int32, reserved: Int32, safety: Int32)] {
        let (rows, names) = state.withLock { s -> (StoreStock?, [String]) in
            (Int(slot) < s.ledger.stock.count ? s.ledger.stock[Int(slot)] : nil, s.ledger.skuNames)
        }
        guard let rows else { return [] }
        return rows.skus.indices.map { i in (names[Int(rows.skus[i])], rows.onHand[i], rows.reserved[i], rows.safety[i]) }
    }

    // MARK: admin writes (durable first, then applied to memory)

    /// Inserts or replaces a store. `done` gets whether it was new, after the commit.
    func upsertStore(_ store: Store, sla: StoreSLA = StoreSLA(), done: @escaping @Sendable (Result<Bool, any Error>) -> Void) {
        upsertStores([(store, sla)]) { r in done(r.map { $0.created == 1 }) }
    }

    /// Inserts or replaces stores: one transaction, and the routing index is rebuilt once for all of them (a store
    /// at a time costs a rebuild each, which grows with the number of stores). `done` gets how many were new.
    func upsertStores(_ items: [(store: Store, sla: StoreSLA)],
                      done: @escaping @Sendable (Result<(created: Int, updated: Int), any Error>) -> Void) {
        let now = rfc3339(clock.now())
        state.withLock { s in
            // Apply now so that concurrent upserts get distinct slots; undone below on failure.
            let before = s.index
            var all = s.index.stores
            var slots = s.index.slotByID
            var rows: [(slot: Int32, store: Store, sla: StoreSLA)] = []
            rows.reserveCapacity(items.count)
            var created = 0
            for (store, sla) in items {
                let slot: Int32
                if let known = slots[store.id] {
                    slot = known
                    all[Int(slot)] = store
                } else {
                    slot = Int32(all.count)
                    all.append(store)
                    slots[store.id] = slot
                    created += 1
                }
                rows.append((slot, store, sla))
            }
            s.index = StoreIndex(stores: all)
            s.ledger.ensureStores(s.index.stores.count)
            while s.slas.count < s.index.stores.count { s.slas.append(StoreSLA()) }
            for r in rows {
                if s.slas[Int(r.slot)] != r.sla { s.active.reschedule(slot: r.slot) }
                s.slas[Int(r.slot)] = r.sla
            }
            let work = rows
            let counts = (created: created, updated: items.count - created)
            writer.submit({ db in
                for r in work {
                    try Repository.upsertStore(db, slot: r.slot, store: r.store, rules: Engine.rulesJSON(r.store.rules), at: now)
                    try Repository.setStoreSLA(db, slot: r.slot, sla: r.sla)
                }
            }) { [self] r in
                switch r {
                case .success:
                    scheduleStockRebuild()
                    noteRoutingChange(.stores)
                    done(.success(counts))
                case .failure(let e):
                    state.withLock { $0.index = before }
                    done(.failure(e))
                }
            }
        }
    }

    /// Sets on-hand quantities for one store. Reservations are kept where they fit; where less is on hand than is
    /// reserved, the newest orders not yet picking move elsewhere (`resolveShortfalls`).
    func setInventory(slot: Int32, rows: [(String, Int32)], done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        state.withLock { s in
            var interned: [(SKUIndex, String, Int32)] = []
            for (sku, q) in rows { interned.append((s.ledger.intern(sku), sku, q)) }
            let work = interned
            writer.submit({ db in
                for (k, name, q) in work {
                    try Repository.ensureSKU(db, index: k, name: name)
                    try Repository.setOnHand(db, slot: slot, sku: k, quantity: q)
                }
            }) { [self] r in
                guard case .success = r else { return done(r) }
                do {
                    let (grew, short) = state.withLock { s -> (Bool, Set<Pair>) in
                        let before = s.ledger.storesBySKU.reduce(0) { $0 + $1.count }
                        var short = Set<Pair>()
                        for (k, _, q) in work {
                            s.ledger.setOnHand(store: slot, sku: k, quantity: q)
                            if s.ledger.isOverPromised(store: slot, sku: k) { short.insert(Pair(slot: slot, sku: k)) }
                        }
                        return (s.ledger.storesBySKU.reduce(0) { $0 + $1.count } != before, short)
                    }
                    // New (store, SKU) rows are scanned linearly until the trees include them.
                    if grew { scheduleStockRebuild() }
                    noteRoutingChange(.stock)
                    // Less on hand than is promised: move the newest orders not yet picking, as a snapshot does.
                    resolveShortfalls(short) { _ in done(r) }
                }
            }
        }
    }

    /// Saves a platform's credentials; its later customer-visible events get a platform outbox row.
    func setPlatformCredentials(_ platform: String, json: String, done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let connectedAt = Timestamps.format(Int64(clock.now()))
        writer.submit({ db in
            try Repository.setSetting(db, "platform.\(platform).credentials", json)
            try Repository.setSettingOnce(db, Engine.connectedKey(platform), connectedAt)
        }) { [self] r in
            if case .success = r, StatusCalls.platforms.contains(platform) {
                state.withLock { _ = $0.platformTargets.insert(platform) }
            }
            done(r)
        }
    }

    /// The setting that holds when a platform's credentials were first saved (`yyyy-MM-ddTHH:mm:ssZ`).
    static func connectedKey(_ platform: String) -> String { "platform.\(platform).connected_at" }

    /// Issues a store token; only its hash is stored. `done` gets the token after the commit.
    func issueToken(slot: Int32, done: @escaping @Sendable (Result<String, any Error>) -> Void) {
        let token = Crypto.token(prefix: "st_")
        let hash = Crypto.sha256Hex(Array(token.utf8))
        let now = rfc3339(clock.now())
        writer.submit({ db in try Repository.insertToken(db, hash: hash, slot: slot, at: now) }) { [self] r in
            switch r {
            case .success:
                state.withLock { $0.tokens[hash] = slot }
                done(.success(token))
            case .failure(let e): done(.failure(e))
            }
        }
    }

    /// A token's public id: the first 16 hex digits of its SHA-256 (what the database keeps), enough to tell a
    /// store's devices apart and nothing to sign in with.
    static func tokenID(hash: String) -> String { String(hash.prefix(16)) }

    /// Revokes a store's tokens (every one, or the one with id `tokenID`): refused from this moment, gone from the
    /// database after the commit. `done` gets how many were revoked.
    func revokeTokens(slot: Int32, tokenID: String?, done: @escaping @Sendable (Result<Int, any Error>) -> Void) {
        let hashes: [String] = state.withLock { s in
            let mine = s.tokens.filter { t in t.value == slot && (tokenID == nil || Engine.tokenID(hash: t.key) == tokenID) }.map(\.key)
            if !mine.isEmpty { tokenGeneration.add(1, ordering: .releasing) }
            for h in mine { s.tokens.removeValue(forKey: h) }
            return mine
        }
        guard !hashes.isEmpty else { return done(.success(0)) }
        writer.submit({ db in try Repository.deleteTokens(db, hashes: hashes) }) { [self] r in
            switch r {
            case .success: done(.success(hashes.count))
            case .failure(let e):
                // Still in the database, so still valid (a restart would load them): say so rather than pretend.
                state.withLock { s in for h in hashes { s.tokens[h] = slot } }
                done(.failure(e))
            }
        }
    }

    /// Rebuilds the per-SKU trees off the lock from a snapshot and swaps them in if the store index
    /// is still the one they were built for. Coalesces bursts of changes into one rebuild.
    func scheduleStockRebuild() {
        let start = state.withLock { s -> Bool in
            if s.stockRebuildPending { return false }
            s.stockRebuildPending = true
            return true
        }
        guard start else { return }
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + 0.2) { [self] in
            let (index, ledger) = state.withLock { s in
                s.stockRebuildPending = false
                return (s.index, s.ledger)
            }
            let t0 = monotonicSeconds()
            let built = StockIndex(index: index, ledger: ledger)
            let swapped = state.withLock { s -> Bool in
                guard s.index.identity == index.identity else { return false }
                s.stock = built
                return true
            }
            log.info("stock index rebuilt", [("stores", .int(Int64(index.stores.count))), ("points", .int(Int64(built.pointCount))),
                                             ("ms", .double((monotonicSeconds() - t0) * 1000)), ("swapped", .bool(swapped))])
            if !swapped { scheduleStockRebuild() }
        }
    }

    // MARK: orders

    /// Routes, reserves and durably records one canonical order, then answers `reply` (after the
    /// commit). A retried idempotency key gets the original answer; a different body under the same
    /// key gets 409.
    /// `checkPlatform` false: the committed platform-order window matched another platform order's hash; skip it.
    /// `fromPlatform`: the order came by a platform's webhook. Such an order is always recorded, even outside every
    /// service area (unroutable, `outside_service_area`): the buyer has paid, and a refusal would leave the order only on
    /// the platform, which retries and then disables the webhook. The merchant's own API may still be refused at intake.
    func submit(order: CanonicalOrder, reply: any ResponseSink, checkPlatform: Bool = true, fromPlatform: Bool = false) {
        let canonical = CanonicalJSON.encode(order)
        let hash = Crypto.sha256Hex(canonical)
        let payload = String(decoding: canonical, as: UTF8.self)
        let key = order.idempotency_key

        // Where the customer is (outside the lock: PROJ and the geocoder are slower than routing).
        var point: GeoPoint?
        var datumNote: String?
        var reviewNote: String?
        var names: GeoNames?
        if let c = order.shipping.coordinates {
            do {
                point = try crs.toWGS84(lat: c.lat, lon: c.lon, crs: c.crs)
                datumNote = c.crs.uppercased() == "WGS84" ? "WGS84" : "\(c.crs) -> WGS84"
            } catch {
                reply.send(APIError.invalid("shipping.coordinates", error.description).response)
                return
            }
            if let text = Engine.addressText(order.shipping), let m = geocoder.geocode(text) {
                names = m.names
                if let p = point, let warning = addressDisagreement(point: p, match: m) { datumNote! += "; warning: " + warning }
            }
        } else if let text = Engine.addressText(order.shipping) {
            switch geocode(text) {
            case .success(let (m, note)):
                point = m.point
                datumNote = note
                names = m.names
            case .failure(let why):
                reviewNote = why.message
                names = why.match?.names
            }
        }
        let now = clock.now()
        let at = rfc3339(now)
        let facts = Engine.facts(of: order, names: names, at: at)

        // A key older than the in-memory window is only in the database: look there before treating it as new.
        // The same goes for a platform order that already became an order under another key.
        let platformKey = Engine.platformKey(order)
        let platformHash = Engine.platformHash(order.platform, order.platform_order_id)
        let lookedUp = !windowComplete.load(ordering: .relaxed)
        if lookedUp {
            idempotencyLookups.add(1, ordering: .relaxed)
            do {
                let (stored, holder) = try readers.read { db in
                    (try Repository.bodyHash(db, idempotencyKey: key),
                     try Repository.order(db, platform: order.platform, platformOrderID: order.platform_order_id))
                }
                if let stored {
                    if stored == hash { replay(key: key, reply: reply) } else { reply.send(conflict(key)) }
                    return
                }
                if let holder { return duplicate(order, of: holder, reply: reply, fromPlatform: fromPlatform) }
            } catch {
                reply.send(APIError.storageUnavailable().response)
                return
            }
        }

        enum Outcome { case reply(Response); case replay; case wait; case lookUp; case duplicateOf(Int64) }
        let outcome: Outcome = state.withLock { s -> Outcome in
            if let h = s.committed[key] {
                return h == IdempotencyWindow.digest(hex: hash) ? .replay : .reply(conflict(key))
            }
            if let p = s.pending[key] {
                guard p.hash == hash else { return .reply(conflict(key)) }
                s.pending[key]!.waiters.append(reply)
                return .wait
            }
            // The window became incomplete since the check above: the key may be an evicted one.
            if !s.committed.complete && !lookedUp { return .lookUp }
            if s.cancelledPlatformOrders.contains(platformKey) {
                return .reply(APIError(409, "platform_order_cancelled", "the platform cancelled this order before ocss received it; nothing was routed",
                                       field: "platform_order_id").response)
            }
            if let holder = s.pendingPlatform[platformKey], holder != key, s.pending[holder] != nil {
                duplicatePlatformOrders.add(1, ordering: .relaxed)
                s.pending[holder]!.waiters.append(reply)
                return .wait
            }
            if checkPlatform, let holder = s.platformOrders[platformHash] { return .duplicateOf(holder) }
            // Out of every service area: refused now, not discovered later (nothing stored, no id used); a platform's
            // order is recorded as unroutable instead.
            var outOfArea = false
            if let point, s.router.policy.refuseOutOfArea, !s.index.stores.isEmpty,
               !s.router.serves(point, index: s.index, scratch: s.scratch) {
                outOfArea = true
            }
            if outOfArea && !fromPlatform {
                let field = order.shipping.coordinates != nil ? "shipping.coordinates" : "shipping.text"
                return .reply(APIError(422, "outside_service_area",
                                       "no store or warehouse delivers to this location (service radius, area and reach of every location)",
                                       field: field).response)
            }
            let orderID = s.nextOrderID
            s.nextOrderID += 1
            var status: OrderStatus = .address_review
            var decision: RoutingDecision?
            let (demands, unmapped) = Engine.demands(of: order.lines, ledger: s.ledger)
            var assignmentID: Int64?
            var distance: Double?
            var slot: Int32?
            var partDemands = demands
            var children: [NewOrder] = []
            var childActive: [ActiveOrderRow] = []
            var childReserved: [(Int32, [Demand])] = []
            let policyVersion = s.policyVersion
            if let point {
                let t0 = monotonicSeconds()
                if let unmapped {
                    status = .unroutable
                    decision = .unroutable(reason: unmapped, reachMetres: s.router.policy.reachMetres)
                } else if outOfArea {
                    status = .unroutable
                    decision = .unroutable(reason: "outside_service_area", reachMetres: s.router.policy.reachMetres)
                } else {
                    let ctx = context(&s, point: point, now: now)
                    var d = s.router.plan(at: point, lines: demands, index: s.index, ledger: s.ledger, stock: s.stock, context: ctx,
                                          scratch: s.scratch)
                    // Each part: (slot, line indexes). A single location ships every line.
                    let parts: [(Int32, [Int])] = d.fallback == .split ? d.parts.map { ($0.slot, $0.lineIndexes) }
                        : d.storeSlot.map { [($0, Array(demands.indices))] } ?? []
                    var taken: [(Int32, [Demand])] = []
                    for (partSlot, idx) in parts {
                        let want = idx.map { demands[$0] }
                        do {
                            try s.ledger.reserve(store: partSlot, lines: want)
                            taken.append((partSlot, want))
                        } catch {
                            // canFill said yes under the same lock; route nowhere rather than oversell.
                            for (ts, td) in taken { s.ledger.release(store: ts, lines: td) }
                            taken = []
                            d.reservationFailed()
                            break
                        }
                    }
                    decision = d
                    if let (firstSlot, firstDemands) = taken.first {
                        status = .assigned
                        slot = firstSlot
                        partDemands = firstDemands
                        distance = geodesy.distance(from: point, to: s.index.stores[Int(firstSlot)].location)
                        assignmentID = s.nextAssignmentID
                        s.nextAssignmentID += 1
                        countAssignment(&s, slot: firstSlot, now: now)
                        for (n, (partSlot, want)) in taken.enumerated().dropFirst() {
                            let part = makePart(of: order, parentID: orderID, number: n, lineIndexes: parts[n].1, slot: partSlot, demands: want,
                                                point: point, hash: hash, at: at, now: now, policyVersion: policyVersion, s: &s)
                            children.append(part.record)
                            childActive.append(part.active)
                            childReserved.append((partSlot, want))
                        }
                    } else {
                        status = .unroutable
                    }
                }
                metrics.routing(seconds: monotonicSeconds() - t0)
            }
            let store = slot.map { s.index.stores[Int($0)] }
            var explanationJSON = explain(decision: decision, datum: datumNote, store: store, distance: distance, status: status,
                                          policyVersion: policyVersion, traceLimit: s.router.policy.traceLimit, review: reviewNote)
            if !children.isEmpty {
                explanationJSON = explanationJSON.adding("parts", .array(
                    [JSON.object([("order_id", .int(orderID)), ("store_id", .str(store?.id)), ("assignment_id", .int(assignmentID ?? 0))])]
                    + children.map { c in .object([("order_id", .int(c.id)), ("store_id", .str(c.storeSlot.map { s.index.stores[Int($0)].id })),
                                                   ("assignment_id", .int(c.assignmentID ?? 0))]) }))
            }
            let explanation = explanationJSON.text
            let response = JSON.object([
                ("order_id", .int(orderID)),
                ("status", .string(status.rawValue)),
                ("assignment", assignmentID.map { aid in
                    .object([("assignment_id", .int(aid)), ("store_id", .str(store?.id)), ("store_name", .str(store?.name)),
                             ("distance_m", .num(distance))])
                } ?? .null),
                ("explanation", .raw(explanation)),
            ]).text
            var events = [NewEvent(at: at, actor: "platform:\(order.platform)", type: "received", from: nil, to: "received", reason: nil)]
            events.append(NewEvent(at: at, actor: "router", type: status == .address_review ? "address_review" : "routed",
                                   from: "received", to: status.rawValue,
                                   reason: decision.map { d in d.storeID ?? d.unroutableReason ?? "" } ?? reviewNote ?? "no coordinates and no address"))
            var record = NewOrder(
                id: orderID, idempotencyKey: key, bodyHash: hash, platform: order.platform, platformOrderID: order.platform_order_id,
                status: status, storeSlot: slot, distanceMetres: distance, payload: payload, explanation: explanation,
                response: response, createdAt: at, lines: order.lines, reservations: slot == nil ? [] : partDemands,
                assignmentID: assignmentID, events: events)
            record.policyVersion = decision == nil ? nil : policyVersion
            record.facts = facts
            record.customerPoint = point
            record.statusAt = now
            for i in children.indices {
                children[i].customerPoint = point
                children[i].statusAt = now
                children[i].parentID = orderID
            }
            s.pending[key] = (hash, [reply])
            s.pendingPlatform[platformKey] = key
            if status == .assigned {
                s.active[orderID] = ActiveOrderRow(
                    id: orderID, status: .assigned, storeSlot: slot, assignmentID: assignmentID, point: point, statusAt: now,
                    platform: order.platform, platformOrderID: order.platform_order_id, reserved: partDemands, distanceMetres: distance)
            }
            for c in childActive { s.active[c.id] = c }
            let parts = children
            let partReservations = childReserved
            let reserved = partDemands
            let chosenSlot = slot
            let outcomeLabel = status.rawValue
            writer.submit({ db in
                try Repository.insertOrder(db, record)
                for part in parts { try Repository.insertOrder(db, part) }
            }) { [self] result in
                let waiters: [any ResponseSink] = state.withLock { s in
                    let w = s.pending.removeValue(forKey: key)?.waiters ?? []
                    s.pendingPlatform.removeValue(forKey: platformKey)
                    switch result {
                    case .success:
                        remember(key, hash: hash, in: &s)
                        s.platformOrders.insert(platformHash, value: orderID)
                        for part in parts { remember(part.idempotencyKey, hash: part.bodyHash, in: &s) }
                    case .failure:
                        if let chosenSlot { s.ledger.release(store: chosenSlot, lines: reserved) }
                        s.active.removeValue(forKey: orderID)
                        for (ps, pd) in partReservations { s.ledger.release(store: ps, lines: pd) }
                        for part in parts { s.active.removeValue(forKey: part.id) }
                    }
                    return w
                }
                switch result {
                case .success:
                    metrics.order(outcome: outcomeLabel)
                    let r = Response(status: 201, headers: [("Content-Type", "application/json"), ("Location", "/v1/orders/\(orderID)")],
                                     body: Array(response.utf8))
                    // The first request made the order; the same key sent again meanwhile is a replay, and says so.
                    var replay = r
                    replay.headers.append(("Idempotent-Replay", "true"))
                    for (i, w) in waiters.enumerated() { w.send(i == 0 ? r : replay) }
                case .failure(let e):
                    log.error("order commit failed", [("order_id", .int(orderID)), ("error", .string("\(e)"))])
                    let r = APIError(503, "storage_unavailable", "the order could not be stored; retry with the same idempotency key").response
                    for w in waiters { w.send(r) }
                }
            }
            return .wait
        }
        switch outcome {
        case .reply(let r): reply.send(r)
        case .wait: break
        case .replay: replay(key: key, reply: reply)
        case .lookUp: submit(order: order, reply: reply, checkPlatform: checkPlatform, fromPlatform: fromPlatform)
        case .duplicateOf(let holder): duplicate(order, of: holder, reply: reply, fromPlatform: fromPlatform)
        }
    }

    /// Which platform order an order event is about (the platform's own id, whatever the event's idempotency key).
    static func platformKey(_ order: CanonicalOrder) -> String { platformKey(order.platform, order.platform_order_id) }
    static func platformKey(_ platform: String, _ id: String) -> String { platform + "\u{0}" + id }
    /// The same, hashed for the committed window (this process's seeded hash: the window is rebuilt at start-up).
    static func platformHash(_ platform: String, _ id: String) -> Int {
        var h = Hasher()
        h.combine(platform)
        h.combine(id)
        return h.finalize()
    }

    /// A routed event for a platform order that is already order `holder`: answered with that order, nothing stored.
    /// A hash that matched another platform order (about one in 10^14 a lookup) is routed after all.
    private func duplicate(_ order: CanonicalOrder, of holder: Int64, reply: any ResponseSink, fromPlatform: Bool) {
        let rec: OrderRecord?
        do { rec = try readers.read { try Repository.order($0, id: holder) } } catch {
            return reply.send(APIError.storageUnavailable().response)
        }
        guard let rec, rec.platform == order.platform, rec.platformOrderID == order.platform_order_id else {
            return submit(order: order, reply: reply, checkPlatform: false, fromPlatform: fromPlatform)
        }
        duplicatePlatformOrders.add(1, ordering: .relaxed)
        log.info("platform order already received: answered with its order", [
            ("platform", .string(order.platform)), ("platform_order_id", .string(order.platform_order_id)),
            ("event", .string(order.event)), ("idempotency_key", .string(order.idempotency_key)), ("order_id", .int(holder)),
        ])
        reply.send(Engine.replayed(rec))
    }

    /// Records a committed idempotency key; once the window has let one go, new keys are looked up in the
    /// database first.
    func remember(_ key: String, hash: String, in s: inout State) {
        s.committed.insert(key, hash: hash)
        if !s.committed.complete { windowComplete.store(false, ordering: .relaxed) }
    }

    /// Answers a retried idempotency key with the stored original answer.
    private func replay(key: String, reply: any ResponseSink) {
        do {
            let rec = try readers.read { try Repository.order($0, idempotencyKey: key) }
            if let rec {
                reply.send(Engine.replayed(rec))
            } else {
                reply.send(APIError.storageUnavailable().response)
            }
        } catch {
            reply.send(APIError.storageUnavailable().response)
        }
    }

    /// An order's original answer, sent again (a retried key, or another event of the same platform order).
    static func replayed(_ rec: OrderRecord) -> Response {
        Response(status: 201, headers: [("Content-Type", "application/json"), ("Location", "/v1/orders/\(rec.id)"), ("Idempotent-Replay", "true")],
                 body: Array(rec.response.utf8))
    }

    private func conflict(_ key: String) -> Response {
        APIError(409, "idempotency_conflict", "idempotency_key was already used with a different body", field: "idempotency_key").response
    }

    func explain(decision: RoutingDecision?, datum: String?, store: Store?, distance: Double?, status: OrderStatus,
                 policyVersion: Int64, traceLimit: Int, review: String? = nil) -> JSON {
        guard let d = decision else {
            return .object([("summary", .string("no coordinates and the address could not be geocoded: waiting for address review")),
                            ("geocode", .str(review))])
        }
        var summary = d.summary
        if let store, let distance, d.fallback != .split {
            let nearer = d.skipped.count
            let how = d.fallback == .warehouse ? "no store in reach can fill every line; regional warehouse"
                : d.ranked.isEmpty ? "nearest eligible store with every line in stock" : "best ranked eligible store"
            summary = "\(how): \(store.id) at \(Int(distance.rounded())) m (\(d.path.rawValue)"
                + (nearer > 0 ? "; \(nearer)\(nearer >= traceLimit ? "+" : "") nearer store(s) skipped)" : ")")
            if let m = d.opensInMinutes { summary += "; closed now, opens in \(m) min" }
        }
        var o: [(String, JSON)] = [
            ("summary", .string(summary)),
            ("path", .string(d.path.rawValue)),
            ("policy_version", .int(policyVersion)),
            ("reach_m", .double(d.reachMetres)),
            ("examined", .int(Int64(d.examined))),
            ("coordinates", .str(datum)),
            ("unroutable_reason", .str(d.unroutableReason)),
            ("fallback", .str(d.fallback?.rawValue)),
        ]
        if let m = d.opensInMinutes { o.append(("opens_in_min", .int(Int64(m)))) }
        if !d.parts.isEmpty {
            o.append(("split", .array(d.parts.map { p in
                .object([("store_id", .string(p.storeID)), ("distance_m", .double(p.distanceMetres)),
                         ("line_indexes", .array(p.lineIndexes.map { .int(Int64($0)) }))])
            })))
        }
        if !d.ranked.isEmpty {
            o.append(("ranked", .array(d.ranked.map { c in
                .object([("store_id", .string(c.storeID)), ("distance_m", .double(c.distanceMetres)), ("score", .double(c.score))])
            })))
        }
        o.append(("skipped", .array(d.skipped.map { c in
            var o: [(String, JSON)] = [("store_id", .string(c.storeID)), ("distance_m", .double(c.distanceMetres)),
                                       ("reason", .string(c.skipped?.code ?? ""))]
            if case .outOfStock(let missing) = c.skipped { o.append(("missing_skus", .array(missing.map { .string($0) }))) }
            if case .capacityFull(let used, let cap) = c.skipped { o.append(("capacity", .object([("used", .int(Int64(used))), ("daily", .int(Int64(cap)))]))) }
            return .object(o)
        })))
        return .object(o)
    }

    /// Part `number` of a split order: its own order (lines `lineIndexes`, parent `parentID`),
    /// reservation (already made) and assignment, with the active row to track it.
    func makePart(of order: CanonicalOrder, parentID: Int64, number: Int, lineIndexes: [Int], slot: Int32, demands: [Demand],
                  point: GeoPoint, hash: String, at: String, now: Double, policyVersion: Int64, s: inout State)
        -> (record: NewOrder, active: ActiveOrderRow) {
        let id = s.nextOrderID
        s.nextOrderID += 1
        let aid = s.nextAssignmentID
        s.nextAssignmentID += 1
        countAssignment(&s, slot: slot, now: now)
        var child = order
        child.lines = lineIndexes.map { order.lines[$0] }
        child.idempotency_key = order.idempotency_key + "#part-\(number)"
        let store = s.index.stores[Int(slot)]
        let distance = geodesy.distance(from: point, to: store.location)
        let explanation = JSON.object([
            ("summary", .string("part \(number + 1) of a split shipment of order \(parentID): no single location in reach holds every line; \(store.id) at \(Int(distance.rounded())) m ships \(child.lines.compactMap(\.sku).joined(separator: ","))")),
            ("policy_version", .int(policyVersion)), ("fallback", .string("split")), ("parent_id", .int(parentID)),
        ]).text
        let response = JSON.object([
            ("order_id", .int(id)), ("status", .string("assigned")), ("parent_id", .int(parentID)),
            ("assignment", .object([("assignment_id", .int(aid)), ("store_id", .string(store.id)), ("store_name", .string(store.name)),
                                    ("distance_m", .double(distance))])),
            ("explanation", .raw(explanation)),
        ]).text
        let payload = CanonicalJSON.encode(child)
        var record = NewOrder(
            id: id, idempotencyKey: child.idempotency_key, bodyHash: Crypto.sha256Hex(payload), platform: order.platform,
            platformOrderID: order.platform_order_id, status: .assigned, storeSlot: slot, distanceMetres: distance,
            payload: String(decoding: payload, as: UTF8.self), explanation: explanation, response: response, createdAt: at,
            lines: child.lines, reservations: demands, assignmentID: aid,
            events: [NewEvent(at: at, actor: "router", type: "split", from: nil, to: "received", reason: "part \(number + 1) of order \(parentID)"),
                     NewEvent(at: at, actor: "router", type: "routed", from: "received", to: "assigned", reason: store.id)])
        record.policyVersion = policyVersion
        let active = ActiveOrderRow(id: id, status: .assigned, storeSlot: slot, assignmentID: aid, point: point, statusAt: now,
                                    platform: order.platform, platformOrderID: order.platform_order_id, reserved: demands,
                                    distanceMetres: distance)
        return (record, active)
    }

    /// Route without reserving or writing (the `ocss route` CLI). The distance is the WGS84 geodesic.
    public func dryRoute(at point: GeoPoint, lines: [(String, Int32)]) -> (RoutingDecision, Double?, JSON) {
        let now = clock.now()
        return state.withLock { s in
            let version = s.policyVersion, limit = s.router.policy.traceLimit
            var demands: [Demand] = []
            for (sku, q) in lines {
                guard let k = s.ledger.index(of: sku) else {
                    let d = RoutingDecision.unroutable(reason: "sku_not_stocked:\(sku)", reachMetres: s.router.policy.reachMetres)
                    return (d, nil, explain(decision: d, datum: "WGS84", store: nil, distance: nil, status: .unroutable, policyVersion: version,
                                            traceLimit: limit))
                }
                demands.append(Demand(sku: k, quantity: q))
            }
            let ctx = context(&s, point: point, now: now)
            let d = s.router.plan(at: point, lines: demands, index: s.index, ledger: s.ledger, stock: s.stock, context: ctx, scratch: s.scratch)
            let store = d.storeSlot.map { s.index.stores[Int($0)] }
            let dist = store.map { geodesy.distance(from: point, to: $0.location) }
            return (d, dist, explain(decision: d, datum: "WGS84", store: store, distance: dist, status: d.isRouted ? .assigned : .unroutable,
                                     policyVersion: version, traceLimit: limit))
        }
    }
}

/// Everything the engine keeps in memory, read from the database in one go.
struct EngineSnapshot {
    var stores: [Store]
    var ledger: InventoryLedger
    var ids: (order: Int64, assignment: Int64)
    var committed: IdempotencyWindow
    var platformOrders: RecentWindow<Int, Int64>
    var cancelledPlatformOrders: Set<String>
    var tokens: [String: Int32]
    var active: [ActiveOrderRow]
    var slas: [StoreSLA]
    var platformTargets: Set<String>
    var policy: RoutingPolicy
    var policyVersion: Int64
    var capacity: CapacityBook
    let fallbackPolicy: RoutingPolicy
    let now: Double

    /// `fallbackPolicy` is used until a policy is stored (the `--reach` flag sets its reach).
    /// `window`: how many of the newest idempotency keys to hold in memory.
    init(db: Connection, fallbackPolicy: RoutingPolicy, now: Double, window: Int = Engine.defaultIdempotencyWindow) throws {
        self.fallbackPolicy = fallbackPolicy
        self.now = now
        stores = try Repository.loadStores(db, rules: Engine.decodeRules)
        ledger = try Repository.loadLedger(db, storeCount: stores.count)
        var slots: [String: Int32] = [:]
        for (i, st) in stores.enumerated() { slots[st.id] = Int32(i) }
        if let json = try Repository.setting(db, "safety_stock"), let rules = try? App.decodeSafety(json, slot: { slots[$0] }) {
            ledger.setSafetyRules(rules)
        }
        if let p = try Repository.currentPolicy(db) {
            policy = (try? Engine.decodePolicy(p.document)) ?? fallbackPolicy
            policyVersion = p.version
        } else {
            policy = fallbackPolicy
            policyVersion = 0
        }
        capacity = try loadCapacity(db, index: StoreIndex(stores: stores), now: now)
        ids = try Repository.maxIDs(db)
        let newest = try Repository.newestIdempotencyKeys(db, limit: window, platformKey: Engine.platformHash)
        committed = IdempotencyWindow(capacity: window, complete: newest.all)
        platformOrders = RecentWindow(capacity: window, complete: newest.all)
        for k in newest.keys {
            committed.insert(k.key, hash: k.hash)
            if let p = k.platformOrder { platformOrders.insert(p, value: k.id) }
        }
        cancelledPlatformOrders = Set(try Repository.platformCancellations(db).map { Engine.platformKey($0.platform, $0.id) })
        tokens = [:]
        for t in try Repository.tokens(db) { tokens[t.hash] = t.slot }
        active = try Repository.activeOrders(db)
        slas = try Repository.storeSLAs(db)
        platformTargets = Set(try StatusCalls.platforms.filter { try Repository.setting(db, "platform.\($0).credentials") != nil })
    }

    func state() -> Engine.State {
        let index = StoreIndex(stores: stores)
        return Engine.State(index: index, ledger: ledger, nextOrderID: ids.order + 1, nextAssignmentID: ids.assignment + 1,
                            committed: committed, pending: [:], platformOrders: platformOrders, cancelledPlatformOrders: cancelledPlatformOrders,
                            tokens: tokens, stock: StockIndex(index: index, ledger: ledger),
                            active: ActiveOrders(active), slas: slas, platformTargets: platformTargets, router: Router(policy: policy),
                            policyVersion: policyVersion, lastPolicyVersion: policyVersion, capacity: capacity)
    }

    /// Replaces `s` with this snapshot, keeping in-flight idempotency waiters.
    func apply(to s: inout Engine.State) {
        var fresh = state()
        fresh.pending = s.pending
        fresh.pendingPlatform = s.pendingPlatform
        fresh.cancelledPlatformOrders.formUnion(s.cancelledPlatformOrders)
        fresh.nextOrderID = max(fresh.nextOrderID, s.nextOrderID)
        fresh.nextAssignmentID = max(fresh.nextAssignmentID, s.nextAssignmentID)
        fresh.lastPolicyVersion = max(fresh.lastPolicyVersion, s.lastPolicyVersion)
        fresh.snapshotSessions = s.snapshotSessions
        s = fresh
    }
}
