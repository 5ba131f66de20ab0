import Glibc
package import OCSSCore
import OCSSStore
package import OCSSEngine

/// The gazetteer's loading and the JSON of one geocoding result: shared by `GET /v1/geocode`, `ocss geocode` and the
/// geocoding benchmark.
package enum GeocodeAnswer {
    /// The bundled gazetteer (see `GazetteerFiles.candidates` for where it is looked for).
    package static func load(_ dir: String?) throws -> (gazetteer: Gazetteer, directory: String, milliseconds: Double) {
        let l = try GazetteerFiles.load(dir)
        return (l.gazetteer, l.directory, l.milliseconds)
    }

    /// The JSON of one result; `id` is echoed (a JSONL input's id, else the line number).
    package static func json(id: JSON, address: String, outcome: GeocodeOutcome) -> JSON {
        var pairs: [(String, JSON)] = [("id", id), ("address", .string(address))]
        switch outcome {
        case .match(let m):
            pairs += [
                ("adcode", .string(m.adcode)), ("level", .string(m.level.rawValue)),
                ("province", .str(m.names.province)), ("city", .str(m.names.city)),
                ("district", .str(m.names.district)), ("town", .str(m.names.town)),
                ("lat", .exact(rounded(m.point.lat))), ("lon", .exact(rounded(m.point.lon))),
                ("confidence", .exact(rounded(m.confidence, 100))), ("point_level", .string(m.pointLevel.rawValue)),
            ]
            if !m.alternatives.isEmpty {
                pairs.append(
                    (
                        "alternatives",
                        .array(
                            m.alternatives.map { a in
                                .object([
                                    ("adcode", .string(a.adcode)), ("level", .string(a.level.rawValue)), ("province", .str(a.names.province)),
                                    ("city", .str(a.names.city)), ("district", .str(a.names.district)), ("town", .str(a.names.town)),
                                ])
                            })
                    ))
            }
        case .miss(let why):
            pairs += [
                ("adcode", .null), ("level", .null), ("province", .null), ("city", .null), ("district", .null), ("town", .null),
                ("lat", .null), ("lon", .null), ("confidence", .double(0)), ("unresolved", .string(why.rawValue)),
            ]
        }
        return .object(pairs)
    }

    package static func rounded(_ v: Double, _ scale: Double = 1_000_000) -> Double { (v * scale).rounded() / scale }
}
