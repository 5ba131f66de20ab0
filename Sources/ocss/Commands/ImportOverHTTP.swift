import Dispatch
import Glibc
import OCSSApp
import OCSSCore
import OCSSEngine
import OCSSStore
import Synchronization

/// `ocss import stores FILE --url`: the stores of a CSV sent to a running server through `PUT /v1/stores`, in
/// batches (one transaction and one routing-index rebuild each), with progress. Stores the file does not list are left
/// as they are; a store listed again is replaced (its rules and SLAs go back to their defaults, as with the offline
/// import).
enum StoreImport {
    /// Stores per request.
    static let batch = 2000

    /// Sends the file; returns a summary.
    static func send(path: String, host: String, port: UInt16, token: String) throws -> String {
        var stores: [Store] = []
        var src = try FileLines(path: path)
        var reading = Progress("reading \(path)")
        let read0 = monotonicSeconds()
        try Importer.readStores(&src) { store, fraction in
            stores.append(store)
            if stores.count % 4096 == 0 { reading.update(fraction, rows: stores.count) }
        }
        reading.finish(rows: stores.count, seconds: monotonicSeconds() - read0)
        var seen: Set<String> = []
        for s in stores where !seen.insert(s.id).inserted { throw ImportError(message: "store '\(s.id)' is listed twice") }
        var conn = KeepAlive(host: host, port: port)
        var progress = Progress("stores")
        let t0 = monotonicSeconds()
        var created = 0, updated = 0, total = 0
        for start in stride(from: 0, to: stores.count, by: batch) {
            let slice = stores[start..<min(stores.count, start + batch)]
            let body = JSON.object([("stores", .array(slice.map(App.storeJSON)))]).text
            let request =
                "PUT /v1/stores HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            switch conn.exchangeWithBody(request) {
            case .success(let (status, answer)):
                let text = String(decoding: answer, as: UTF8.self)
                guard status == 200 else { throw ImportError(message: "stores \(start + 1)-\(slice.endIndex): HTTP \(status): \(text)") }
                struct Answer: Decodable { var created: Int; var updated: Int; var stores: Int }
                guard let a = try? JSONCoding.decode(Answer.self, answer) else { throw ImportError(message: "unexpected answer: \(text)") }
                created += a.created
                updated += a.updated
                total = a.stores
            case .failure(let e):
                throw ImportError(message: "stores \(start + 1)-\(slice.endIndex): \(e.rawValue) failed against http://\(host):\(port)")
            }
            progress.update(Double(slice.endIndex) / Double(max(stores.count, 1)), rows: slice.endIndex)
        }
        progress.finish(rows: stores.count, seconds: monotonicSeconds() - t0)
        return "\(created) stores created, \(updated) replaced; the service has \(total)"
    }
}

/// `ocss import inventory --store ID | --replace-all`: a whole-catalogue snapshot through the same versioned path
/// as `PUT /v1/inventory/snapshot`, sent in ordered parts, with progress (`InventoryImport` decides the mode).
enum InventorySnapshotImport {
    /// Rows per part (keeps each request under the server's default 1 MiB body limit).
    static let partRows = 15_000

    /// Reads `store_id,sku,qty` rows from a CSV file.
    static func readRows(path: String, storeFilter: String?) throws -> [(store: String, sku: String, qty: Int)] {
        let src = try FileLines(path: path)
        guard let header = try src.next() else { throw ImportError(message: "empty file") }
        let cols = csvFields(header).map { $0.trimmingCharacters() }
        guard let iStore = cols.firstIndex(of: "store_id"), let iSKU = cols.firstIndex(of: "sku"), let iQty = cols.firstIndex(of: "qty") else {
            throw ImportError(message: "inventory header must have store_id,sku,qty (got \(header))")
        }
        var rows: [(String, String, Int)] = []
        var lineNo = 1
        var progress = Progress("reading \(path)")
        let t0 = monotonicSeconds()
        // Store and SKU of each row seen so far, by hash (a catalogue has millions of rows): hash -> (row, line).
        var seen: [Int: (row: Int, line: Int)] = [:]
        while let line = try src.next() {
            lineNo += 1
            if line.isEmpty { continue }
            let f = csvFields(line)
            guard f.count > max(iStore, iSKU, iQty), let qty = Int(f[iQty]), (0...1_000_000_000).contains(qty), !f[iSKU].isEmpty else {
                throw ImportError(message: "line \(lineNo): expected store_id,sku,qty with 0 <= qty <= 1000000000")
            }
            if let s = storeFilter, f[iStore] != s {
                throw ImportError(message: "line \(lineNo): row of store '\(f[iStore])' in a snapshot of store '\(s)'")
            }
            var h = Hasher()
            h.combine(f[iStore])
            h.combine(f[iSKU])
            let key = h.finalize()
            if let first = seen[key], rows[first.row].0 == f[iStore], rows[first.row].1 == f[iSKU] {
                throw ImportError(message: "line \(lineNo): store '\(f[iStore])' and sku '\(f[iSKU])' are already on line \(first.line)")
            }
            if seen[key] == nil { seen[key] = (rows.count, lineNo) }
            rows.append((f[iStore], f[iSKU], qty))
            if rows.count % 65_536 == 0 { progress.update(src.fraction, rows: rows.count) }
        }
        progress.finish(rows: rows.count, seconds: monotonicSeconds() - t0)
        return rows
    }

