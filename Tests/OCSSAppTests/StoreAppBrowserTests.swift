import Foundation
import Glibc
import OCSSApp
import OCSSHTTP
import OCSSTestSupport
import Testing

/// Issue 21, done means: a real headless Chromium, driven over the DevTools protocol (`scripts/cdp.py`), opens a
/// one-time link, sees a new order appear without reloading, accepts it, marks it ready and hands it over; the order's
/// status follows and Meituan hears its calls.
@Suite(.serialized, .ownThreads) struct StoreAppBrowserTests {
    /// A running headless Chromium with its DevTools port.
    final class Browser {
        let process = Process()
        let port: Int

        init(chromium: String, dir: String) throws {
            port = Browser.freePort()
            process.executableURL = URL(fileURLWithPath: chromium)
            process.arguments = [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--remote-debugging-port=\(port)", "--user-data-dir=\(dir)", "--window-size=390,844", "about:blank",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let up = eventually(15) { (try? cdp(["eval", "1"])) as? Int == 1 }
            guard up else { throw BrowserError(message: "Chromium's DevTools port did not open") }
        }

        deinit { close() }

        /// Ends the browser (before the service stops: its open long poll would hold the server's stop).
        func close() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        static func freePort() -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { Glibc.close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            return Int(UInt16(bigEndian: addr.sin_port))
        }

        /// Runs one DevTools command through the helper; its JSON answer.
        @discardableResult
        func cdp(_ args: [String]) throws -> Any? {
            let r = try runProgram("/usr/bin/python3", [Live.packageRoot + "/scripts/cdp.py", String(port)] + args)
            guard r.status == 0 else { throw BrowserError(message: "cdp \(args.first ?? ""): \(r.out)") }
            return try JSONSerialization.jsonObject(with: Data(r.out.utf8), options: [.fragmentsAllowed])
        }

        @discardableResult
        func eval(_ js: String) throws -> Any? { try cdp(["eval", js]) }

        /// Waits for `js` to be true in the page (up to `seconds`); whether it became so.
        func until(_ js: String, seconds: Double = 10) -> Bool { eventually(seconds) { (try? eval(js)) as? Bool == true } }
    }

    struct BrowserError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    @Test func aDevicePairsSeesANewOrderLiveAndHandsItOver() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            Issue.record("chromium is not installed (scripts/install-deps.sh test installs it)")
            return
        }
        let fake = try FakePlatforms()
        defer { fake.server.stop() }
        let live = try Live {
            $0.outbox.baseDelay = 0.05; $0.outbox.pollInterval = 0.05
        }
        defer { live.stop() }
        try live.putStore("A", lat: 30, lon: 120)
        try live.putInventory("A", [("SKU-1001", 20)])
        let creds = #"{"base_url":"\#(fake.base)","app_key":"mt-app","app_secret":"\#(FakePlatforms.secret)"}"#
        #expect(try live.http.send("PUT", "/v1/platforms/meituan/credentials", headers: admin + json, body: creds).status == 200)
        let link = parse(
            try live.http.send("POST", "/v1/stores/A/links", headers: admin + [("Host", "127.0.0.1:\(live.service.port)")]).body)
        let url = try #require(link["url"] as? String)

        let browser = try Browser(chromium: chromium, dir: live.dir.file("chrome"))
        try browser.cdp(["navigate", url])
        #expect(browser.until(#"!!document.getElementById("pair")"#), "the link's confirmation page")
        try browser.eval(#"document.getElementById("pair").click(); true"#)
        #expect(browser.until(#"location.pathname === "/store" && !!document.getElementById("list")"#), "paired and on the list")
        #expect(try browser.eval(#"document.querySelectorAll("[data-assignment]").length"#) as? Int == 0)
        // Marks this page load: still there after the order appears means the page was not reloaded.
        try browser.eval("window.ocssTestMark = 1; true")
        usleep(300_000)  // the script's first long poll is parked

        let body =
            #"{"platform":"meituan","event":"order.paid","platform_order_id":"27061900338318740","idempotency_key":"meituan:27061900338318740:2","#
            + #""pickup_no":"18","remark":"少冰，放前台","delivery_by":"platform_rider","#
            + #""shipping":{"coordinates":{"lat":30,"lon":120,"crs":"WGS84"}},"lines":[{"sku":"SKU-1001","title":"矿泉水","spec":"550ml","quantity":2}]}"#
        let posted = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body)
        #expect(posted.status == 201)
        let orderID = try #require(parse(posted.body)["order_id"] as? Int)
        // Within 2 s, without a reload: the card, its sound's badge in the title.
        #expect(browser.until(#"document.querySelectorAll("[data-assignment]").length === 1"#, seconds: 2), "the new order did not appear within 2 s")
        #expect(try browser.eval("window.ocssTestMark") as? Int == 1)
        #expect((try browser.eval("document.title") as? String)?.hasPrefix("(1) ") == true)
        let text = try browser.eval(#"document.getElementById("list").innerText"#) as? String ?? ""
        #expect(text.contains("#18") && text.contains("矿泉水") && text.contains("少冰，放前台"), "\(text)")

        // Screenshots at a phone's and a desktop's width, drawn (not a blank page).
        for (width, height) in [(390, 844), (1280, 900)] {
            let shot = live.dir.file("store-\(width).png")
            try browser.cdp(["screenshot", String(width), String(height), shot])
            let png = try Data(contentsOf: URL(fileURLWithPath: shot))
            #expect(png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(width) px: \(png.count) bytes")
            #expect(CRMTests.distinctColours(png) > 50, "\(width) px screenshot looks blank")
            if let keep = ProcessInfo.processInfo.environment["OCSS_KEEP_SCREENSHOT"] {
                try? png.write(to: URL(fileURLWithPath: "\(keep).store-\(width).png"))
            }
        }

        // One tap each: accept, ready, hand over. Each is a form post; the list comes back with the new state.
        try browser.eval(#"document.querySelector("[data-action=accept]").click(); true"#)
        #expect(browser.until(#"!!document.querySelector("[data-status=accepted]")"#), "accepted")
        try browser.eval(#"document.querySelector("[data-action=ready]").click(); true"#)
        #expect(browser.until(#"!!document.querySelector("[data-status=ready]")"#), "ready")
        try browser.eval(#"document.querySelector("[data-action=hand_over]").click(); true"#)
        #expect(browser.until(#"!!document.getElementById("list") && document.querySelectorAll("[data-assignment]").length === 0"#), "handed over")

        let order = parse(try live.http.send("GET", "/v1/orders/\(orderID)", headers: admin).body)
        #expect(order["status"] as? String == "handed_over")
        // Meituan heard the acceptance and 出餐完成 (which calls its rider), signed.
        let heard = eventually {
            let names = fake.calls.filter { $0.platform == "meituan" && $0.order == "27061900338318740" }.map(\.name)
            return names.contains("order/confirm") && names.contains("order/preparationMealComplete")
        }
        #expect(heard, "\(fake.calls)")
        #expect(fake.calls.allSatisfy { $0.verified })
        browser.close()
    }
}
