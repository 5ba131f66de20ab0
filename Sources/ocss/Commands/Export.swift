import OCSSApp
import OCSSCore
import OCSSStore
import OCSSEngine

/// `ocss export customers --format csv|jsonl --db PATH`: every customer for a CRM, a page at a time (the database
/// may be in use by a running server: reads go through WAL snapshots). Erased customers are exported anonymised.
enum ExportCommand {
    enum Format: String, Sendable { case csv, jsonl }

    /// Writes the export to `write` in chunks; returns the number of customers.
    static func customers(dbPath: String, format: Format, write: (String) -> Void) throws -> Int {
        let readers = ReaderPool(database: dbPath)
        var after: Int64 = 0, n = 0
        // A byte-order mark first: without it Excel reads UTF-8 as the system code page (GBK on Chinese Windows).
        if format == .csv {
            write(
                CSVText.utf8BOM
                    + "customer_id,phone,name,order_count,total_spend_minor,first_order_at,last_order_at,channels,addresses,erased_at,"
                    + "spend_by_currency\n")
        }
        while true {
            let page = try readers.read { try Repository.customers($0, after: after, limit: 1000) }
            if page.isEmpty { break }
            var out = ""
            for c in page {
                switch format {
                case .csv:
                    let fields = [
                        String(c.id), c.phone ?? "", c.name ?? "", String(c.orderCount), String(c.totalSpendMinor), c.firstOrderAt ?? "",
                        c.lastOrderAt ?? "", strings(c.channels).joined(separator: "|"),
                        strings(c.addresses).joined(separator: " | "), c.erasedAt ?? "", spendText(c.spendByCurrency),
                    ]
                    out += fields.map(csvField).joined(separator: ",") + "\n"
                case .jsonl:
                    JSON.object([
                        ("customer_id", .int(c.id)), ("phone", .str(c.phone)), ("name", .str(c.name)), ("order_count", .int(c.orderCount)),
                        ("total_spend_minor", .int(c.totalSpendMinor)), ("first_order_at", .str(c.firstOrderAt)),
                        ("last_order_at", .str(c.lastOrderAt)), ("channels", .raw(c.channels)), ("addresses", .raw(c.addresses)),
                        ("erased_at", .str(c.erasedAt)), ("spend_by_currency", .raw(c.spendByCurrency)),
                    ]).write(into: &out)
                    out += "\n"
                }
            }
            write(out)
            n += page.count
            after = page.last!.id
        }
        return n
    }

    /// `CNY 12345|USD 700` from the stored JSON object (a spreadsheet cell, never one sum across currencies).
    static func spendText(_ json: String) -> String {
        let spend = (try? JSONCoding.decode([String: Int64].self, Array(json.utf8))) ?? [:]
        return spend.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "|")
    }

    /// A stored JSON array of strings (empty when unreadable).
    static func strings(_ json: String) -> [String] { (try? JSONCoding.decode([String].self, Array(json.utf8))) ?? [] }

    /// RFC 4180 quoting; a leading = + - @ is prefixed with ' so spreadsheets do not run it as a formula.
    static func csvField(_ s: String) -> String {
        var v = s
        if let f = v.first, "=+-@".contains(f), !(f == "+" && v.dropFirst().allSatisfy(\.isNumber)) { v = "'" + v }
        guard v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return v }
        return "\"" + v.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}

extension CLI {
    static func export(_ o: inout Options) throws {
        guard o.positional() == "customers" else { throw OptionError(message: "export customers --format csv|jsonl [--db PATH]") }
        let dbPath = try o.value("--db") ?? env("OCSS_DB") ?? "var/ocss.sqlite"
        guard let format = ExportCommand.Format(rawValue: try o.value("--format") ?? "csv") else {
            throw OptionError(message: "--format is csv or jsonl")
        }
        try o.finish()
        let n = try ExportCommand.customers(dbPath: dbPath, format: format) { writeStdout($0) }
        writeStderr("export: \(n) customers\n")
    }
}
