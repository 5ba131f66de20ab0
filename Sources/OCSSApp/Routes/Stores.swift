import Dispatch
package import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
package import OCSSEngine

/// Store routes: the chain's locations, one at a time or in bulk.
extension App {
    static func assignmentJSON(_ a: AssignmentRow) -> JSON {
        .object([
            ("assignment_id", .int(a.id)), ("order_id", .int(a.orderID)), ("status", .string(a.status)),
            ("reason", .str(a.reason)), ("distance_m", .double(a.distanceMetres)), ("created_at", .string(a.createdAt)),
            ("order", .raw(a.payload)),
        ])
    }

    package static func storeJSON(_ s: Store) -> JSON {
        .object([
            ("id", .string(s.id)), ("code", .string(s.code)), ("name", .string(s.name)), ("lat", .exact(s.location.lat)),
            ("lon", .exact(s.location.lon)), ("kind", .string(s.kind.rawValue)), ("status", .string(s.status.rawValue)),
            ("rules", .raw(Engine.rulesJSON(s.rules) ?? "{}")),
        ])
    }

    func listStores(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let all = engine.allStores
        let limit = try intParameter(r, "limit", default: 1000, range: 1...10_000)
        let offset = try intParameter(r, "offset", default: 0, range: 0...Int(Int32.max))
        let page = all.dropFirst(offset).prefix(limit)
        reply.send(jsonResponse(200, .object([("stores", .array(page.map(App.storeJSON))), ("total", .int(Int64(all.count)))])))
    }

    func getStore(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard let slot = p.storeSlot else { throw APIError.unauthorized }
        guard let s = engine.store(slot: slot) else { throw APIError.notFound("store") }
        reply.send(jsonResponse(200, App.storeJSON(s)))
    }

    struct StoreBody: Decodable {
        var code: String?
        var name: String
        var lat: Double
        var lon: Double
        var kind: String?
        var status: String?
        var accept_sla_s: Int?
        var ship_sla_s: Int?
        var rules: StoreRules?
    }

    /// A store from its body, or 400 naming the field (`prefix` leads each field name: `stores[3].` in a batch).
    static func validatedStore(id: String, _ b: StoreBody, prefix: String = "") throws(APIError) -> (store: Store, sla: StoreSLA) {
        func invalid(_ field: String, _ message: String) -> APIError { APIError.invalid(prefix + field, message) }
        guard !id.isEmpty, id.unicodeScalars.count <= 64 else { throw invalid("id", "store id must be 1 to 64 characters") }
        let point = GeoPoint(lon: b.lon, lat: b.lat)
        guard point.isValid else { throw invalid("lat", "lat must be within -90..90 and lon within -180..180") }
        guard let kind = StoreKind(rawValue: b.kind ?? "store") else { throw invalid("kind", "kind is store or warehouse") }
        guard let status = StoreStatus(rawValue: b.status ?? "open") else { throw invalid("status", "status is open, paused or closed") }
        guard !b.name.isEmpty else { throw invalid("name", "name must not be empty") }
        if let a = b.accept_sla_s, !(30...86_400).contains(a) { throw invalid("accept_sla_s", "accept_sla_s must be 30 to 86400") }
        if let sh = b.ship_sla_s, !(60...30 * 86_400).contains(sh) { throw invalid("ship_sla_s", "ship_sla_s must be 60 to 2592000") }
        let rules = b.rules ?? StoreRules()
        if let (field, message) = rules.problem() { throw invalid("rules.\(field)", message) }
        if let tz = rules.timeZone, !Engine.knownTimeZone(tz) {
            throw invalid("rules.timezone", "unknown time zone '\(tz)' (IANA names, e.g. Asia/Shanghai)")
        }
        let store = Store(id: id, code: b.code ?? id, name: b.name, location: point, kind: kind, status: status, rules: rules)
        return (store, StoreSLA(acceptSeconds: Double(b.accept_sla_s ?? 600), shipSeconds: Double(b.ship_sla_s ?? 86_400)))
    }

    /// One store of `PUT /v1/stores`: its id, then the fields of a single store's body.
    struct StoreItem: Decodable {
        var id: String
        var body: StoreBody
        enum Keys: String, CodingKey { case id }
        init(from decoder: any Decoder) throws {
            id = try decoder.container(keyedBy: Keys.self).decode(String.self, forKey: .id)
            body = try StoreBody(from: decoder)
        }
    }

    struct StoresBody: Decodable { var stores: [StoreItem] }

    /// Stores per `PUT /v1/stores` (about 150 bytes each: well inside the default 1 MiB body limit).
    static let storeBatch = 5000

    /// `PUT /v1/stores` (admin): creates or replaces up to 5,000 stores in one transaction, with one rebuild of the
    /// routing index. Every store is checked first: one bad store refuses the batch, naming `stores[i].field`.
    func putStores(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(StoresBody.self, r.body)
        guard !b.stores.isEmpty, b.stores.count <= App.storeBatch else {
            throw APIError.invalid("stores", "send 1 to \(App.storeBatch) stores")
        }
        var seen: Set<String> = []
        var items: [(store: Store, sla: StoreSLA)] = []
        for (i, item) in b.stores.enumerated() {
            guard seen.insert(item.id).inserted else { throw APIError.invalid("stores[\(i)].id", "store '\(item.id)' is listed twice") }
            items.append(try App.validatedStore(id: item.id, item.body, prefix: "stores[\(i)]."))
        }
        engine.upsertStores(items) { result in
            switch result {
            case .success(let n):
                reply.send(
                    jsonResponse(
                        200,
                        .object([
                            ("created", .int(Int64(n.created))), ("updated", .int(Int64(n.updated))),
                            ("stores", .int(Int64(self.engine.storeCount))),
                        ])))
            case .failure: reply.send(APIError.storageUnavailable("the stores").response)
            }
        }
    }

    func putStore(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let id = p["id"]
        guard !id.isEmpty, id.unicodeScalars.count <= 64 else { throw APIError.invalid("id", "store id must be 1 to 64 characters") }
        let b = try decode(StoreBody.self, r.body)
        let (store, sla) = try App.validatedStore(id: id, b)
        engine.upsertStore(store, sla: sla) { result in
            switch result {
            case .success(let created): reply.send(jsonResponse(created ? 201 : 200, App.storeJSON(store)))
            case .failure: reply.send(APIError.storageUnavailable("the store").response)
            }
        }
    }
}
