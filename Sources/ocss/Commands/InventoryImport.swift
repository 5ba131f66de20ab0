import OCSSApp
import Dispatch
import OCSSCore
import OCSSStore
import Synchronization
import OCSSEngine

/// What `ocss import inventory FILE.csv` does with the file's `store_id,sku,qty` rows. A file names the stock it
/// knows; stores and SKUs it does not name are left alone unless the user asks for a replacement by name (a two-row
/// file for two new stores once set all 25 demo locations to 0 and made 18 live orders unroutable).
enum InventoryImportMode: Sendable, Equatable {
    /// Sets each listed store and SKU to its quantity; nothing else changes (the default).
    case rows
    /// One store's whole catalogue (`--store ID`): that store's SKUs the file does not list go to 0.
    case store(String)
    /// The whole chain's catalogue (`--replace-all`): every store and SKU the file does not list goes to 0.
    case replaceAll
}

/// What an import will do, worked out before anything is written (`--dry-run` prints it; `--replace-all` is refused
/// by it when it would empty too many stores).
struct InventoryImportPlan: Sendable, Equatable {
    /// Stores and (store, SKU) rows whose on-hand quantity changes.
    var storesChanged = 0
    var rowsChanged = 0
    /// Distinct SKUs among the changed rows.
    var skusChanged = 0
    var unitsAdded: Int64 = 0
    var unitsRemoved: Int64 = 0
    /// Stores holding stock now that hold none after the import.
    var storesEmptied: [String] = []
    /// Stores holding any stock now.
    var storesWithStock = 0
    /// Rows where less would be on hand than orders have reserved: the newest orders there that are not yet picking
    /// move to other stores (or become unroutable), as after any stock cut.
    var shortRows = 0
    var shortUnits: Int64 = 0

    /// The share of stocked stores the import empties.
    var emptiedShare: Double { storesWithStock == 0 ? 0 : Double(storesEmptied.count) / Double(storesWithStock) }

    /// One stock row as it stands.
    struct Current: Sendable {
        var onHand: Int
        var reserved: Int
        init(onHand: Int, reserved: Int) {
            self.onHand = onHand
            self.reserved = reserved
        }
    }

    /// `file` applied in `mode` to `current` (store id -> sku -> row; every store of the chain for `.replaceAll`).
    static func make(
        mode: InventoryImportMode, file: [(store: String, sku: String, qty: Int)],
        current: [String: [String: Current]]
    ) -> InventoryImportPlan {
        var next: [String: [String: Int]] = [:]
        switch mode {
        case .rows: break
        case .store(let id): next[id] = (current[id] ?? [:]).mapValues { _ in 0 }
        case .replaceAll: next = current.mapValues { $0.mapValues { _ in 0 } }
        }
        for r in file { next[r.store, default: [:]][r.sku] = r.qty }
        var p = InventoryImportPlan()
        var skus = Set<String>()
        p.storesWithStock = current.values.filter { $0.values.contains { $0.onHand > 0 } }.count
        for (store, rows) in next {
            var changed = false
            for (sku, qty) in rows {
                let now = current[store]?[sku] ?? Current(onHand: 0, reserved: 0)
                guard qty != now.onHand else { continue }
                changed = true
                p.rowsChanged += 1
                skus.insert(sku)
                if qty > now.onHand { p.unitsAdded += Int64(qty - now.onHand) } else { p.unitsRemoved += Int64(now.onHand - qty) }
                if qty < now.reserved {
                    p.shortRows += 1
                    p.shortUnits += Int64(now.reserved - qty)
                }
            }
            if changed { p.storesChanged += 1 }
            let hadStock = current[store]?.values.contains { $0.onHand > 0 } ?? false
            let stock = (current[store] ?? [:]).mapValues(\.onHand).merging(rows) { $1 }
            if hadStock && !stock.values.contains(where: { $0 > 0 }) { p.storesEmptied.append(store) }
        }
        p.storesEmptied.sort()
        p.skusChanged = skus.count
        return p
    }

    /// The plan in a few lines, for a person deciding whether to go on.
    var text: String {
        var lines = [
            "stores changed: \(storesChanged); rows changed: \(rowsChanged) (\(skusChanged) SKUs); units added: \(unitsAdded), removed: \(unitsRemoved)"
        ]
        if !storesEmptied.isEmpty {
            let shown = storesEmptied.prefix(10).joined(separator: ", ") + (storesEmptied.count > 10 ? ", ..." : "")
            lines.append(
                "stores left with no stock: \(storesEmptied.count) of \(storesWithStock) stocked (\(Int((emptiedShare * 100).rounded()))%): \(shown)")
        }
        if shortRows > 0 {
            lines.append(
                "rows below what orders hold: \(shortRows) (\(shortUnits) units): the newest orders there not yet picking will move to other stores")
        }
        return lines.joined(separator: "\n")
    }
}

