import Synchronization

/// Prometheus counters and histograms, rendered in the text exposition format.
package final class Metrics: Sendable {
    package struct Histogram {
        var buckets: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0
        init(buckets: [Double]) {
            self.buckets = buckets
            counts = Array(repeating: 0, count: buckets.count)
        }
        mutating func observe(_ v: Double) {
            for (i, b) in buckets.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            count += 1
        }
    }

    package struct RouteStatus: Hashable {
        let route: String
        let status: Int
    }

    package struct State {
        var requests: [RouteStatus: Int] = [:]
        var orders: [String: Int] = [:]  // outcome
        var slaBreaches: [String: Int] = [:]  // kind
        var outbox: [String: Int] = [:]  // result
        var geocodes: [String: Int] = [:]  // result: routable, review, miss, mismatch, corrected
        var retries: [String: Int] = [:]  // unroutable orders tried again after a restock: routed, still_unroutable
        var routing = Histogram(buckets: [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 1e-2])
        var request = Histogram(buckets: [1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.5, 1, 5, 30])
    }

    private let state = Mutex(State())

    package init() {}

    package func request(route: String, status: Int, seconds: Double) {
        state.withLock {
            $0.requests[RouteStatus(route: route, status: status), default: 0] += 1
            $0.request.observe(seconds)
        }
    }

    package func order(outcome: String) { state.withLock { $0.orders[outcome, default: 0] += 1 } }

    package func slaBreach(kind: String, count: Int) { state.withLock { $0.slaBreaches[kind, default: 0] += count } }

    package func outbox(result: String) { state.withLock { $0.outbox[result, default: 0] += 1 } }

    package func geocode(result: String) { state.withLock { $0.geocodes[result, default: 0] += 1 } }

    package func unroutableRetry(result: String) { state.withLock { $0.retries[result, default: 0] += 1 } }

    package func routing(seconds: Double) { state.withLock { $0.routing.observe(seconds) } }

    /// Text format 0.0.4; `extra` appends values supplied by the caller (name, help, value): counters when the
    /// name ends in `_total`, as Prometheus names them, gauges otherwise.
    package func render(extra: [(String, String, Double)] = []) -> String {
        let s = state.withLock { $0 }
        var out = "# HELP ocss_http_requests_total HTTP requests by route and status.\n# TYPE ocss_http_requests_total counter\n"
        for (k, v) in s.requests.sorted(by: { ($0.key.route, $0.key.status) < ($1.key.route, $1.key.status) }) {
            out += "ocss_http_requests_total{route=\"\(k.route)\",status=\"\(k.status)\"} \(v)\n"
        }
        out +=
            "# HELP ocss_geocodes_total Order addresses geocoded, by result (routable, review, miss, mismatch with coordinates, corrected by admin).\n"
            + "# TYPE ocss_geocodes_total counter\n"
        for (k, v) in s.geocodes.sorted(by: { $0.key < $1.key }) { out += "ocss_geocodes_total{result=\"\(k)\"} \(v)\n" }
        out += "# HELP ocss_orders_total Orders by routing outcome.\n# TYPE ocss_orders_total counter\n"
        for (k, v) in s.orders.sorted(by: { $0.key < $1.key }) { out += "ocss_orders_total{outcome=\"\(k)\"} \(v)\n" }
        out +=
            "# HELP ocss_unroutable_retries_total Unroutable orders tried again after stock or stores changed, by result.\n"
            + "# TYPE ocss_unroutable_retries_total counter\n"
        for (k, v) in s.retries.sorted(by: { $0.key < $1.key }) { out += "ocss_unroutable_retries_total{result=\"\(k)\"} \(v)\n" }
        out +=
            "# HELP ocss_sla_breaches_total Orders that missed a store SLA (accept: rerouted; ship_by: escalated).\n# TYPE ocss_sla_breaches_total counter\n"
        for (k, v) in s.slaBreaches.sorted(by: { $0.key < $1.key }) { out += "ocss_sla_breaches_total{kind=\"\(k)\"} \(v)\n" }
        out += "# HELP ocss_outbox_deliveries_total Outbox send attempts by result.\n# TYPE ocss_outbox_deliveries_total counter\n"
        for (k, v) in s.outbox.sorted(by: { $0.key < $1.key }) { out += "ocss_outbox_deliveries_total{result=\"\(k)\"} \(v)\n" }
        out += histogram("ocss_routing_seconds", "Time to choose a store and reserve stock.", s.routing)
        out += histogram("ocss_http_request_seconds", "Time from request to answer.", s.request)
        for (name, help, value) in extra {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(name.hasSuffix("_total") ? "counter" : "gauge")\n\(name) \(value)\n"
        }
        return out
    }

    private func histogram(_ name: String, _ help: String, _ h: Histogram) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (b, c) in zip(h.buckets, h.counts) { out += "\(name)_bucket{le=\"\(b)\"} \(c)\n" }
        out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n\(name)_sum \(h.sum)\n\(name)_count \(h.count)\n"
        return out
    }
}
