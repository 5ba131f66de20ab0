import Dispatch
import Glibc
import OCSSApp
import OCSSCore
import OCSSEngine

/// Writes all of `s` to fd 1 (the C `stdout` global is not concurrency-safe in Swift 6).
func writeStdout(_ s: String) {
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
enum GeocodeCommand {
    /// Reads stdin to the end, writes one JSON line per input line; returns (lines, resolved).
    static func run(gazetteer: Gazetteer, explain: Bool = false) -> (Int, Int) {
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
            GeocodeAnswer.json(id: id, address: address, outcome: outcome).write(into: &out)
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

extension CLI {
    static func geocode(_ o: inout Options) throws {
        let dir = try o.value("--geodata") ?? env("OCSS_GEODATA")
        let explain = o.flag("--explain")
        try o.finish()
        let loaded = try GeocodeAnswer.load(dir)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let (n, resolved) = GeocodeCommand.run(gazetteer: loaded.gazetteer, explain: explain)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        writeStderr(
            "geocode: \(n) lines, \(resolved) resolved, \(Int(Double(n) / max(seconds, 1e-9))) lines/s; "
                + "gazetteer \(loaded.directory) loaded in \(Int(loaded.milliseconds)) ms\n")
    }
}
