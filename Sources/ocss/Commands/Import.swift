import Glibc
import OCSSApp
import OCSSCore
import OCSSEngine

/// `ocss import stores|inventory`: from a CSV file, offline into a database or through a running server.
extension CLI {
    static func importCommand(_ o: inout Options) throws {
        guard let what = o.positional(), let file = o.positional() else { throw OptionError(message: "import needs stores|inventory FILE") }
        guard what == "stores" || what == "inventory" else { throw OptionError(message: "import takes stores or inventory, not '\(what)'") }
        if what == "inventory" {
            // Versions only grow: the default is the current time in milliseconds.
            var io = InventoryImport.Options(
                version: try o.value("--version").map { v -> Int64 in
                    guard let n = Int64(v), n > 0 else { throw OptionError(message: "--version is a positive integer") }
                    return n
                } ?? Int64(SystemClock().now() * 1000))
            let store = try o.value("--store")
            let replaceAll = o.flag("--replace-all")
            if store != nil && replaceAll { throw OptionError(message: "--store and --replace-all replace different things: give one") }
            io.mode = replaceAll ? .replaceAll : store.map { .store($0) } ?? .rows
            io.dryRun = o.flag("--dry-run")
            io.force = o.flag("--force")
            if let share = try o.value("--max-emptied-share") {
                guard let v = Double(share), (0...1).contains(v) else { throw OptionError(message: "--max-emptied-share is a fraction from 0 to 1") }
                io.maxEmptiedShare = v
            }
            let target: InventoryImport.Target
            if let url = try o.value("--url") {
                let (host, port) = try hostPort(url)
                target = .server(host: host, port: port, token: try o.value("--token") ?? env("OCSS_ADMIN_TOKEN") ?? "")
            } else {
                target = .database(try sqliteFile(&o, "import inventory", instead: "send it to the running cluster: --url URL --token T"))
            }
            try o.finish()
            print(try InventoryImport.run(path: file, target: target, options: io) { writeStderr($0 + "\n") })
            return
        }
        if let url = try o.value("--url") {
            let (host, port) = try hostPort(url)
            let token = try o.value("--token") ?? env("OCSS_ADMIN_TOKEN") ?? ""
            try o.finish()
            print(try StoreImport.send(path: file, host: host, port: port, token: token))
            return
        }
        let dbPath = try sqliteFile(&o, "import stores", instead: "send it to the running cluster: --url URL --token T")
        try o.finish()
        _ = try Importer.importStores(file: file, dbPath: dbPath)
    }

    /// `http://HOST:PORT` on this machine.
    static func hostPort(_ url: String) throws -> (String, UInt16) {
        let hostPort = url.replacingPrefix("http://").split(separator: "/").first.map(String.init) ?? ""
        let hp = hostPort.split(separator: ":")
        guard hp.count == 2, let port = UInt16(hp[1]) else { throw OptionError(message: "--url is http://HOST:PORT") }
        let host = hp[0] == "localhost" ? "127.0.0.1" : String(hp[0])
        guard host.hasPrefix("127.") else { throw OptionError(message: "only this machine (127.0.0.0/8) is reachable") }
        return (host, port)
    }
}
