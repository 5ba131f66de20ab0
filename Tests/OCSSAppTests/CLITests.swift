import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import OCSSTestSupport
import Synchronization
@testable import ocss
import Testing

@Suite(.serialized, .ownThreads) struct LoadGenTests {
    @Test func loadgenDrivesTheServerAndCountsErrorsByKind() throws {
        let live = try Live { $0.benchEndpoints = true }
        defer { live.stop() }
        try live.putStore("A", lat: 30, lon: 120)
        try live.putInventory("A", [("X", 1_000)])
        let dir = live.dir.path
        // A tiny orders.csv in the shared/bench format.
        var csv = "order_id,lat,lon,n_items,sku1,qty1,sku2,qty2,sku3,qty3,sku4,qty4,sku5,qty5\n"
        for i in 1...50 { csv += "\(i),30.0\(i % 10),120.0,1,X,1,,,,,,,,\n" }
        try csv.write(toFile: dir + "/orders.csv", atomically: true, encoding: .utf8)
        var o = LoadGen.Options()
        o.port = live.service.port
        o.dataDir = dir
        o.token = adminToken
        // Long enough for 50 orders on a busy machine: the workers stop once every order is sent.
        o.duration = 10
        o.workers = 4
        let r = LoadGen.run(o)
        #expect(r.ok == 50)  // every order once, then the workers stop
        #expect(r.errors.isEmpty)
        #expect(live.service.engine.available(storeID: "A", sku: "X") == 950)
        o.mode = "ack"
        o.path = "/v1/orders/ack"
        #expect(LoadGen.run(o).ok == 50)
        o.token = "wrong"
        let denied = LoadGen.run(o)
        #expect(denied.ok == 0 && denied.errors["http_401"] == 50)
    }
}

/// Stores to a running service: `ocss import stores FILE --url` through `PUT /v1/stores`, in batches.
@Suite(.serialized, .ownThreads) struct StoreImportTests {
    @Test func storesGoToARunningServiceInBatches() throws {
        let live = try Live()
        defer { live.stop() }
        // 4,500 stores on a grid around Hangzhou: three requests of up to 2,000.
        var csv = "id,name,lat,lon,code,kind,status\n"
        for i in 0..<4500 {
            csv +=
                "S\(i),\"Store, \(i)\",\(30 + Double(i / 100) * 0.01),\(120 + Double(i % 100) * 0.01),C\(i),\(i == 7 ? "warehouse" : "store"),open\n"
        }
        let file = live.dir.file("stores.csv")
        try csv.write(toFile: file, atomically: true, encoding: .utf8)
        let summary = try StoreImport.send(path: file, host: "127.0.0.1", port: live.service.port, token: adminToken)
        #expect(summary == "4500 stores created, 0 replaced; the service has 4500")
        #expect(live.service.engine.storeCount == 4500)
        let s7 = parse(try live.http.send("GET", "/v1/stores/S7", headers: admin).body)
        #expect(s7["name"] as? String == "Store, 7" && s7["code"] as? String == "C7" && s7["kind"] as? String == "warehouse")
        // They route at once: an order standing on S4499 goes there.
        try live.putInventory("S4499", [("A", 1)])
        let o = parse(
            try live.http.send(
                "POST", "/v1/orders", headers: admin + json,
                body: orderBody(id: "imp", lat: 30.44, lon: 120.99, lines: [("A", 1)])
            ).body)
        #expect((o["assignment"] as? [String: Any])?["store_id"] as? String == "S4499", "\(o)")
        // The same file again replaces, creates nothing.
        #expect(
            try StoreImport.send(path: file, host: "127.0.0.1", port: live.service.port, token: adminToken)
                == "0 stores created, 4500 replaced; the service has 4500")
        // One bad store refuses its whole batch, by name; so does a store listed twice.
        let bad = try live.http.send(
            "PUT", "/v1/stores", headers: admin + json,
            body: #"{"stores":[{"id":"N1","name":"n","lat":30,"lon":120},{"id":"N2","name":"n","lat":95,"lon":120}]}"#)
        #expect(bad.status == 400 && bad.body.contains(#""field":"stores[1].lat""#), "\(bad.body)")
        let twice = try live.http.send(
            "PUT", "/v1/stores", headers: admin + json,
            body: #"{"stores":[{"id":"N1","name":"n","lat":30,"lon":120},{"id":"N1","name":"m","lat":30,"lon":120}]}"#)
        #expect(twice.status == 400 && twice.body.contains(#""field":"stores[1].id""#), "\(twice.body)")
        #expect(try live.http.send("PUT", "/v1/stores", headers: json, body: #"{"stores":[]}"#).status == 401)
        #expect(live.service.engine.storeCount == 4500)
        try live.restart()
        #expect(live.service.engine.storeCount == 4500)
        #expect(parse(try live.http.send("GET", "/v1/stores/S4499", headers: admin).body)["lat"] as? Double == 30.44)
    }
}

@Suite(.ownThreads) struct CLIHelpTests {
    func run(_ args: [String]) throws -> (status: Int32, out: String) { try runProgram(CrashTests.binary, args) }

