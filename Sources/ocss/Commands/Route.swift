import OCSSApp
import Dispatch
import OCSSCore
import OCSSStore
import OCSSEngine

/// `ocss route`: one decision against a database, reserving nothing.
enum RouteCommand {
    static func decide(dbPath: String, point: GeoPoint, lines: [(String, Int32)], reachMetres: Double) throws -> String {
        let db = try Connection(path: dbPath)
        try Migrations.apply(to: db)
        let writer = GroupCommitWriter(connection: db) { work in DispatchQueue.global().async(execute: work) }
        let engine = try Engine(
            writerConnection: db, readers: ReaderPool(path: dbPath), writer: writer,
            policy: RoutingPolicy(reachMetres: reachMetres))
        let (d, metres, explanation) = engine.dryRoute(at: point, lines: lines)
        return JSON.object([
            ("store_id", .str(d.storeID)),
            ("distance_m", .num(metres)),
            ("explanation", explanation),
        ]).text
    }
}

extension CLI {
    static func route(_ o: inout Options) throws {
        let dbPath = try sqliteFile(&o, "route", instead: "ask the running cluster (every order answer explains its decision)")
        guard let latS = try o.value("--lat"), let lat = Double(latS), let lonS = try o.value("--lon"), let lon = Double(lonS),
            GeoPoint(lon: lon, lat: lat).isValid
        else { throw OptionError(message: "--lat and --lon are required WGS84 degrees") }
        var lines: [(String, Int32)] = []
        while let l = try o.value("--line") {
            let parts = l.split(separator: ":")
            guard parts.count == 2, let q = Int32(parts[1]), q > 0 else { throw OptionError(message: "--line is SKU:QTY with QTY > 0") }
            lines.append((String(parts[0]), q))
        }
        guard !lines.isEmpty else { throw OptionError(message: "at least one --line SKU:QTY") }
        let reach =
            try o.value("--reach").map { r -> Double in
                guard let v = Double(r), v > 0 else { throw OptionError(message: "--reach must be metres > 0") }
                return v
            } ?? 50_000
        try o.finish()
        let json = try RouteCommand.decide(dbPath: dbPath, point: GeoPoint(lon: lon, lat: lat), lines: lines, reachMetres: reach)
        print(json)
    }
}
