package import OCSSCore
import OCSSPlatforms
package import OCSSProj
package import OCSSStore
import Dispatch
package import Synchronization

/// The in-memory fast path over the durable truth in SQLite: the store index, the inventory
/// ledger, id counters, idempotency keys and store tokens, all behind one lock (inventory is the
/// only hot mutable state and has one owner). Rebuilt from the database at start-up.
package final class Engine: Sendable {
    package struct State: ~Copyable {
        var index: StoreIndex
        var ledger: InventoryLedger
        var nextOrderID: Int64
        var nextAssignmentID: Int64
        /// The newest committed keys -> body hash (older ones are looked up in the database).
        package var committed: IdempotencyWindow
        /// Keys whose transaction is in flight -> body hash and the replies waiting for it.
        var pending: [String: (hash: String, waiters: [OrderCompletion])]
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

    package let state: Mutex<State>
    package let writer: GroupCommitWriter
    package let readers: ReaderPool
    /// The policy from configuration, in force until one is stored.
    package let configuredPolicy: RoutingPolicy
    package let geodesy = EllipsoidalGeodesy()
    package let crs = CRSTransform()
    package let geocoder: any Geocoder
    /// Failed promotion-code redemptions per store and per phone (lockouts).
    package let throttle = Mutex(RedemptionThrottle())
    package let clock: any WallClock
    package let metrics: Metrics
    package let feed: FeedHub
    package let log: Logger
    /// How many of the newest idempotency keys are answered from memory.
    package let idempotencyWindow: Int
    /// False once some committed key is not in memory: new keys are then looked up in the database first.
    package let windowComplete: Atomic<Bool>
    /// Keys looked up in the database for that reason (`/metrics`).
    package let idempotencyLookups = Atomic<Int>(0)
    /// Moves whenever a store token is revoked: request authentication remembers tokens only within a generation.
    package let tokenGeneration = Atomic<Int>(0)
    /// Routed events answered with the order their platform order already became (`/metrics`).
    package let duplicatePlatformOrders = Atomic<Int>(0)
    package static let defaultIdempotencyWindow = 200_000
    private let outboxHook = Mutex<(@Sendable () -> Void)?>(nil)

    /// Called after commits that may have written outbox rows (the dispatcher sets it).
    package func setOutboxWake(_ f: @escaping @Sendable () -> Void) { outboxHook.withLock { $0 = f } }
    package func wakeOutbox() { outboxHook.withLock { $0 }?() }

    /// Loads everything from the database behind `writer`/`readers`.
    package init(
        writerConnection: Connection, readers: ReaderPool, writer: GroupCommitWriter, policy: RoutingPolicy,
        geocoder: any Geocoder = NoGeocoder(), clock: any WallClock = SystemClock(), metrics: Metrics = Metrics(),
        log: Logger = Logger(), idempotencyWindow: Int = Engine.defaultIdempotencyWindow
    ) throws {
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
        writer.add(
            observer: FeedCommitObserver { changes in
                for c in changes { feed.notify(slot: c.slot, position: c.position) }
            })
    }

    // MARK: queries

    package var storeCount: Int { state.withLock { $0.index.stores.count } }

    package func store(id: String) -> (slot: Int32, store: Store)? {
        state.withLock { s in s.index.slotByID[id].map { ($0, s.index.stores[Int($0)]) } }
    }

    package func store(slot: Int32) -> Store? {
        state.withLock { s in Int(slot) < s.index.stores.count ? s.index.stores[Int(slot)] : nil }
    }

    package var allStores: [Store] { state.withLock { $0.index.stores } }

    package func slot(forTokenHash h: String) -> Int32? { state.withLock { $0.tokens[h] } }

    /// Available quantity for tests and the CLI.
    package func available(storeID: String, sku: String) -> Int32? {
        state.withLock { s in
            guard let slot = s.index.slotByID[storeID], let k = s.ledger.index(of: sku) else { return nil }
            return s.ledger.available(store: slot, sku: k)
        }
    }

    /// Every stock row of the store in `slot` as routing sees it: SKU, on hand, reserved, safety stock. Copied
    /// under the lock, named outside it.
    package func stockRows(slot: Int32) -> [(sku: String, onHand: Int32, reserved: Int32, safety: Int32)] {
        let (rows, names) = state.withLock { s -> (StoreStock?, [String]) in
            (Int(slot) < s.ledger.stock.count ? s.ledger.stock[Int(slot)] : nil, s.ledger.skuNames)
        }
        guard let rows else { return [] }
        return rows.skus.indices.map { i in (names[Int(rows.skus[i])], rows.onHand[i], rows.reserved[i], rows.safety[i]) }
    }

    // MARK: admin writes (durable first, then applied to memory)

    /// Inserts or replaces a store. `done` gets whether it was new, after the commit.
    package func upsertStore(_ store: Store, sla: StoreSLA = StoreSLA(), done: @escaping @Sendable (Result<Bool, any Error>) -> Void) {
        upsertStores([(store, sla)]) { r in done(r.map { $0.created == 1 }) }
    }

    /// Inserts or replaces stores: one transaction, and the routing index is rebuilt once for all of them (a store
    /// at a time costs a rebuild each, which grows with the number of stores). `done` gets how many were new.
    package func upsertStores(
        _ items: [(store: Store, sla: StoreSLA)],
        done: @escaping @Sendable (Result<(created: Int, updated: Int), any Error>) -> Void
    ) {
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
    package func setInventory(slot: Int32, rows: [(String, Int32)], done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
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
    package func setPlatformCredentials(_ platform: String, json: String, done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
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
    package static func connectedKey(_ platform: String) -> String { "platform.\(platform).connected_at" }

    /// Issues a store token; only its hash is stored. `done` gets the token after the commit.
    package func issueToken(slot: Int32, done: @escaping @Sendable (Result<String, any Error>) -> Void) {
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
    package static func tokenID(hash: String) -> String { String(hash.prefix(16)) }

    /// Revokes a store's tokens (every one, or the one with id `tokenID`): refused from this moment, gone from the
    /// database after the commit. `done` gets how many were revoked.
    package func revokeTokens(slot: Int32, tokenID: String?, done: @escaping @Sendable (Result<Int, any Error>) -> Void) {
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
    package func scheduleStockRebuild() {
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
            log.info(
                "stock index rebuilt",
                [
                    ("stores", .int(Int64(index.stores.count))), ("points", .int(Int64(built.pointCount))),
                    ("ms", .double((monotonicSeconds() - t0) * 1000)), ("swapped", .bool(swapped)),
                ])
            if !swapped { scheduleStockRebuild() }
        }
    }
}

/// Everything the engine keeps in memory, read from the database in one go.
package struct EngineSnapshot {
    package var stores: [Store]
    package var ledger: InventoryLedger
    package var ids: (order: Int64, assignment: Int64)
    package var committed: IdempotencyWindow
    package var platformOrders: RecentWindow<Int, Int64>
    package var cancelledPlatformOrders: Set<String>
    package var tokens: [String: Int32]
    package var active: [ActiveOrderRow]
    package var slas: [StoreSLA]
    package var platformTargets: Set<String>
    package var policy: RoutingPolicy
    package var policyVersion: Int64
    package var capacity: CapacityBook
    package let fallbackPolicy: RoutingPolicy
    package let now: Double

    /// `fallbackPolicy` is used until a policy is stored (the `--reach` flag sets its reach).
    /// `window`: how many of the newest idempotency keys to hold in memory.
    package init(db: Connection, fallbackPolicy: RoutingPolicy, now: Double, window: Int = Engine.defaultIdempotencyWindow) throws {
        self.fallbackPolicy = fallbackPolicy
        self.now = now
        stores = try Repository.loadStores(db, rules: Engine.decodeRules)
        ledger = try Repository.loadLedger(db, storeCount: stores.count)
        var slots: [String: Int32] = [:]
        for (i, st) in stores.enumerated() { slots[st.id] = Int32(i) }
        if let json = try Repository.setting(db, "safety_stock"), let rules = try? Engine.decodeSafety(json, slot: { slots[$0] }) {
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

    package func state() -> Engine.State {
        let index = StoreIndex(stores: stores)
        return Engine.State(
            index: index, ledger: ledger, nextOrderID: ids.order + 1, nextAssignmentID: ids.assignment + 1,
            committed: committed, pending: [:], platformOrders: platformOrders, cancelledPlatformOrders: cancelledPlatformOrders,
            tokens: tokens, stock: StockIndex(index: index, ledger: ledger),
            active: ActiveOrders(active), slas: slas, platformTargets: platformTargets, router: Router(policy: policy),
            policyVersion: policyVersion, lastPolicyVersion: policyVersion, capacity: capacity)
    }

    /// Replaces `s` with this snapshot, keeping in-flight idempotency waiters.
    package func apply(to s: inout Engine.State) {
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