    /// Issue 22.11: `ocss SUB --help` exited 64 with an error; there was no `--version`.
    @Test func helpForEachCommandAndTheVersion() throws {
        for args in [["import", "--help"], ["help", "import"], ["import", "-h"]] {
            let r = try run(args)
            #expect(r.status == 0 && r.out.contains("ocss import inventory FILE.csv") && !r.out.contains("ocss serve"), "\(args): \(r)")
        }
        let serve = try run(["serve", "--help"])
        #expect(serve.status == 0 && serve.out.contains("--webhook-freshness-s"))
        let all = try run(["help"])
        #expect(all.status == 0 && all.out.contains("ocss serve") && all.out.contains("ocss geocode"))
        let version = try run(["--version"])
        #expect(version.status == 0 && version.out == "ocss \(BuildInfo.version)\n")
        #expect(try run(["help", "nonsense"]).status == 64)
        #expect(try run(["nonsense"]).status == 64)
    }

    @Test func healthAndMetricsNameTheBuild() throws {
        let live = try Live()
        defer { live.stop() }
        let health = parse(try live.http.send("GET", "/healthz").body)
        #expect(health["status"] as? String == "ok" && health["version"] as? String == BuildInfo.version)
        #expect(try live.http.send("GET", "/metrics").body.contains("ocss_build_info{version=\"\(BuildInfo.version)\"} 1"))
    }
}

@Suite(.ownThreads) struct DeployFilesTests {
    /// Issue 22.12: the image's default command loaded the demo stores into a production volume, and the systemd unit
    /// rated 8.5 EXPOSED in `systemd-analyze security` and did not pass the --max-connections nginx.conf asks for.
    @Test func theImageAndTheUnitAreMadeForProduction() throws {
        let docker = try String(contentsOfFile: Live.packageRoot + "/Dockerfile", encoding: .utf8)
        let cmd = try #require(docker.split(separator: "\n").last { $0.hasPrefix("CMD ") })
        #expect(!cmd.contains("--demo"), "\(cmd)")
        let unit = try String(contentsOfFile: Live.packageRoot + "/deploy/ocss.service", encoding: .utf8)
        let nginx = try String(contentsOfFile: Live.packageRoot + "/deploy/nginx.conf", encoding: .utf8)
        #expect(nginx.contains("--max-connections 16384") && unit.contains("--max-connections 16384"))
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        let analyze = try runProgram(
            "/usr/bin/systemd-analyze", ["security", "--offline=true", "--threshold=20", Live.packageRoot + "/deploy/ocss.service"])
        #expect(analyze.status == 0, "systemd-analyze security rates deploy/ocss.service above 2.0 (its threshold is in tenths)")
    }
}

@Suite(.ownThreads) struct ShippedExamplesTests {
    /// Issue 22.13: the README named body files nobody shipped and a generator outside the repository. The examples in
    /// docs/examples are the README's, and they go through as written.
    @Test func theREADMEsIngestExamplesPass() throws {
        let dir = Live.packageRoot + "/docs/examples/"
        let shopify = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "shopify-orders-create.json")))
        let headers = ["X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": Signatures.shopify(body: shopify, secret: "example-secret")]
        let (code, out, err) = IngestCommand.run(platform: "shopify", secret: "example-secret", headers: headers, body: shopify)
        #expect(code == 0 && out.contains(#""platform_order_id":"5001002003004""#) && out.contains(#""sku":"SKU-1001""#), "\(err)")
        let taobao = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "taobao-trade-fullinfo.json")))
        let t = IngestCommand.run(platform: "taobao", secret: nil, headers: [:], body: taobao, detail: true)
        #expect(t.0 == 0 && t.1.contains(#""event":"order.paid""#), "\(t.2)")
        let readme = try String(contentsOfFile: Live.packageRoot + "/README.md", encoding: .utf8)
        #expect(!readme.contains("../shared") && FileManager.default.fileExists(atPath: Live.packageRoot + "/Benchmarks/data/gen_dataset.py"))
    }

    @Test func theExampleOrderRoutesOnTheDemoStores() throws {
        let live = try Live(demo: true)
        defer { live.stop() }
        let body = try String(contentsOfFile: Live.packageRoot + "/docs/examples/order.json", encoding: .utf8)
        let r = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body)
        #expect(r.status == 201 && parse(r.body)["status"] as? String == "assigned", "\(r.body)")
    }
}
