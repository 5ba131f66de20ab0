import Foundation
package import OCSSCore
package import OCSSStore
import Synchronization

/// The routing policy as data, time zones and today's capacity counts: what a decision needs
/// beyond stores and stock.
extension Engine {
    /// JSON of a policy document (stable key order, for storage and replies).
    package static func policyJSON(_ p: RoutingPolicy) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(p)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    package static func decodePolicy(_ json: String) throws -> RoutingPolicy {
        try JSONDecoder().decode(RoutingPolicy.self, from: Data(json.utf8))
    }

    package static func rulesJSON(_ r: StoreRules) -> String? {
        guard !r.isEmpty else { return nil }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(r)).map { String(decoding: $0, as: UTF8.self) }
    }

    package static func decodeRules(_ json: String) -> StoreRules {
        (try? JSONDecoder().decode(StoreRules.self, from: Data(json.utf8))) ?? StoreRules()
    }

    /// True when `id` names a time zone this machine knows.
    package static func knownTimeZone(_ id: String) -> Bool { TimeZone(identifier: id) != nil }

    /// UTC offsets, seconds, of `zones` at `epoch`.
    package static func utcOffsets(_ zones: [String], at epoch: Double) -> [Int32] {
        let date = Date(timeIntervalSince1970: epoch)
        return zones.map { Int32(TimeZone(identifier: $0)?.secondsFromGMT(for: date) ?? 28_800) }
    }

    /// The context of a decision made now for a customer at `point`. Offsets are cached per minute.
    package func context(_ s: inout State, point: GeoPoint?, now: Double) -> RoutingContext {
        let minute = Int64(now / 60)
        if minute != s.offsetsMinute || s.offsets.count != s.index.timeZones.count {
            s.offsets = Engine.utcOffsets(s.index.timeZones, at: now)
            s.offsetsMinute = minute
        }
        return RoutingContext(point: point, now: Int64(now), utcOffsets: s.offsets, capacity: s.capacity)
    }

    /// Counts one more assignment today for `slot` (capacity).
    package func countAssignment(_ s: inout State, slot: Int32, now: Double) {
        let ctx = context(&s, point: nil, now: now)
        s.capacity.record(slot: slot, localDay: ctx.localDay(zone: s.index.zone[Int(slot)]))
    }

    /// Replaces the routing policy with a new version: stored first, then used by every later decision.
    package func setPolicy(_ policy: RoutingPolicy, note: String?, done: @escaping @Sendable (Result<Int64, any Error>) -> Void) {
        let at = rfc3339(clock.now())
        let json = Engine.policyJSON(policy)
        state.withLock { s in
            s.lastPolicyVersion += 1
            let version = s.lastPolicyVersion
            writer.submit({ db in try Repository.insertPolicy(db, version: version, document: json, note: note, at: at) }) { [self] r in
                switch r {
                case .success:
                    state.withLock { s in
                        if version > s.policyVersion {
                            s.router = Router(policy: policy)
                            s.policyVersion = version
                        }
                    }
                    log.info("routing policy replaced", [("version", .int(version))])
                    noteRoutingChange(.stores)
                    done(.success(version))
                case .failure(let e):
                    done(.failure(e))
                }
            }
        }
    }

    package var safetyRules: SafetyStock { state.withLock { $0.ledger.safetyRules } }

    /// The policy in force and its version (0 = built-in defaults, never stored).
    package var currentPolicy: (version: Int64, policy: RoutingPolicy) {
        state.withLock { ($0.policyVersion, $0.router.policy) }
    }

    /// Safety stock rules replace the old ones (stored as a setting, applied to every row).
    package func setSafetyStock(_ rules: SafetyStock, json: String, done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        writer.submit({ db in try Repository.setSetting(db, "safety_stock", json) }) { [self] r in
            if case .success = r {
                state.withLock { $0.ledger.setSafetyRules(rules) }
                noteRoutingChange(.stock)
            }
            done(r)
        }
    }
}

