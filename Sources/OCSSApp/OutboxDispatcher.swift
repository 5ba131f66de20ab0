import Dispatch
import Foundation
import FoundationNetworking
import OCSSPlatforms
import OCSSStore
import Synchronization
package import OCSSEngine

/// Sends outbox rows to the merchant's webhook: per order in order (a message waits while an earlier
/// one of its order is pending or dead), signed, retried with exponential backoff and jitter, then
/// parked as dead. A row is marked sent only after a 2xx, so a crash between the 2xx and the mark
/// sends it again: delivery is at-least-once, and `X-OCSS-Event-Id` lets the receiver drop repeats.
///
/// Outbound HTTP is FoundationNetworking's URLSession (libcurl underneath): TLS and timeouts come
/// with the toolchain, with no extra C module to maintain.
package final class OutboxDispatcher: BackgroundWorker {
    package let name = "outbox"
    package struct Settings: Sendable {
        /// First retry delay, seconds; doubles per attempt up to `maxDelay`, times a jitter in [0.5, 1).
        package var baseDelay = 1.0
        package var maxDelay = 300.0
        /// Attempts before a message is parked as dead.
        package var maxAttempts = 8
        /// Per-request timeout, seconds.
        package var timeout = 10.0
        /// Idle poll interval, seconds (commits wake the dispatcher sooner).
        package var pollInterval = 0.5
        package init() {}
    }

    let engine: Engine
    let settings: Settings
    let queue = DispatchQueue(label: "ocss.outbox")
    let wakeup = DispatchSemaphore(value: 0)
    let running = Atomic<Bool>(false)
    let stopped = DispatchSemaphore(value: 0)
    let session: URLSession

    package init(engine: Engine, settings: Settings = Settings()) {
        self.engine = engine
        self.settings = settings
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = settings.timeout
        config.timeoutIntervalForResource = settings.timeout
        session = URLSession(configuration: config)
    }

    package func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        engine.setOutboxWake { [wakeup] in wakeup.signal() }
        queue.async { [self] in
            while running.load(ordering: .acquiring) {
                let sentOrFailed = runOnce()
                if sentOrFailed == 0 { _ = wakeup.wait(timeout: .now() + settings.pollInterval) }
            }
            stopped.signal()
        }
    }

    package func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        wakeup.signal()
        _ = stopped.wait(timeout: .now() + settings.timeout + 1)
    }

    /// One pass over the due messages. Returns how many were attempted.
    @discardableResult
    package func runOnce() -> Int {
        let now = engine.clock.now()
        let hook = webhook()
        let due = (try? engine.readers.read { try Repository.dueOutbox($0, now: now, limit: 100) }) ?? []
        var blocked = Set<String>()
        var attempted = 0
        for row in due where !blocked.contains("\(row.orderID)/\(row.target)") {
            let result: SendResult
            if row.target == "webhook" {
                guard let (url, secret) = hook, let target = URL(string: url) else { continue }  // waits until configured
                result = send(row, to: target, secret: secret, now: now)
            } else {
                result = sendToPlatform(row)
            }
            attempted += 1
            let done = DispatchSemaphore(value: 0)
            switch result {
            case .success:
                engine.metrics.outbox(result: "sent")
                let at = rfc3339(engine.clock.now())
                engine.writer.submit({ db in try Repository.markOutboxSent(db, id: row.id, at: at) }) { _ in done.signal() }
            case .failure(let message):
                blocked.insert("\(row.orderID)/\(row.target)")
                let dead = row.attempts + 1 >= settings.maxAttempts
                engine.metrics.outbox(result: dead ? "dead" : "retry")
                let delay = min(settings.maxDelay, settings.baseDelay * pow(2, Double(row.attempts))) * Double.random(in: 0.5..<1)
                engine.writer.submit({ db in
                    try Repository.markOutboxFailed(db, id: row.id, error: message, nextAttemptAt: now + delay, dead: dead)
                }) { _ in done.signal() }
                if dead {
                    engine.log.warn(
                        "outbox message parked as dead",
                        [
                            ("outbox_id", .int(row.id)), ("order_id", .int(row.orderID)),
                            ("target", .string(row.target)), ("event", .string(row.event)),
                            ("error", .string(message)),
                        ])
                }
            }
            done.wait()
        }
        return attempted
    }

    /// The platform's own status call(s) for one message.
    func sendToPlatform(_ row: OutboxRow) -> SendResult {
        let platform = row.target
        guard let creds = credentials(platform) else { return .failure("no credentials for \(platform)") }
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(row.payload.utf8))) as? [String: Any],
            let pid = obj["platform_order_id"] as? String
        else { return .failure("unreadable outbox payload") }
        let update = StatusUpdate(
            event: row.event, platformOrderID: pid, carrier: obj["carrier"] as? String,
            trackingNumber: obj["tracking_number"] as? String,
            at: (obj["at_epoch"] as? Double) ?? engine.clock.now())
        do {
            if platform == "shopify" && row.event == "shipped" {
                let (status1, body1) = try perform(try StatusCalls.shopifyFulfillmentOrders(update, creds))
                guard (200..<300).contains(status1) else { return .failure("fulfillment_orders: HTTP \(status1)") }
                let ids = StatusCalls.shopifyOpenFulfillmentOrderIDs(body1)
                guard !ids.isEmpty else { return .failure("no open fulfillment order") }
                let (status2, body2) = try perform(try StatusCalls.shopifyFulfillment(update, fulfillmentOrderIDs: ids, creds))
                return StatusCalls.succeeded(platform: platform, status: status2, body: body2) ? .success : .failure("fulfillment: HTTP \(status2)")
            }
            let request = try StatusCalls.request(platform: platform, update: update, credentials: creds, nonce: UUID().uuidString)
            let (status, body) = try perform(request)
            return StatusCalls.succeeded(platform: platform, status: status, body: body)
                ? .success : .failure("HTTP \(status): \(String(decoding: body.prefix(200), as: UTF8.self))")
        } catch let e as StatusCallError {
            return .failure(e.message)
        } catch {
            return .failure("\(error)")
        }
    }

    func perform(_ r: OutboundRequest) throws -> (Int, [UInt8]) { try OutboundHTTP(session: session).perform(r) }

    func credentials(_ platform: String) -> PlatformCredentials? {
        guard let text = try? engine.readers.read({ try Repository.setting($0, "platform.\(platform).credentials") }) else { return nil }
        return try? JSONDecoder().decode(PlatformCredentials.self, from: Data(text.utf8))
    }

    enum SendResult { case success; case failure(String) }

    func send(_ row: OutboxRow, to url: URL, secret: String, now: Double) -> SendResult {
        let body = Data(row.payload.utf8)
        let timestamp = String(Int64(now))
        var req = URLRequest(url: url)
        req.httpMethod = "POST"
        req.httpBody = body
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        req.setValue("ocss-\(row.orderID)-\(row.event)", forHTTPHeaderField: "X-OCSS-Event-Id")
        req.setValue(String(row.id), forHTTPHeaderField: "X-OCSS-Delivery")
        req.setValue(timestamp, forHTTPHeaderField: "X-OCSS-Timestamp")
        req.setValue(
            "sha256=" + OutboxDispatcher.signature(secret: secret, timestamp: timestamp, body: Array(body)),
            forHTTPHeaderField: "X-OCSS-Signature")
        let box = Mutex<SendResult>(.failure("no answer"))
        let done = DispatchSemaphore(value: 0)
        session.dataTask(with: req) { _, response, error in
            let r: SendResult
            if let error {
                r = .failure(error.localizedDescription)
            } else if let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) {
                r = .success
            } else {
                r = .failure("HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0)")
            }
            box.withLock { $0 = r }
            done.signal()
        }.resume()
        done.wait()
        return box.withLock { $0 }
    }

    /// HMAC-SHA256 over `timestamp + "." + body`, hex: what receivers recompute to verify.
    package static func signature(secret: String, timestamp: String, body: [UInt8]) -> String {
        Crypto.hex(Crypto.hmacSHA256(key: Array(secret.utf8), message: Array((timestamp + ".").utf8) + body))
    }

    func webhook() -> (String, String)? {
        try? engine.readers.read { db -> (String, String)? in
            guard let url = try Repository.setting(db, "webhook.url"), let secret = try Repository.setting(db, "webhook.secret") else { return nil }
            return (url, secret)
        }
    }
}

