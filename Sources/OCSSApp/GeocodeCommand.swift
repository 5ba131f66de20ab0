import Glibc
package import OCSSCore
import OCSSStore
package import OCSSEngine

/// Writes all of `s` to fd 1 (the C `stdout` global is not concurrency-safe in Swift 6).
package func writeStdout(_ s: String) {
    var s = s
    s.withUTF8 { buf in
        var off = 0
        while off < buf.count {
            let n = write(1, buf.baseAddress! + off, buf.count - off)
            if n <= 0 { break }
            off += n
        }
    }
}

/// `ocss geocode`: addresses on stdin (one per line, or JSONL `{"id": ..., "address": ...}`), results as JSONL.
package enum GeocodeCommand {
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

    static func rounded(_ v: Double, _ scale: Double = 1_000_000) -> Double { (v * scale).rounded() / scale }

    /// Reads stdin to the end, writes one JSON line per input line; returns (lines, resolved).
    package static func run(gazetteer: Gazetteer, explain: Bool = false) -> (Int, Int) {
        var n = 0, resolved = 0
        var out = ""
        out.reserveCapacity(1 << 16)
        while let raw = readLine(strippingNewline: true) {
            n += 1
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            var id = JSON.int(Int64(n))
            var address = line
            if line.first == "{", let parsed = parseJSONLine(line) {
                id = parsed.id ?? id
                address = parsed.address
            }
            let outcome = gazetteer.resolve(address)
            if explain { writeStdout("# " + gazetteer.explain(address).joined(separator: " | ") + "\n") }
            if outcome.match != nil { resolved += 1 }
            json(id: id, address: address, outcome: outcome).write(into: &out)
            out += "\n"
            if out.utf8.count > 60_000 {
                writeStdout(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        writeStdout(out)
        return (n, resolved)
    }

    /// `{"id": <string|number>, "address": "..."}`; nil when the line is not such an object.
    static func parseJSONLine(_ line: String) -> (id: JSON?, address: String)? {
        guard let l = try? JSONCoding.decode(Line.self, Array(line.utf8)) else { return nil }
        let id: JSON? =
            switch l.id {
            case .text(let s): .string(s)
            case .number(let d): d == d.rounded() && abs(d) < 1e15 ? .int(Int64(d)) : .double(d)
            case nil: nil
            }
        return (id, l.address)
    }

    struct Line: Decodable {
        enum ID: Decodable {
            case text(String), number(Double)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .text(s) } else { self = .number(try c.decode(Double.self)) }
            }
        }
        let id: ID?
        let address: String
    }
}
