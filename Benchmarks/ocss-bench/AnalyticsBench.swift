import Foundation
import Glibc
import OCSSApp

/// `ocss-bench analytics`: the analytics queries on a million synthetic orders, 30-day and whole-year windows.
enum AnalyticsBench {
    static func run(db: String, orders: Int, repeats: Int) {
        do {
            if access(db, F_OK) != 0 {
                let s = try AnalyticsTiming.seed(dbPath: db, orders: orders) { print("analytics seed: \($0)") }
                print("analytics seed: \(orders) orders in \(Int(s)) s at \(db)")
            }
            for (label, from, to) in [("30 days", "2026-06-01", "2026-06-30"), ("365 days", "2026-01-01", "2026-12-31")] {
                for (name, ms, rows) in try AnalyticsTiming.time(dbPath: db, from: from, to: to, repeats: repeats) {
                    print(
                        "analytics window=\(label.replacingOccurrences(of: " ", with: "_")) query=\(name) median_ms=\(String(format: "%.1f", ms)) rows=\(rows)"
                    )
                }
            }
        } catch {
            fatal("analytics: \(error)")
        }
    }
}
