import Dispatch
import Glibc
package import OCSSCore
import Synchronization
package import OCSSStore
import OCSSEngine

/// Lines of a CSV source with how far through it we are (for progress).
package protocol LineSource {
    mutating func next() throws(ImportError) -> String?
    var fraction: Double { get }
}

/// Streams a file line by line with getline (files reach hundreds of MB). Spreadsheets' habits are met here: the
/// byte-order mark Excel's "CSV UTF-8" starts with is dropped, and a line that is not UTF-8 (a GBK file, the
/// default on Chinese Windows) is refused by number instead of being stored as U+FFFD.
package final class FileLines: LineSource {
    let file: UnsafeMutablePointer<FILE>
    let path: String
    let size: Double
    var consumed = 0
    var lineNumber = 0
    var buffer: UnsafeMutablePointer<CChar>?
    var capacity = 0

    package init(path: String) throws(ImportError) {
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

    package func next() throws(ImportError) -> String? {
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

    package var fraction: Double { size > 0 ? Double(consumed) / size : 0 }
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
    package init(message: String) { self.message = message }
    package var description: String { message }
}

/// Splits one CSV record; handles double-quoted fields with "" escapes.
package func csvFields(_ line: String) -> [String] {
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

/// CSV written for people: spreadsheets open a file as UTF-8 only when it starts with a byte-order mark.
package enum CSVText {
    package static let utf8BOM = "\u{FEFF}"
}

/// Shows progress on a terminal: a bar on stderr, redrawn at most every 1%.
package struct Progress {
    let label: String
    let tty = isatty(2) == 1
    var lastPercent = -1

    package init(_ label: String) { self.label = label }

    package mutating func update(_ fraction: Double, rows: Int) {
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

    package func finish(rows: Int, seconds: Double) {
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
    package static func readStores<S: LineSource>(_ src: inout S, each: (Store, Double) throws -> Void) throws {
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

extension String {
    package func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}

extension Substring {
    package func trimmingCharacters() -> String { String(self).trimmingCharacters() }
}