/// Today's assignment counts from the database (start-up): assignments of the last two days, each
/// counted on its store's local day.
package func loadCapacity(_ db: Connection, index: StoreIndex, now: Double) throws -> CapacityBook {
    let book = CapacityBook()
    let rows = try Repository.assignmentsSince(db, rfc3339(now - 2 * 86_400))
    let offsets = Engine.utcOffsets(index.timeZones, at: now)
    let ctxNow = RoutingContext(now: Int64(now), utcOffsets: offsets)
    for (slot, at) in rows where Int(slot) < index.stores.count {
        guard let epoch = parseRFC3339(at) else { continue }
        var c = ctxNow
        c.now = Int64(epoch)
        let zone = index.zone[Int(slot)]
        if c.localDay(zone: zone) == ctxNow.localDay(zone: zone) { book.record(slot: slot, localDay: ctxNow.localDay(zone: zone)) }
    }
    return book
}

/// Parses an RFC 3339 instant (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`, as `rfc3339(_:)` writes with `Z`) to Unix
/// seconds. Anything else is nil: out-of-range fields (`12:99:00`), missing separators, or an offset left off, are
/// refused rather than rolled over or read as UTC. A leap second (`:60`) is accepted, as RFC 3339 allows.
package func parseRFC3339(_ s: String) -> Double? {
    let u = Array(s.utf8)
    guard u.count >= 20, u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t"),
        let day = LocalDate.dayNumber(String(decoding: u[0..<10], as: UTF8.self))
    else { return nil }
    func n(_ at: Int) -> Int? {
        guard at + 1 < u.count, (48...57).contains(u[at]), (48...57).contains(u[at + 1]) else { return nil }
        return Int(u[at] - 48) * 10 + Int(u[at + 1] - 48)
    }
    guard let h = n(11), u[13] == UInt8(ascii: ":"), let m = n(14), u[16] == UInt8(ascii: ":"), let sec = n(17),
        h <= 23, m <= 59, sec <= 60
    else { return nil }
    var i = 19
    var frac = 0.0
    if u[i] == UInt8(ascii: ".") {
        var scale = 0.1
        i += 1
        let first = i
        while i < u.count, (48...57).contains(u[i]) {
            frac += Double(u[i] - 48) * scale
            scale /= 10
            i += 1
        }
        guard i > first else { return nil }
    }
    guard i < u.count else { return nil }
    var offset = 0
    switch u[i] {
    case UInt8(ascii: "Z"), UInt8(ascii: "z"):
        guard i + 1 == u.count else { return nil }
    case UInt8(ascii: "+"), UInt8(ascii: "-"):
        guard i + 6 == u.count, let oh = n(i + 1), u[i + 3] == UInt8(ascii: ":"), let om = n(i + 4), oh <= 23, om <= 59 else { return nil }
        offset = (oh * 3600 + om * 60) * (u[i] == UInt8(ascii: "+") ? 1 : -1)
    default:
        return nil
    }
    return Double(day * 86_400 + Int64(h * 3600 + m * 60 + sec - offset)) + frac
}

extension Engine {
    package struct SafetyBody: Decodable {
        package var `default`: Int?
        package var per_sku: [String: Int]?
        package var per_store: [String: Int]?
    }

    /// Safety stock rules from their JSON: store ids resolve to slots through `slot`.
    package static func decodeSafety(_ json: String, slot: (String) -> Int32?) throws -> SafetyStock {
        let b = try JSONCoding.decode(SafetyBody.self, Array(json.utf8))
        return try safety(b, slot: slot)
    }

    package static func safety(_ b: SafetyBody, slot: (String) -> Int32?) throws(SafetyRuleError) -> SafetyStock {
        func q(_ v: Int, _ field: String) throws(SafetyRuleError) -> Int32 {
            guard (0...1_000_000).contains(v) else { throw SafetyRuleError(field, "safety stock must be 0 to 1000000") }
            return Int32(v)
        }
        var rules = SafetyStock(defaultQuantity: try q(b.default ?? 0, "default"))
        for (sku, v) in b.per_sku ?? [:] {
            guard !sku.isEmpty, sku.unicodeScalars.count <= 128 else { throw SafetyRuleError("per_sku", "sku must be 1 to 128 characters") }
            rules.perSKU[sku] = try q(v, "per_sku.\(sku)")
        }
        for (id, v) in b.per_store ?? [:] {
            guard let s = slot(id) else { throw SafetyRuleError("per_store.\(id)", "unknown store '\(id)'") }
            rules.perStore[s] = try q(v, "per_store.\(id)")
        }
        return rules
    }
}

/// A safety-stock rule that cannot be taken, by field.
package struct SafetyRuleError: Error, Sendable {
    package var field: String
    package var message: String
    package init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
}