/// Runs `ocss import inventory` against a server (`--url`) or a database file no server has open (`--db`).
enum InventoryImport {
    /// Rows per request in `.rows` mode (well under the default 1 MiB body limit).
    static let rowsPerRequest = 5_000

    /// Options of one import.
    struct Options: Sendable {
        var mode: InventoryImportMode = .rows
        var version: Int64
        var dryRun = false
        /// Apply a `.replaceAll` that empties more than `maxEmptiedShare` of the stocked stores.
        var force = false
        var maxEmptiedShare = 0.10
        init(version: Int64) { self.version = version }
    }

    /// The target: a running server, or a database file.
    enum Target: Sendable {
        case server(host: String, port: UInt16, token: String)
        case database(String)
    }

    /// Reads the file, works out the plan, refuses a replacement that empties too many stores unless forced, and
    /// applies it (unless a dry run). Returns what to print; `warn` gets what deserves an operator's attention.
    static func run(path: String, target: Target, options o: Options, warn: (String) -> Void) throws -> String {
        let storeFilter: String? = if case .store(let id) = o.mode { id } else { nil }
        let rows = try InventorySnapshotImport.readRows(path: path, storeFilter: storeFilter)
        switch target {
        case .server(let host, let port, let token):
            var client = AdminClient(host: host, port: port, token: token)
            let named = Set(rows.map(\.store))
            let stores: [String]
            switch o.mode {
            case .rows: stores = named.sorted()
            case .store(let id): stores = [id]
            case .replaceAll: stores = try client.storeIDs()
            }
            let unknown = named.subtracting(o.mode == .replaceAll ? Set(stores) : try Set(client.storeIDs()))
            if let first = unknown.sorted().first {
                throw ImportError(message: "unknown store '\(first)' (\(unknown.count) store(s) in the file are not in the service)")
            }
            var current: [String: [String: InventoryImportPlan.Current]] = [:]
            var progress = Progress("reading current stock")
            for (i, id) in stores.enumerated() {
                current[id] = try client.inventory(store: id)
                progress.update(Double(i + 1) / Double(max(stores.count, 1)), rows: i + 1)
            }
            let plan = try check(InventoryImportPlan.make(mode: o.mode, file: rows, current: current), options: o, warn: warn)
            if o.dryRun { return "dry run, nothing written:\n" + plan.text }
            switch o.mode {
            case .rows: try client.setRows(rows)
            case .store(let id): _ = try InventorySnapshotImport.send(rows: rows, client: &client, version: o.version, store: id)
            case .replaceAll: _ = try InventorySnapshotImport.send(rows: rows, client: &client, version: o.version, store: nil)
            }
            return "applied:\n" + plan.text
        case .database(let dbPath):
            let lock = try DatabaseLock(dbPath: dbPath)
            defer { lock.release() }
            let db = try Connection(path: dbPath)
            try Migrations.apply(to: db)
            let writer = GroupCommitWriter(connection: db) { work in DispatchQueue.global().async(execute: work) }
            let engine = try Engine(writerConnection: db, readers: ReaderPool(path: dbPath), writer: writer, policy: RoutingPolicy())
            var current: [String: [String: InventoryImportPlan.Current]] = [:]
            for store in engine.allStores {
                guard let (slot, _) = engine.store(id: store.id) else { continue }
                var rows: [String: InventoryImportPlan.Current] = [:]
                for r in engine.stockRows(slot: slot) { rows[r.sku] = .init(onHand: Int(r.onHand), reserved: Int(r.reserved)) }
                current[store.id] = rows
            }
            if let missing = rows.first(where: { current[$0.store] == nil }) { throw ImportError(message: "unknown store '\(missing.store)'") }
            let plan = try check(InventoryImportPlan.make(mode: o.mode, file: rows, current: current), options: o, warn: warn)
            if o.dryRun { return "dry run, nothing written:\n" + plan.text }
            switch o.mode {
            // One transaction for the whole file; a row left below what its orders hold is settled when the service
            // next starts (start-up reroutes every shortfall it finds).
            case .rows: _ = try Importer.importInventory(path: path, db: db)
            case .store(let id): _ = try InventorySnapshotImport.applyOffline(rows: rows, engine: engine, version: o.version, store: id)
            case .replaceAll: _ = try InventorySnapshotImport.applyOffline(rows: rows, engine: engine, version: o.version, store: nil)
            }
            return "applied:\n" + plan.text
        }
    }

