import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

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
        let b = try decode(Engine.SafetyBody.self, r.body)
        let rules: SafetyStock
        do { rules = try Engine.safety(b, slot: { self.engine.store(id: $0)?.slot }) } catch { throw APIError.invalid(error.field, error.message) }
        engine.setSafetyStock(rules, json: String(decoding: r.body, as: UTF8.self)) { result in
            switch result {
            case .success: reply.send(jsonResponse(200, self.safetyJSON(rules)))
            case .failure: reply.send(APIError.storageUnavailable("the safety stock").response)
            }
        }
    }
}
