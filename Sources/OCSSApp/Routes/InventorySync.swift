import Dispatch
import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

/// ERP inventory sync routes: versioned snapshots and idempotent deltas.
extension App {
    struct SnapshotBody: Decodable {
        struct Row: Decodable {
            var store_id: String?
            var sku: String
            var qty: Int
        }
        var version: Int64
        var store_id: String?
        var rows: [Row]
        /// Multi-part snapshots: parts 0, 1, ... of one version, the last with `final: true`.
        var part: Int?
        var final: Bool?
    }

    /// `PUT /v1/inventory/snapshot` (admin): the whole catalogue of one store (`store_id`) or of every
    /// store, with a version that must be newer than the one applied; on-hand only, reservations kept.
    func putSnapshot(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(SnapshotBody.self, r.body)
        guard b.version >= 1 else { throw APIError.invalid("version", "version must be a positive integer") }
        let scopeSlots: [Int32]
        let scope: String
        if let id = b.store_id {
            guard let (slot, _) = engine.store(id: id) else { throw APIError.invalid("store_id", "unknown store '\(id)'") }
            scopeSlots = [slot]
            scope = "store:\(id)"
        } else {
            scopeSlots = (0..<engine.storeCount).map { Int32($0) }
            scope = "all"
        }
        var rows: [Engine.SnapshotRow] = []
        rows.reserveCapacity(b.rows.count)
        // One store and SKU listed twice is an export's mistake: say which rows, rather than keep one of them silently.
        var firstRow: [String: Int] = [:]
        firstRow.reserveCapacity(b.rows.count)
        for (i, row) in b.rows.enumerated() {
            let storeID = row.store_id ?? b.store_id
            guard let storeID else { throw APIError.invalid("rows[\(i)].store_id", "a whole-catalogue snapshot names the store of every row") }
            if let top = b.store_id, storeID != top {
                throw APIError.invalid("rows[\(i)].store_id", "row belongs to another store than the snapshot")
            }
            guard let (slot, _) = engine.store(id: storeID) else { throw APIError.invalid("rows[\(i)].store_id", "unknown store '\(storeID)'") }
            guard !row.sku.isEmpty, row.sku.unicodeScalars.count <= 128 else {
                throw APIError.invalid("rows[\(i)].sku", "sku must be 1 to 128 characters")
            }
            guard (0...1_000_000_000).contains(row.qty) else { throw APIError.invalid("rows[\(i)].qty", "qty must be between 0 and 1000000000") }
            if let j = firstRow.updateValue(i, forKey: "\(slot)\u{0}\(row.sku)") {
                throw APIError.invalid("rows[\(i)].sku", "store '\(storeID)' and sku '\(row.sku)' are already in rows[\(j)]")
            }
            rows.append(.init(slot: slot, sku: row.sku, quantity: Int32(row.qty)))
        }
        let rowCount = rows.count
        let part = b.part ?? 0
        guard (0...100_000).contains(part) else { throw APIError.invalid("part", "part must be 0 to 100000") }
        engine.applySnapshot(scope: scope, scopeSlots: scopeSlots, version: b.version, rows: rows, part: part, final: b.final ?? true) { result in
            func answer(_ applied: Bool, _ previous: Int64?, _ extra: [(String, JSON)]) -> Response {
                jsonResponse(
                    200,
                    .object(
                        [
                            ("applied", .bool(applied)), ("scope", .string(scope)), ("version", .int(b.version)),
                            ("previous_version", previous.map { .int($0) } ?? .null), ("rows", .int(Int64(rowCount))),
                            ("part", .int(Int64(part))),
                        ] + extra))
            }
            switch result {
            case .success(.applied(let previous, let rerouted)):
                reply.send(answer(true, previous, [("complete", .bool(true)), ("rerouted_orders", .int(Int64(rerouted))), ("reason", .null)]))
            case .success(.partApplied(let next)):
                reply.send(answer(true, nil, [("complete", .bool(false)), ("next_part", .int(Int64(next))), ("reason", .null)]))
            case .success(.stale(let applied)):
                reply.send(
                    answer(
                        false, applied,
                        [
                            ("complete", .bool(false)),
                            ("reason", .string("version \(b.version) is not newer than the applied version \(applied); ignored")),
                        ]))
            case .success(.outOfOrder(let expected)):
                reply.send(
                    APIError(
                        409, "snapshot_part_out_of_order",
                        "expected part \(expected) of version \(b.version) for \(scope) (parts are sent in order; after a restart start again from part 0)",
                        field: "part"
                    ).response)
            case .failure: reply.send(APIError.storageUnavailable("the snapshot").response)
            }
        }
    }

    struct DeltasBody: Decodable {
        struct Delta: Decodable {
            var id: String
            var store_id: String
            var sku: String
            var change: Int
        }
        var deltas: [Delta]
    }

    /// `POST /v1/inventory/deltas` (admin): on-hand changes, each applied once by its id.
    func postDeltas(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        try requireJSON(r)
        let b = try decode(DeltasBody.self, r.body)
        guard b.deltas.count <= 100_000 else { throw APIError.invalid("deltas", "at most 100000 deltas per request") }
        var deltas: [Engine.Delta] = []
        for (i, d) in b.deltas.enumerated() {
            guard !d.id.isEmpty, d.id.unicodeScalars.count <= 128 else { throw APIError.invalid("deltas[\(i)].id", "id must be 1 to 128 characters") }
            guard let (slot, _) = engine.store(id: d.store_id) else {
                throw APIError.invalid("deltas[\(i)].store_id", "unknown store '\(d.store_id)'")
            }
            guard !d.sku.isEmpty, d.sku.unicodeScalars.count <= 128 else {
                throw APIError.invalid("deltas[\(i)].sku", "sku must be 1 to 128 characters")
            }
            guard (-1_000_000_000...1_000_000_000).contains(d.change) else {
                throw APIError.invalid("deltas[\(i)].change", "change must be within ±1000000000")
            }
            deltas.append(.init(id: d.id, slot: slot, sku: d.sku, change: Int32(d.change)))
        }
        let total = deltas.count
        engine.applyDeltas(deltas) { result in
            switch result {
            case .success(let duplicates):
                reply.send(
                    jsonResponse(
                        200,
                        .object([
                            ("applied", .int(Int64(total - duplicates.count))),
                            ("duplicates", .array(duplicates.map { .string($0) })),
                        ])))
            case .failure(let e as OnHandOutOfRange):
                reply.send(
                    APIError(
                        422, "on_hand_out_of_range",
                        "on hand would be \(e.wouldBe), above \(Engine.maxOnHand); nothing in this request was applied",
                        field: "deltas[\(e.deltaIndex)].change"
                    ).response)
            case .failure: reply.send(APIError.storageUnavailable("the deltas").response)
            }
        }
    }
}
