import Dispatch
import OCSSCore
package import OCSSEngine
import OCSSPlatforms
import OCSSStore
import Synchronization

/// The engine side of a node: the engine loaded from the tables, the app over it, and (when it leads) the workers that
/// write on their own (outbox, retention, SLA ticker). A follower's stack only reads: its writer is never given a job.
package final class Stack: Sendable {
    package let engine: Engine
    package let app: App
    package let dispatcher: OutboxDispatcher
    package let retention: Retention
    package let workers: WorkerGroup
    /// Whether this stack decides (runs intake, store actions and the workers).
    package let leading: Bool
    /// Whether this is a cluster node's stack (its connections are PostgreSQL sessions, closed when it stops).
    let clustered: Bool

    init(
        engine: Engine, app: App, dispatcher: OutboxDispatcher, retention: Retention, workers: WorkerGroup, leading: Bool,
        clustered: Bool
    ) {
        self.clustered = clustered
        self.engine = engine
        self.app = app
        self.dispatcher = dispatcher
        self.retention = retention
        self.workers = workers
        self.leading = leading
    }

    /// Stops the workers, then lets the writer finish what it was given; parked long polls answer from what is
    /// committed (their clients poll again, on the stack that replaces this one).
    func stop() {
        workers.stop()
        let done = DispatchSemaphore(value: 0)
        engine.writer.submit({ _ in }) { _ in done.signal() }
        _ = done.wait(timeout: .now() + 10)
        engine.feed.wakeAll()
        if clustered {
            // A cluster node's sessions go back to PostgreSQL now, not when the last reference to the engine goes.
            engine.writer.disconnect()
            engine.readers.close()
        }
    }
}

/// The stack a node serves with now; swapped whole at a change of role. A cluster node has none until its first
/// lease step has built the one its role needs (it then loads the tables once, not once to follow and again to lead).
package final class StackHolder: Sendable {
    private let stack: Mutex<Stack?>
    init(_ s: Stack?) { stack = Mutex(s) }
    /// The stack, once there is one (`Service.init` returns only then).
    package var current: Stack { stack.withLock { $0! } }
    var ready: Stack? { stack.withLock { $0 } }

    /// Puts `new` in place and returns the stack it replaces.
    func swap(_ new: Stack) -> Stack? {
        stack.withLock { s in
            let old = s
            s = new
            return old
        }
    }
}

/// Builds stacks the same way for a single node and for each role of a cluster node.
struct StackBuilder: Sendable {
    let config: ServiceConfig
    let adminToken: String
    let geocoder: any Geocoder
    let clock: any WallClock
    let log: Logger

    /// A deciding stack on SQLite (`db` is the writer's connection).
    func leader(db: Connection, readers: ReaderPool, shm: SharedMemoryGuard?) throws -> Stack {
        try prepareToLead(db)
        let queue = DispatchQueue(label: "ocss.writer", qos: .userInitiated)
        let writer = GroupCommitWriter(connection: db, guard: shm) { work in queue.async(execute: work) }
        return try stack(db: db, readers: readers, writer: writer, node: nil, leading: true)
    }

    /// A deciding stack on PostgreSQL for the node that holds the lease at `epoch`: every batch it commits checks
    /// that it still leads, and publishes its feed changes to the other nodes.
    func leader(node: ClusterNode, epoch: Int64) throws -> Stack {
        let db = try Connection(postgres: config.dbPath)
        try prepareToLead(db)
        let queue = DispatchQueue(label: "ocss.writer", qos: .userInitiated)
        let writer = GroupCommitWriter(connection: db) { work in queue.async(execute: work) }
        writer.add(observer: ClusterCommitObserver(epoch: epoch))
        return try stack(db: db, readers: ReaderPool(postgres: config.dbPath), writer: writer, node: node, leading: true)
    }

    /// A reading stack on PostgreSQL: loaded from the tables, never written through.
    func follower(node: ClusterNode) throws -> Stack {
        let db = try Connection(postgres: config.dbPath, readOnly: true)
        // A serial queue, as every writer's: it is given only the no-op and the disconnect of `Stack.stop`.
        let queue = DispatchQueue(label: "ocss.writer.follower")
        let writer = GroupCommitWriter(connection: db) { work in queue.async(execute: work) }
        return try stack(db: db, readers: ReaderPool(postgres: config.dbPath), writer: writer, node: node, leading: false)
    }

    /// What a deciding node does to the database before it loads it: rollups in the business time zone, demo data
    /// into an empty database, platform credentials from the config file.
    private func prepareToLead(_ db: Connection) throws {
        let rebuilt = monotonicSeconds()
        if try Rollups.rebuildIfZoneChanged(db, zone: config.businessTimeZone) {
            log.info(
                "analytics rebuilt in the business time zone",
                [
                    ("time_zone", .string(config.businessTimeZone)),
                    ("ms", .double((monotonicSeconds() - rebuilt) * 1000)),
                ])
        }
        if config.demo, try Repository.loadStores(db).isEmpty {
            let (stores, rows) = try DemoData.load(into: db, at: rfc3339(clock.now()))
            log.info("demo data loaded", [("stores", .int(Int64(stores))), ("inventory_rows", .int(Int64(rows)))])
        }
        for (platform, creds) in config.platformCredentials.sorted(by: { $0.key < $1.key }) {
            guard App.knownPlatforms.contains(platform) else { throw ImportError(message: "config: unknown platform '\(platform)'") }
            try Repository.setSetting(db, "platform.\(platform).credentials", String(decoding: CanonicalJSON.encodeValue(creds), as: UTF8.self))
            try Repository.setSettingOnce(db, Engine.connectedKey(platform), Timestamps.format(Int64(clock.now())))
        }
    }

    private func stack(db: Connection, readers: ReaderPool, writer: GroupCommitWriter, node: ClusterNode?, leading: Bool) throws -> Stack {
        let engine = try Engine(
            writerConnection: db, readers: readers, writer: writer, policy: RoutingPolicy(reachMetres: config.reachMetres),
            geocoder: geocoder, clock: clock, log: log, idempotencyWindow: config.idempotencyWindow)
        // A crash between a stock change and its reroutes (or a hand-edited database) can leave more reserved than on
        // hand: settle it before the first request.
        if leading { engine.resolveShortfallsAtStart() }
        let retention = Retention(engine: engine, outboxDays: config.outboxRetentionDays, attemptDays: config.redemptionAuditRetentionDays)
        let app = App(
            engine: engine, adminToken: adminToken, openAPI: Service.readOpenAPI(config.docsDir), benchEndpoints: config.benchEndpoints,
            retention: retention, webhookFreshnessSeconds: config.webhookFreshnessSeconds,
            authFailuresPerMinute: config.authFailuresPerMinute, node: node, leads: leading)
        let dispatcher = OutboxDispatcher(engine: engine, settings: config.outbox)
        let workers = WorkerGroup(log: log)
        if leading {
            if config.outboxEnabled { workers.run(dispatcher) }
            if config.timers {
                workers.run(retention)
                workers.run(
                    PeriodicWorker(name: "ticker", every: config.tickSeconds) {
                        _ = engine.tick()
                        engine.retryUnroutableIfDue()
                    })
            }
        }
        return Stack(
            engine: engine, app: app, dispatcher: dispatcher, retention: retention, workers: workers, leading: leading,
            clustered: node != nil)
    }
}
