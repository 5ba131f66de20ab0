import Dispatch
package import OCSSCore
import OCSSStore
import OCSSEngine

/// `ocss route`: one decision against a database, reserving nothing.
package enum RouteCommand {
    package static func decide(dbPath: String, point: GeoPoint, lines: [(String, Int32)], reachMetres: Double) throws -> String {
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
