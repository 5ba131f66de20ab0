import Glibc

enum BenchCLI {
    static let usage = """
        usage: ocss-bench route --data DIR --stores 1k|10k|100k [--reserve] [--clients N] [--seconds S] [--verify N]
               ocss-bench rules --data DIR --stores 1k|10k|100k [--seconds S] [--verify N]
               ocss-bench geocode [--geodata DIR] [--eval FILE] [--seconds S] [--loads N]
               ocss-bench analytics [--db PATH] [--orders N] [--repeats N]
        """

    /// `--name value` options and bare `--flag`s of one mode; anything not in `values` or `flags` is an error.
    struct Options {
        var values: [String: String] = [:]
        var flags: Set<String> = []

        init(_ args: ArraySlice<String>, values allowed: Set<String>, flags allowedFlags: Set<String> = []) {
            var it = args.makeIterator()
            while let a = it.next() {
                if allowedFlags.contains(a) {
                    flags.insert(a)
                } else if allowed.contains(a), let v = it.next() {
                    values[a] = v
                } else {
                    fatal("unknown or incomplete option \(a)\n" + BenchCLI.usage)
                }
            }
        }

        func string(_ name: String, _ fallback: String) -> String { values[name] ?? fallback }
        func int(_ name: String, _ fallback: Int, min: Int) -> Int { Swift.max(min, values[name].flatMap { Int($0) } ?? fallback) }
        func double(_ name: String, _ fallback: Double, min: Double) -> Double {
            Swift.max(min, values[name].flatMap { Double($0) } ?? fallback)
        }
    }

    static func run(_ args: [String]) {
        guard let mode = args.first else { fatal(usage) }
        let rest = args.dropFirst()
        switch mode {
        case "geocode":
            let o = Options(rest, values: ["--geodata", "--eval", "--seconds", "--loads"])
            GeocodeBench.run(
                geodata: o.values["--geodata"], evalPath: o.string("--eval", "Tests/OCSSAppTests/Fixtures/geocode-eval.jsonl"),
                seconds: o.double("--seconds", 5, min: 0.1), loads: o.int("--loads", 5, min: 1))
        case "analytics":
            let o = Options(rest, values: ["--db", "--orders", "--repeats"])
            AnalyticsBench.run(
                db: o.string("--db", "/tmp/ocss-analytics-1m.sqlite"), orders: o.int("--orders", 1_000_000, min: 1),
                repeats: o.int("--repeats", 5, min: 1))
        case "route", "rules":
            let o = Options(rest, values: ["--data", "--stores", "--clients", "--seconds", "--verify"], flags: ["--reserve"])
            let data = o.string("--data", "/tmp/ocss-bench-data"), size = o.string("--stores", "10k")
            guard ["1k", "10k", "100k"].contains(size) else { fatal("--stores is 1k, 10k or 100k") }
            let seconds = o.double("--seconds", 5, min: 0.1), verify = o.int("--verify", 300, min: 0)
            if mode == "rules" {
                RulesBench.run(dataDir: data, size: size, seconds: seconds, verify: verify)
            } else {
                RouteBench.run(
                    dataDir: data, size: size, reserve: o.flags.contains("--reserve"), clients: o.int("--clients", 1, min: 1),
                    seconds: seconds, verify: verify)
            }
        default:
            fatal(usage)
        }
    }
}
