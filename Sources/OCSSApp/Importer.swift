import Dispatch
import Glibc
import OCSSCore
import Synchronization
package import OCSSStore
import OCSSEngine

/// Lines of a CSV source with how far through it we are (for progress).
protocol LineSource {
    mutating func next() throws(ImportError) -> String?
    var fraction: Double { get }
}

/// Streams a file line by line with getline (files reach hundreds of MB). Spreadsheets' habits are met here: the
/// byte-order mark Excel's "CSV UTF-8" starts with is dropped, and a line that is not UTF-8 (a GBK file, the
/// default on Chinese Windows) is refused by number instead of being stored as U+FFFD.
final class FileLines: LineSource {
    let file: UnsafeMutablePointer<FILE>
    let path: String
    let size: Double
    var consumed = 0
    var lineNumber = 0
    var buffer: UnsafeMutablePointer<CChar>?
    var capacity = 0

    init(path: String) throws(ImportError) {
        guard let f = fopen(path, "rb") else { throw ImportError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        file = f
        self.path = path
        var st = stat()
        size = fstat(fileno(f), &st) == 0 ? Double(st.st_size) : 0
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    func next() throws(ImportError) -> String? {
        let n = getline(&buffer, &capacity, file)
        guard n >= 0, let buffer else { return nil }
        consumed += n
        lineNumber += 1
        var len = n
        while len > 0 && (buffer[len - 1] == 10 || buffer[len - 1] == 13) { len -= 1 }
        let text = buffer.withMemoryRebound(to: UInt8.self, capacity: len) { p -> String? in
            var bytes = UnsafeBufferPointer(start: p, count: len)
            if lineNumber == 1, len >= 3, p[0] == 0xEF, p[1] == 0xBB, p[2] == 0xBF { bytes = UnsafeBufferPointer(rebasing: bytes[3...]) }
            return String(validating: bytes, as: UTF8.self)
        }
        guard let text else {
            throw ImportError(
                message: "\(path) line \(lineNumber): not UTF-8 text (a GBK file saved by Excel on Chinese Windows?); "
                    + "save it as \"CSV UTF-8\" or convert it: iconv -f GBK -t UTF-8 \(path) > utf8.csv")
        }
        return text
    }

    var fraction: Double { size > 0 ? Double(consumed) / size : 0 }
}

/// Lines of an in-memory text (the bundled demo data).
struct TextLines: LineSource {
    var lines: [Substring]
    var i = 0
    init(_ text: String) { lines = text.split(whereSeparator: \.isNewline) }
    mutating func next() -> String? {
        guard i < lines.count else { return nil }
        defer { i += 1 }
        return String(lines[i])
    }
    var fraction: Double { lines.isEmpty ? 1 : Double(i) / Double(lines.count) }
}

package struct ImportError: Error, Sendable, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

/// Splits one CSV record; handles double-quoted fields with "" escapes.
func csvFields(_ line: String) -> [String] {
    guard line.contains("\"") else { return line.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    var out: [String] = []
    var cur = ""
    var quoted = false
    var it = line.makeIterator()
    while let c = it.next() {
        if quoted {
            if c == "\"" {
                if let n = it.next() {
                    if n == "\"" { cur.append("\"") } else { quoted = false; if n == "," { out.append(cur); cur = "" } else { cur.append(n) } }
                } else {
                    quoted = false
                }
            } else {
                cur.append(c)
            }
        } else if c == "\"" {
            quoted = true
        } else if c == "," {
            out.append(cur); cur = ""
        } else {
            cur.append(c)
        }
    }
    out.append(cur)
    return out
}

/// Shows progress on a terminal: a bar on stderr, redrawn at most every 1%.
struct Progress {
    let label: String
    let tty = isatty(2) == 1
    var lastPercent = -1

    init(_ label: String) { self.label = label }

    mutating func update(_ fraction: Double, rows: Int) {
        let p = Int(fraction * 100)
        guard p != lastPercent else { return }
        // Not a terminal (a log): one line every 10%.
        guard tty || p / 10 != lastPercent / 10 else { return }
        lastPercent = p
        guard tty else {
            writeStderr("\(label): \(p)% \(rows) rows\n")
            return
        }
        let filled = p * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        writeStderr("\r\(label) [\(bar)] \(p)% \(rows) rows")
    }

    func finish(rows: Int, seconds: Double) {
        if tty { writeStderr("\r") }
        writeStderr("\(label): \(rows) rows in \(String(Int(seconds * 1000))) ms\n")
    }
}

/// CSV imports in the formats of shared/bench: stores `id,name,lat,lon[,code,kind,status]` and
/// inventory `store_id,sku,qty`. Both upsert, so running one twice changes nothing.
package enum Importer {
    /// `ocss import stores FILE --db PATH`: migrates the database if needed, then imports. (Inventory goes through
    /// `InventoryImport`, which decides what a file may replace.)
    package static func importStores(file: String, dbPath: String) throws -> Int {
        let lock = try DatabaseLock(dbPath: dbPath)
        defer { lock.release() }
        let db = try Connection(path: dbPath)
        try Migrations.apply(to: db)
        return try importStores(path: file, db: db, at: rfc3339(SystemClock().now()))
    }

    package static func importStores(path: String, db: Connection, at: String) throws -> Int {
        var src = try FileLines(path: path)
        return try importStores(&src, db: db, at: at, label: "importing stores")
    }

    package static func importInventory(path: String, db: Connection) throws -> Int {
        var src = try FileLines(path: path)
        return try importInventory(&src, db: db, label: "importing inventory")
    }

    /// Store id -> slot for the stores already in the database (slots are dense, in order).
    static func storeSlots(_ db: Connection) throws -> [String: Int32] {
        var slots: [String: Int32] = [:]
        for (i, s) in try Repository.loadStores(db).enumerated() { slots[s.id] = Int32(i) }
        return slots
    }

    static func importStores<S: LineSource>(_ src: inout S, db: Connection, at: String, label: String) throws -> Int {
        let t0 = monotonicSeconds()
        var slots = try storeSlots(db)
        var progress = Progress(label)
        var rows = 0
        try db.transaction {
            try readStores(&src) { store, fraction in
                let slot = slots[store.id] ?? Int32(slots.count)
                slots[store.id] = slot
                try Repository.upsertStore(db, slot: slot, store: store, at: at)
                rows += 1
                if rows % 512 == 0 { progress.update(fraction, rows: rows) }
            }
        }
        progress.finish(rows: rows, seconds: monotonicSeconds() - t0)
        return rows
    }

    /// Stores from a CSV with the header `id,name,lat,lon[,code,kind,status]`, one at a time with how far through
    /// the source it is; errors name the line.
    static func readStores<S: LineSource>(_ src: inout S, each: (Store, Double) throws -> Void) throws {
        guard let header = try src.next() else { throw ImportError(message: "empty file") }
        let cols = csvFields(header).map { $0.trimmingCharacters() }
        func col(_ n: String) -> Int? { cols.firstIndex(of: n) }
        guard let iID = col("id"), let iName = col("name"), let iLat = col("lat"), let iLon = col("lon") else {
            throw ImportError(message: "stores header must have id,name,lat,lon (got \(header))")
        }
        let iCode = col("code"), iKind = col("kind"), iStatus = col("status")
        var lineNo = 1
        while let line = try src.next() {
            lineNo += 1
            if line.isEmpty { continue }
            let f = csvFields(line)
            guard f.count >= cols.count, let lat = Double(f[iLat]), let lon = Double(f[iLon]), GeoPoint(lon: lon, lat: lat).isValid else {
                throw ImportError(message: "line \(lineNo): expected \(cols.joined(separator: ",")) with valid lat/lon")
            }
            let id = f[iID]
            guard !id.isEmpty, id.unicodeScalars.count <= 64, !f[iName].isEmpty else {
                throw ImportError(message: "line \(lineNo): id must be 1 to 64 characters and name not empty")
            }
            guard let kind = StoreKind(rawValue: iKind.map { f[$0] }.flatMap { $0.isEmpty ? nil : $0 } ?? "store"),
                let status = StoreStatus(rawValue: iStatus.map { f[$0] }.flatMap { $0.isEmpty ? nil : $0 } ?? "open")
            else {
                throw ImportError(message: "line \(lineNo): kind must be store|warehouse, status open|paused|closed")
            }
            let code = iCode.map { f[$0] }.flatMap { $0.isEmpty ? nil : $0 } ?? id
            try each(
                Store(id: id, code: code, name: f[iName], location: GeoPoint(lon: lon, lat: lat), kind: kind, status: status),
                src.fraction)
        }
    }

    static func importInventory<S: LineSource>(_ src: inout S, db: Connection, label: String) throws -> Int {
        let t0 = monotonicSeconds()
        guard let header = try src.next() else { throw ImportError(message: "empty file") }
        let cols = csvFields(header).map { $0.trimmingCharacters() }
        guard let iStore = cols.firstIndex(of: "store_id"), let iSKU = cols.firstIndex(of: "sku"), let iQty = cols.firstIndex(of: "qty") else {
            throw ImportError(message: "inventory header must have store_id,sku,qty (got \(header))")
        }
        let slots = try storeSlots(db)
        var skus: [String: Int32] = [:]
        for (i, name) in try db.query("SELECT idx, sku FROM skus", [], { s throws(SQLiteError) in (Int32(s.int(0)), s.text(1)) }) { skus[name] = i }
        var progress = Progress(label)
        var rows = 0, lineNo = 1
        try db.transaction {
            while let line = try src.next() {
                lineNo += 1
                if line.isEmpty { continue }
                let f = csvFields(line)
                guard f.count >= 3, let qty = Int32(f[iQty]), qty >= 0 else {
                    throw ImportError(message: "line \(lineNo): expected store_id,sku,qty with qty >= 0")
                }
                guard let slot = slots[f[iStore]] else { throw ImportError(message: "line \(lineNo): unknown store '\(f[iStore])'") }
                let name = f[iSKU]
                let k: Int32
                if let known = skus[name] {
                    k = known
                } else {
                    k = Int32(skus.count)
                    skus[name] = k
                    try Repository.ensureSKU(db, index: k, name: name)
                }
                try Repository.setOnHand(db, slot: slot, sku: k, quantity: qty)
                rows += 1
                if rows % 4096 == 0 { progress.update(src.fraction, rows: rows) }
            }
        }
        progress.finish(rows: rows, seconds: monotonicSeconds() - t0)
        return rows
    }
}

/// `ocss import stores FILE --url`: the stores of a CSV sent to a running server through `PUT /v1/stores`, in
/// batches (one transaction and one routing-index rebuild each), with progress. Stores the file does not list are left
/// as they are; a store listed again is replaced (its rules and SLAs go back to their defaults, as with the offline
/// import).
package enum StoreImport {
    /// Stores per request.
    package static let batch = 2000

    /// Sends the file; returns a summary.
    package static func send(path: String, host: String, port: UInt16, token: String) throws -> String {
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
package enum InventorySnapshotImport {
    /// Rows per part (keeps each request under the server's default 1 MiB body limit).
    package static let partRows = 15_000

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
    package static func send(path: String, host: String, port: UInt16, token: String, version: Int64, store: String?) throws -> String {
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

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