    static func partBody(version: Int64, store: String?, part: Int, final: Bool, rows: ArraySlice<(store: String, sku: String, qty: Int)>) -> String {
        var items: [JSON] = []
        items.reserveCapacity(rows.count)
        for r in rows { items.append(.object([("store_id", .string(r.store)), ("sku", .string(r.sku)), ("qty", .int(Int64(r.qty)))])) }
        return JSON.object([
            ("version", .int(version)), ("store_id", .str(store)), ("part", .int(Int64(part))), ("final", .bool(final)),
            ("rows", .array(items)),
        ]).text
    }

    /// Sends the file to a running server. Returns the last answer's body.
    static func send(path: String, host: String, port: UInt16, token: String, version: Int64, store: String?) throws -> String {
        var client = AdminClient(host: host, port: port, token: token)
        return try send(rows: try readRows(path: path, storeFilter: store), client: &client, version: version, store: store)
    }

    /// Sends `rows` as one snapshot of `store` (nil: the whole chain) in ordered parts.
    static func send(rows: [(store: String, sku: String, qty: Int)], client: inout AdminClient, version: Int64, store: String?) throws -> String {
        var progress = Progress("snapshot v\(version)")
        let t0 = monotonicSeconds()
        let parts = max(1, (rows.count + partRows - 1) / partRows)
        var last = ""
        for part in 0..<parts {
            let slice = rows[min(rows.count, part * partRows)..<min(rows.count, (part + 1) * partRows)]
            let body = partBody(version: version, store: store, part: part, final: part == parts - 1, rows: slice)
            do { last = String(decoding: try client.call("PUT", "/v1/inventory/snapshot", body: body), as: UTF8.self) } catch {
                throw ImportError(message: "part \(part): \(error)")
            }
            if last.contains("\"applied\":false") { throw ImportError(message: "snapshot ignored: \(last)") }
            progress.update(Double(part + 1) / Double(parts), rows: slice.endIndex)
        }
        progress.finish(rows: rows.count, seconds: monotonicSeconds() - t0)
        return last
    }

    /// The same snapshot path in process, on an engine over a database no server has open.
    static func applyOffline(rows: [(store: String, sku: String, qty: Int)], engine: Engine, version: Int64, store: String?) throws -> String {
        let scope: String
        let scopeSlots: [Int32]
        if let store {
            guard let (slot, _) = engine.store(id: store) else { throw ImportError(message: "unknown store '\(store)'") }
            scope = "store:\(store)"
            scopeSlots = [slot]
        } else {
            scope = "all"
            scopeSlots = (0..<engine.storeCount).map { Int32($0) }
        }
        var progress = Progress("snapshot v\(version)")
        let t0 = monotonicSeconds()
        let parts = max(1, (rows.count + partRows - 1) / partRows)
        var answer = ""
        for part in 0..<parts {
            var mapped: [Engine.SnapshotRow] = []
            for r in rows[min(rows.count, part * partRows)..<min(rows.count, (part + 1) * partRows)] {
                guard let (slot, _) = engine.store(id: r.store) else { throw ImportError(message: "unknown store '\(r.store)'") }
                mapped.append(.init(slot: slot, sku: r.sku, quantity: Int32(r.qty)))
            }
            let done = DispatchSemaphore(value: 0)
            let result = Mutex<Result<SnapshotOutcome, any Error>?>(nil)
            engine.applySnapshot(scope: scope, scopeSlots: scopeSlots, version: version, rows: mapped, part: part, final: part == parts - 1) { r in
                result.withLock { $0 = r }
                done.signal()
            }
            done.wait()
            switch result.withLock({ $0 }) {
            case .success(.stale(let applied))?:
                throw ImportError(message: "snapshot ignored: version \(version) is not newer than the applied version \(applied)")
            case .success(.applied(let previous, let moved))?:
                answer = "applied version \(version) to \(scope) (previous \(previous)), \(rows.count) rows, \(moved) order(s) rerouted"
            case .success(.partApplied)?: break
            case .success(.outOfOrder(let e))?: throw ImportError(message: "part \(part) out of order (expected \(e))")
            case .failure(let e)?: throw e
            case nil: throw ImportError(message: "no answer")
            }
            progress.update(Double(part + 1) / Double(parts), rows: min(rows.count, (part + 1) * partRows))
        }
        progress.finish(rows: rows.count, seconds: monotonicSeconds() - t0)
        return answer
    }
}
