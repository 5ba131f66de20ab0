import Foundation
import OCSSApp
import OCSSCore

/// `ocss-bench geocode`: gazetteer load time, and addresses per second on one core over the evaluation set,
/// against a naive baseline in the same run (every county name tried as a substring, the longest found wins).
/// Answers are checked against the set's expectations before any figure is printed.
enum GeocodeBench {
    struct Case: Decodable {
        struct Expect: Decodable { var county: String?; var none: Bool? }
        var form: String
        var address: String
        var expect: Expect
    }

    static func run(geodata: String?, evalPath: String, seconds: Double, loads: Int) {
        var times: [Double] = []
        var loaded: (gazetteer: Gazetteer, directory: String, milliseconds: Double)?
        for _ in 0..<max(1, loads) {
            do { loaded = try GeocodeAnswer.load(geodata) } catch { fatal("gazetteer: \(error)") }
            times.append(loaded!.milliseconds)
        }
        let g = loaded!.gazetteer
        times.sort()
        print(
            "geocode load: gazetteer=\(loaded!.directory) units=\(g.unitCount) names=\(g.counts.names) "
                + "min_ms=\(fmt(times[0])) median_ms=\(fmt(times[times.count / 2])) loads=\(times.count)")

        guard let text = try? String(contentsOfFile: evalPath, encoding: .utf8) else { fatal("cannot read \(evalPath)") }
        let cases = text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
        guard !cases.isEmpty else { fatal("no cases in \(evalPath)") }
        let addresses = cases.map(\.address)

        // Check answers first: county cases must resolve to their county.
        var right = 0, checked = 0
        for c in cases {
            if let county = c.expect.county {
                checked += 1
                if let m = g.geocode(c.address), m.adcode.hasPrefix(county) { right += 1 }
            } else if c.expect.none == true {
                checked += 1
                if g.geocode(c.address) == nil { right += 1 }
            }
        }
        guard Double(right) >= 0.97 * Double(checked) else { fatal("verification failed: \(right)/\(checked) correct") }

        let counties = g.units(level: .district).sorted { $0.name.count > $1.name.count }
        func naive(_ s: String) -> String? { counties.first { s.contains($0.name) }?.code }
        let baseline = rate(addresses, seconds: min(seconds, 2)) { _ = naive($0) }
        let ours = rate(addresses, seconds: seconds) { _ = g.resolve($0) }
        var naiveRight = 0
        for c in cases { if let county = c.expect.county, naive(c.address) == county { naiveRight += 1 } }
        print(
            "geocode rate: addresses=\(addresses.count) ours_per_s=\(Int(ours)) naive_substring_per_s=\(Int(baseline)) "
                + "ratio=\(fmt(ours / baseline))x verified=\(right)/\(checked) naive_correct=\(naiveRight)/\(cases.filter { $0.expect.county != nil }.count)"
        )
    }

    static func rate(_ items: [String], seconds: Double, _ body: (String) -> Void) -> Double {
        var n = 0
        let t0 = now()
        var t = t0
        repeat {
            for s in items { body(s) }
            n += items.count
            t = now()
        } while t - t0 < seconds
        return Double(n) / (t - t0)
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func fmt(_ d: Double) -> String { String(format: "%.1f", d) }
}
