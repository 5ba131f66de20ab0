import Glibc

enum BenchCLI {
    static let usage = """
        usage: ocss-bench route --data DIR --stores 1k|10k|100k [--reserve] [--clients N] [--seconds S] [--verify N]
               ocss-bench rules --data DIR --stores 1k|10k|100k [--seconds S] [--verify N]
               ocss-bench geocode [--geodata DIR] [--eval FILE] [--seconds S] [--loads N]
               ocss-bench analytics [--db PATH] [--orders N] [--repeats N]
        """

    static func run(_ args: [String]) {
        guard let mode = args.first, ["route", "rules", "geocode", "analytics"].contains(mode) else { fatal(usage) }
        if mode == "geocode" { return geocode(Array(args.dropFirst())) }
        if mode == "analytics" {
            var db = "/tmp/ocss-analytics-1m.sqlite", orders = 1_000_000, repeats = 5
            var i = 1
            while i + 1 < args.count {
                switch args[i] {
                case "--db": db = args[i + 1]
                case "--orders": orders = Int(args[i + 1]) ?? orders
                case "--repeats": repeats = Int(args[i + 1]) ?? repeats
                default: fatal(usage)
                }
                i += 2
            }
            return AnalyticsBench.run(db: db, orders: orders, repeats: repeats)
        }
        var data = "/tmp/ocss-bench-data", size = "10k", reserve = false, clients = 1, seconds = 5.0, verify = 300
        var i = 1
        func next() -> String {
            i += 1
            guard i < args.count else { fatal(usage) }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--data": data = next()
            case "--stores": size = next()
            case "--reserve": reserve = true
            case "--clients": clients = max(1, Int(next()) ?? 1)
            case "--seconds": seconds = max(0.1, Double(next()) ?? 5)
            case "--verify": verify = max(0, Int(next()) ?? 300)
            default: fatal("unknown option \(args[i])\n" + usage)
            }
            i += 1
        }
        guard ["1k", "10k", "100k"].contains(size) else { fatal("--stores is 1k, 10k or 100k") }
        if mode == "rules" {
            RulesBench.run(dataDir: data, size: size, seconds: seconds, verify: verify)
        } else {
            RouteBench.run(dataDir: data, size: size, reserve: reserve, clients: clients, seconds: seconds, verify: verify)
        }
    }

    static func geocode(_ args: [String]) {
        var geodata: String?, eval = "Tests/OCSSAppTests/Fixtures/geocode-eval.jsonl", seconds = 5.0, loads = 5
        var i = 0
        func next() -> String {
            i += 1
            guard i < args.count else { fatal(usage) }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--geodata": geodata = next()
            case "--eval": eval = next()
            case "--seconds": seconds = max(0.1, Double(next()) ?? 5)
            case "--loads": loads = max(1, Int(next()) ?? 5)
            default: fatal("unknown option \(args[i])\n" + usage)
            }
            i += 1
        }
        GeocodeBench.run(geodata: geodata, evalPath: eval, seconds: seconds, loads: loads)
    }
}