/// One outbound HTTP exchange over URLSession, waited for on the calling (background) thread.
struct OutboundHTTP {
    let session: URLSession

    static let shared: URLSession = {
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = 10
        config.timeoutIntervalForResource = 10
        return URLSession(configuration: config)
    }()

    init(session: URLSession = OutboundHTTP.shared) { self.session = session }

    /// The HTTP status and body, or throws on a transport error.
    func perform(_ r: OutboundRequest) throws -> (Int, [UInt8]) {
        guard let url = URL(string: r.url) else { throw StatusCallError(message: "bad url \(r.url)") }
        var req = URLRequest(url: url)
        req.httpMethod = r.method
        if !r.body.isEmpty { req.httpBody = Data(r.body) }
        for (k, v) in r.headers { req.setValue(v, forHTTPHeaderField: k) }
        let box = Mutex<Result<(Int, [UInt8]), StatusCallError>>(.failure(StatusCallError(message: "no answer")))
        let done = DispatchSemaphore(value: 0)
        session.dataTask(with: req) { data, response, error in
            let r: Result<(Int, [UInt8]), StatusCallError>
            if let error {
                r = .failure(StatusCallError(message: error.localizedDescription))
            } else {
                r = .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data.map { Array($0) } ?? []))
            }
            box.withLock { $0 = r }
            done.signal()
        }.resume()
        done.wait()
        return try box.withLock { $0 }.get()
    }
}
