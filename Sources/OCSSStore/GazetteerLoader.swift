import Glibc
public import OCSSCore
import Synchronization

/// The gazetteer failed to load; the message names the file and line.
public struct GazetteerLoadError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Finds and loads the bundled gazetteer (`geodata/gazetteer.tsv` + `chars.tsv`).
public enum GazetteerFiles {
    /// Where `geodata/` is looked for when no directory is given: the working directory, next to the binary's
    /// prefix (`/usr/local/bin/ocss` -> `/usr/local/share/ocss/geodata`), then `/usr/share/ocss/geodata`.
    public static func candidates(_ dir: String?) -> [String] {
        if let dir { return [dir] }
        var out = ["geodata"]
        if let exe = executablePath(), let bin = exe.lastIndex(of: "/") {
            let prefix = String(exe[..<bin])
            out.append(prefix + "/../share/ocss/geodata")
            out.append(prefix + "/../../geodata")  // .build/<config>/ocss in a checkout
            out.append(prefix + "/../../../geodata")
        }
        out.append("/usr/share/ocss/geodata")
        return out
    }

    public struct Loaded: Sendable {
        public let gazetteer: Gazetteer
        public let directory: String
        public let milliseconds: Double
    }

    private static let loaded = Mutex<[String: Loaded]>([:])

    /// The gazetteer of `dir` loaded once per process (it is immutable; every engine and command shares it).
    public static func shared(_ dir: String?) throws -> Loaded {
        let key = dir ?? ""
        if let l = loaded.withLock({ $0[key] }) { return l }
        let l = try load(dir)
        loaded.withLock { $0[key] = l }
        return l
    }

    /// Loads the gazetteer; the error names every place looked in.
    public static func load(_ dir: String?) throws -> Loaded {
        let places = candidates(dir)
        for d in places {
            guard let g = readBytes(d + "/gazetteer.tsv") else { continue }
            guard let c = readBytes(d + "/chars.tsv") else { throw GazetteerLoadError(message: "\(d)/chars.tsv is missing") }
            var t0 = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t0)
            do {
                let gz = try Gazetteer(gazetteer: g, chars: c)
                var t1 = timespec()
                clock_gettime(CLOCK_MONOTONIC, &t1)
                let ms = Double(t1.tv_sec - t0.tv_sec) * 1000 + Double(t1.tv_nsec - t0.tv_nsec) / 1e6
                return Loaded(gazetteer: gz, directory: d, milliseconds: ms)
            } catch let e as Gazetteer.LoadError {
                throw GazetteerLoadError(message: "\(d)/\(e.description)")
            }
        }
        throw GazetteerLoadError(message: "no gazetteer.tsv in " + places.joined(separator: ", ") + " (pass --geodata DIR)")
    }

    static func executablePath() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Whole file as bytes, nil when unreadable.
public func readBytes(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: buf[0..<n])
    }
    return bytes
}
