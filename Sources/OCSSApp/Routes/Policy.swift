import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization

/// Routing policy and safety stock routes.
extension App {
    func policyJSON(version: Int64, policy: RoutingPolicy) -> JSON {
        .object([("version", .int(version)), ("policy", .raw(Engine.policyJSON(policy)))])
    }

    /// `GET /v1/policy` (admin): the routing policy in force and its version (0 = built-in defaults).
    func getPolicy(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let (version, policy) = engine.currentPolicy
        reply.send(jsonResponse(200, policyJSON(version: version, policy: policy)))
    }

    /// `PUT /v1/policy` (admin): a new policy document (missing fields take their defaults) becomes
    /// the next version; later decisions use and record it.
    func putPolicy(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let policy = try decode(RoutingPolicy.self, r.body)
        if let (field, message) = policy.problem() { throw APIError.invalid(field, message) }
        engine.setPolicy(policy, note: r.query["note"]) { result in
            switch result {
            case .success(let v): reply.send(jsonResponse(201, self.policyJSON(version: v, policy: policy)))
            case .failure: reply.send(APIError.storageUnavailable("the policy").response)
            }
        }
    }

    struct SafetyBody: Decodable {
        var `default`: Int?
        var per_sku: [String: Int]?
        var per_store: [String: Int]?
    }

    /// Safety stock rules from their JSON: store ids resolve to slots through `slot`.
    static func decodeSafety(_ json: String, slot: (String) -> Int32?) throws -> SafetyStock {
        let b = try JSONCoding.decode(SafetyBody.self, Array(json.utf8))
        return try safety(b, slot: slot)
    }

    static func safety(_ b: SafetyBody, slot: (String) -> Int32?) throws(APIError) -> SafetyStock {
        func q(_ v: Int, _ field: String) throws(APIError) -> Int32 {
            guard (0...1_000_000).contains(v) else { throw APIError.invalid(field, "safety stock must be 0 to 1000000") }
            return Int32(v)
        }
        var rules = SafetyStock(defaultQuantity: try q(b.default ?? 0, "default"))
        for (sku, v) in b.per_sku ?? [:] {
            guard !sku.isEmpty, sku.unicodeScalars.count <= 128 else { throw APIError.invalid("per_sku", "sku must be 1 to 128 characters") }
            rules.perSKU[sku] = try q(v, "per_sku.\(sku)")
        }
        for (id, v) in b.per_store ?? [:] {
            guard let s = slot(id) else { throw APIError.invalid("per_store.\(id)", "unknown store '\(id)'") }
            rules.perStore[s] = try q(v, "per_store.\(id)")
        }
        return rules
    }

    func safetyJSON(_ rules: SafetyStock) -> JSON {
        let stores = engine.allStores
        return .object([
            ("default", .int(Int64(rules.defaultQuantity))),
            ("per_sku", .object(rules.perSKU.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
            (
                "per_store",
                .object(
                    rules.perStore.sorted { $0.key < $1.key }.compactMap { kv in
                        Int(kv.key) < stores.count ? (stores[Int(kv.key)].id, .int(Int64(kv.value))) : nil
                    })
            ),
            ("precedence", .string("per_sku, then per_store, then default")),
        ])
    }

    /// `GET /v1/inventory/safety-stock` (admin).
    func getSafety(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        reply.send(jsonResponse(200, safetyJSON(engine.safetyRules)))
    }

    /// `PUT /v1/inventory/safety-stock` (admin): replaces the rules; available = on_hand - reserved - safety.
    func putSafety(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(SafetyBody.self, r.body)
        let rules = try App.safety(b, slot: { self.engine.store(id: $0)?.slot })
        engine.setSafetyStock(rules, json: String(decoding: r.body, as: UTF8.self)) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, self.safetyJSON(rules)))
            case .failure: reply.send(APIError.storageUnavailable("the safety stock").response)
            }
        }
    }
}
