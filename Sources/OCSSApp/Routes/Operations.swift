import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

/// Routes for operators and machines: health, metrics, the API description.
extension App {
    /// `GET /healthz`: ok only when the database can be read and written. Reads can succeed while every write fails
    /// (a full disk, a WAL or SHM that cannot be written): orders are then refused, so say so. A quiet service has
    /// made no write that would have failed, so a probe write goes through the writer at most every 5 s.
    func health(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        // In a cluster: the node's role and who leads.
        let cluster: [(String, JSON)] =
            node.map { n in
                let role = n.role
                return [("role", .string(role.name)), ("leader", .string(n.describe(role)))]
            } ?? []
        @Sendable func degraded(_ error: String, _ extra: [(String, JSON)] = []) -> Response {
            jsonResponse(
                503,
                .object([("status", .string("degraded")), ("error", .string(error)), ("version", .string(BuildInfo.version))] + extra + cluster))
        }
        if let f = engine.writer.storageFailure {
            return reply.send(degraded("writes failing: " + f.message, [("failed_writes", .int(Int64(f.writes)))]))
        }
        do { _ = try engine.readers.read { try $0.query("SELECT 1") { $0.int(0) } } } catch {
            return reply.send(degraded("database unreadable: \(error)"))
        }
        let ok: @Sendable () -> Response = { [self] in
            jsonResponse(
                200,
                .object(
                    [
                        ("status", .string("ok")), ("version", .string(BuildInfo.version)), ("stores", .int(Int64(engine.storeCount))),
                        ("uptime_s", .double(monotonicSeconds() - startedAt)),
                    ] + cluster))
        }
        // A follower writes nothing: it is healthy when it can read (writes are the leader's, and its own health).
        if let node, !leads {
            // Not ready for writes until some node leads and this one knows where: a proxy's health check keeps traffic
            // away meanwhile (a node taking the lead is loading the tables).
            switch node.role {
            case .follower(let url?) where !url.isEmpty: return reply.send(ok())
            case .leader: return reply.send(degraded("taking the lead: loading the tables"))
            default: return reply.send(degraded("no leader known"))
            }
        }
        let now = monotonicSeconds()
        if let last = healthProbe.withLock({ $0 }), now - last.at < 5 {
            return reply.send(last.error.map { degraded("database not writable: " + $0) } ?? ok())
        }
        engine.probeWrite { [self] error in
            healthProbe.withLock { $0 = (now, error) }
            reply.send(error.map { degraded("database not writable: " + $0) } ?? ok())
        }
    }

    func metricsText(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let w = engine.writer.stats
        let outbox = (try? engine.readers.read { try Repository.outboxBacklog($0) }) ?? (pending: 0, dead: 0)
        let waiting = (try? engine.readers.read { try Repository.orderCounts($0, statuses: ["address_review", "unroutable"]) }) ?? [:]
        let buildInfo =
            "# HELP ocss_build_info The running build (value 1).\n# TYPE ocss_build_info gauge\n"
            + "ocss_build_info{version=\"\(BuildInfo.version)\"} 1\n"
        let extra: [(String, String, Double)] =
            [
                ("ocss_outbox_pending", "Outbox messages waiting to be sent.", Double(outbox.pending)),
                ("ocss_outbox_dead", "Outbox messages parked after their last retry (POST /v1/outbox/{id}/retry).", Double(outbox.dead)),
                ("ocss_stores", "Stores in the routing index.", Double(engine.storeCount)),
                (
                    "ocss_orders_address_review", "Orders waiting for an address correction (GET /v1/orders?status=address_review).",
                    Double(waiting["address_review"] ?? 0)
                ),
                (
                    "ocss_orders_unroutable", "Orders no store could take yet (GET /v1/orders?status=unroutable; retried after restocks).",
                    Double(waiting["unroutable"] ?? 0)
                ),
                ("ocss_writer_batches_total", "Transactions committed by the group-commit writer.", Double(w.batches)),
                ("ocss_writer_jobs_total", "Writes committed by the group-commit writer.", Double(w.jobs)),
                (
                    "ocss_writer_storage_failures_total", "Writes that failed on a storage error (disk full, I/O, read-only).",
                    Double(engine.writer.storageFailures)
                ),
                ("ocss_feed_waiters", "Long polls waiting for assignments.", Double(engine.feed.count)),
                (
                    "ocss_idempotency_keys_in_memory", "Newest idempotency keys held in memory (--idempotency-window).",
                    Double(engine.state.withLock { $0.committed.count })
                ),
                (
                    "ocss_outbox_pruned_total", "Sent outbox messages deleted after the retention (outbox_retention_days).",
                    Double(retention?.outboxDeleted.load(ordering: .relaxed) ?? 0)
                ),
                (
                    "ocss_redemption_attempts_pruned_total", "Redemption attempts deleted after the retention (redemption_audit_retention_days).",
                    Double(retention?.attemptsDeleted.load(ordering: .relaxed) ?? 0)
                ),
                (
                    "ocss_idempotency_lookups_total", "Idempotency keys looked up in the database because older keys left memory.",
                    Double(engine.idempotencyLookups.load(ordering: .relaxed))
                ),
                (
                    "ocss_auth_failures_total", "Requests refused 401 for the credentials they presented (bearer token, login).",
                    Double(authThrottle.failures.load(ordering: .relaxed))
                ),
                (
                    "ocss_auth_throttled_total", "Requests refused 429 because their address failed credentials too often.",
                    Double(authThrottle.throttled.load(ordering: .relaxed))
                ),
                (
                    "ocss_duplicate_platform_orders_total",
                    "Routed events for a platform order that was already an order (another key), answered with it.",
                    Double(engine.duplicatePlatformOrders.load(ordering: .relaxed))
                ),
            ] + clusterMetrics
        let text = buildInfo + metrics.render(extra: extra)
        reply.send(Response(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(text.utf8)))
    }

    /// A cluster node's role and forwarding (none on a single node).
    var clusterMetrics: [(String, String, Double)] {
        guard let node else { return [] }
        return [
            ("ocss_leader", "1 while this node leads (holds the lease and decides), else 0.", node.decides && leads ? 1 : 0),
            ("ocss_forwarded_total", "Writes this node forwarded to the leader.", Double(node.forwarded.load(ordering: .relaxed))),
            (
                "ocss_forward_failures_total", "Writes this node could not forward (the leader did not answer): answered 503.",
                Double(node.forwardFailures.load(ordering: .relaxed))
            ),
            (
                "ocss_no_leader_refusals_total", "Writes answered 503 with Retry-After because no leader was known.",
                Double(node.refusedNoLeader.load(ordering: .relaxed))
            ),
        ]
    }

    func openAPIText(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let openAPI else { throw APIError(404, "not_found", "openapi.yaml is not installed next to this binary") }
        reply.send(Response(status: 200, headers: [("Content-Type", "application/yaml")], body: Array(openAPI.utf8)))
    }
}