    /// A whole-chain replacement that would leave more than the allowed share of stocked stores empty is refused
    /// unless forced; one that empties any store is worth a warning either way.
    static func check(_ plan: InventoryImportPlan, options o: Options, warn: (String) -> Void) throws -> InventoryImportPlan {
        guard !plan.storesEmptied.isEmpty else { return plan }
        let share = Int((plan.emptiedShare * 100).rounded())
        if o.mode == .replaceAll && plan.emptiedShare > o.maxEmptiedShare && !o.force && !o.dryRun {
            throw ImportError(
                message: "refused: this replacement would leave \(plan.storesEmptied.count) of \(plan.storesWithStock) stocked stores "
                    + "(\(share)%) with no stock, more than \(Int(o.maxEmptiedShare * 100))%.\n\(plan.text)\n"
                    + "Check with --dry-run; pass --force to apply it anyway, or drop --replace-all to set only the rows the file lists.")
        }
        warn("warning: \(plan.storesEmptied.count) of \(plan.storesWithStock) stocked stores (\(share)%) will have no stock left")
        return plan
    }
}

/// The admin API calls an import makes, on one keep-alive connection.
struct AdminClient {
    let host: String
    let port: UInt16
    let token: String
    var conn: KeepAlive

    init(host: String, port: UInt16, token: String) {
        self.host = host
        self.port = port
        self.token = token
        conn = KeepAlive(host: host, port: port)
    }

    /// Sends one request; the body of a 200, else an error naming the request and the answer.
    mutating func call(_ method: String, _ path: String, body: String? = nil) throws -> [UInt8] {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(token)\r\n"
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        switch conn.exchangeWithBody(request) {
        case .success(let (status, answer)):
            guard status == 200 else { throw ImportError(message: "\(method) \(path): HTTP \(status): \(String(decoding: answer, as: UTF8.self))") }
            return answer
        case .failure(let e): throw ImportError(message: "\(method) \(path): \(e.rawValue) failed against http://\(host):\(port)")
        }
    }

    mutating func storeIDs() throws -> [String] {
        struct Page: Decodable {
            struct S: Decodable { var id: String }
            var stores: [S]
            var total: Int
        }
        var ids: [String] = []
        while true {
            let page = try JSONCoding.decode(Page.self, try call("GET", "/v1/stores?limit=10000&offset=\(ids.count)"))
            ids += page.stores.map(\.id)
            if page.stores.isEmpty || ids.count >= page.total { return ids }
        }
    }

    mutating func inventory(store: String) throws -> [String: InventoryImportPlan.Current] {
        struct Page: Decodable {
            struct Row: Decodable { var sku: String; var on_hand: Int; var reserved: Int }
            var rows: [Row]
            var next_cursor: String?
        }
        var out: [String: InventoryImportPlan.Current] = [:]
        var after: String?
        repeat {
            let cursor = after.map { "&after=" + percentEncoded($0) } ?? ""
            let page = try JSONCoding.decode(Page.self, try call("GET", "/v1/stores/\(percentEncoded(store))/inventory?limit=1000\(cursor)"))
            for r in page.rows { out[r.sku] = .init(onHand: r.on_hand, reserved: r.reserved) }
            after = page.next_cursor
        } while after != nil
        return out
    }

    /// `.rows` mode: each store's rows through `PUT /v1/stores/{id}/inventory`, which sets only what it lists.
    mutating func setRows(_ rows: [(store: String, sku: String, qty: Int)]) throws {
        var progress = Progress("setting stock")
        let t0 = monotonicSeconds()
        var done = 0
        for (store, storeRows) in Dictionary(grouping: rows, by: \.store).sorted(by: { $0.key < $1.key }) {
            for start in stride(from: 0, to: storeRows.count, by: InventoryImport.rowsPerRequest) {
                let chunk = storeRows[start..<min(storeRows.count, start + InventoryImport.rowsPerRequest)]
                let body = JSON.array(chunk.map { .object([("sku", .string($0.sku)), ("qty", .int(Int64($0.qty)))]) }).text
                _ = try call("PUT", "/v1/stores/\(percentEncoded(store))/inventory", body: body)
                done += chunk.count
                progress.update(Double(done) / Double(max(rows.count, 1)), rows: done)
            }
        }
        progress.finish(rows: rows.count, seconds: monotonicSeconds() - t0)
    }

    /// A path segment or query value with everything but unreserved ASCII percent-encoded.
    func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(b)))
            default:
                let hex = Array("0123456789ABCDEF")
                out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
            }
        }
        return out
    }
}
