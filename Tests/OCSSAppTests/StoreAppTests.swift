import Foundation
import OCSSApp
import OCSSCore
import OCSSEngine
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// Issue 21: the store's own app at `/store`, through the app's route table (the browser test is `StoreAppBrowserTests`).
@Suite(.ownThreads) struct StoreAppTests {
    /// Pairs a device of `store` through a one-time link: its cookie.
    static func pair(_ live: Live, _ store: String) throws -> String {
        let link = parse(try live.api.send("POST", "/v1/stores/\(store)/links", headers: admin).body)
        let path = try #require(link["path"] as? String)
        #expect((link["url"] as? String)?.hasSuffix(path) == true && (link["qr_svg"] as? String)?.hasPrefix("<svg") == true)
        #expect(try live.api.send("GET", path).status == 200)  // the confirmation page spends nothing
        let code = String(path.split(separator: "=").last ?? "")
        let paired = try live.api.send("POST", "/store/pair", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "code=\(code)")
        #expect(paired.status == 303 && paired.headers["location"] == "/store")
        let cookie = try #require(paired.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
        #expect(paired.headers["set-cookie"]?.contains("HttpOnly") == true && paired.headers["set-cookie"]?.contains("SameSite=Strict") == true)
        // Once only.
        #expect(
            try live.api.send("POST", "/store/pair", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "code=\(code)").status
                == 401)
        return cookie
    }

    static func formToken(_ page: String) -> String {
        guard let r = page.range(of: #"name="form_token" value=""#) else { return "" }
        return String(page[r.upperBound...].prefix(32))
    }

    @Test func aPairedDeviceRunsTheDayAndSeesOnlyItsStore() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("A", lat: 30, lon: 120)
        try live.putStore("B", lat: 31, lon: 121)
        try live.putInventory("A", [("X", 10), ("Y", 10)])
        try live.putInventory("B", [("X", 10)])
        let a = try Self.pair(live, "A"), b = try Self.pair(live, "B")
        // The device's token is a store token like any other: listed, and it signs in at /login too.
        let tokens = parse(try live.api.send("GET", "/v1/stores/A/tokens", headers: admin).body)["tokens"] as? [[String: Any]]
        #expect(tokens?.count == 1)
        #expect(try live.api.send("GET", "/store").status == 303)  // no device: to the sign-in page
        let body =
            orderBody(id: "s1", lat: 30, lon: 120, lines: [("X", 2), ("Y", 1)])
            .replacingOccurrences(of: #""sku":"X","quantity":2}"#, with: #""sku":"X","quantity":2,"title":"矿泉水","spec":"550ml"}"#)
            .replacingOccurrences(of: #""lines":"#, with: #""remark":"少冰","pickup_no":"18","delivery_by":"platform_rider","lines":"#)
        #expect(try live.api.send("POST", "/v1/orders", headers: admin + json, body: body).status == 201)
        let home = try live.api.send("GET", "/store", headers: [("Cookie", a)])
        #expect(home.status == 200 && home.headers["content-security-policy"]?.contains("script-src 'self'") == true)
        #expect(home.body.contains("#18") && home.body.contains("矿泉水") && home.body.contains("550ml") && home.body.contains("少冰"))
        #expect(home.body.contains(#"data-status="assigned""#) && home.body.contains("接单 Accept by"))
        // Store B's device sees nothing of it, and cannot act on it.
        let other = try live.api.send("GET", "/store", headers: [("Cookie", b)])
        #expect(other.status == 200 && !other.body.contains("矿泉水") && !other.body.contains("data-assignment"))
        let aid = try #require(home.body.range(of: #"data-assignment=""#).map { home.body[$0.upperBound...].prefix { $0.isNumber } })
        let formA = Self.formToken(home.body), formB = Self.formToken(other.body)
        let form = [("Content-Type", "application/x-www-form-urlencoded")]
        let stolen = try live.api.send("POST", "/store/assignments/\(aid)/accept", headers: form + [("Cookie", b)], body: "form_token=\(formB)")
        #expect(stolen.status == 404)
        #expect(try live.api.send("GET", "/store/print?ids=\(aid)", headers: [("Cookie", b)]).status == 404)
        // A form without its token (another site's) is refused.
        #expect(try live.api.send("POST", "/store/assignments/\(aid)/accept", headers: form + [("Cookie", a)], body: "form_token=x").status == 403)
        // Accept, ready, hand over: each a form post answered by a redirect to the list.
        for action in ["accept", "ready"] {
            let r = try live.api.send("POST", "/store/assignments/\(aid)/\(action)", headers: form + [("Cookie", a)], body: "form_token=\(formA)")
            #expect(r.status == 303 && r.headers["location"] == "/store", "\(action): \(r.status) \(r.headers)")
        }
        let ready = try live.api.send("GET", "/store", headers: [("Cookie", a)])
        #expect(
            ready.body.contains(#"data-status="ready""#) && ready.body.contains(#"data-action="hand_over""#) && ready.body.contains("备好 Ready by"))
        // The pick list: lines grouped by SKU with their titles, the note, the day number.
        let print = try live.api.send("GET", "/store/print?ids=\(aid)&paper=58", headers: [("Cookie", a)])
        #expect(print.status == 200 && print.body.contains("矿泉水") && print.body.contains("少冰") && print.body.contains("#18"))
        #expect(print.body.contains("class=\"print p58\"") && print.body.contains("@media print"))
        // A bad print link is answered as a page a person can read, not JSON.
        let bad = try live.api.send("GET", "/store/print?ids=abc", headers: [("Cookie", a)])
        #expect(bad.status == 400 && bad.headers["content-type"]?.hasPrefix("text/html") == true && bad.body.contains("ids is 1 to 200"))
        let wrong = try live.api.send("POST", "/store/assignments/\(aid)/pickup", headers: form + [("Cookie", a)], body: "form_token=\(formA)")
        #expect(wrong.status == 303)  // the buyer came to the counter after all: collected, final
        let gone = try live.api.send("GET", "/store", headers: [("Cookie", a)])
        #expect(!gone.body.contains("data-assignment=\"\(aid)\""))
        let status = parse(try live.api.send("GET", "/v1/orders", headers: admin).body)
        #expect(((status["orders"] as? [[String: Any]])?.first?["status"] as? String) == "picked_up")
        // The list says why an order left it when the store did not take it out of the door: a cancellation.
        #expect(
            try live.api.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "s2", lat: 30, lon: 120, lines: [("X", 1)])).status
                == 201)
        let orders = parse(try live.api.send("GET", "/v1/orders?status=assigned", headers: admin).body)["orders"] as? [[String: Any]]
        let second = try #require(orders?.first?["order_id"] as? Int)
        #expect(try live.api.send("POST", "/v1/orders/\(second)/cancel", headers: admin).status == 200)
        let closed = try live.api.send("GET", "/store?fragment=1", headers: [("Cookie", a)])
        #expect(
            closed.body.hasPrefix("<section id=\"list\"") && closed.body.contains("最近结束 Recently closed") && closed.body.contains("已取消 Cancelled"))
        // Out of stock from the list.
        let out = try live.api.send("POST", "/store/stockouts", headers: form + [("Cookie", a)], body: "form_token=\(formA)&sku=Y")
        #expect(out.status == 303 && out.headers["location"] == "/store?notice=out-of-stock&arg=Y")
        // What the list says comes from fixed texts: a link cannot put its own words (or markup) on the page.
        let said = try live.api.send("GET", "/store?notice=out-of-stock&arg=%3Cb%3EY", headers: [("Cookie", a)]).body
        #expect(said.contains("&lt;b&gt;Y 已标记缺货") && !said.contains("<b>Y"))
        #expect(!(try live.api.send("GET", "/store?notice=anything&msg=hello", headers: [("Cookie", a)]).body.contains("hello")))
        #expect(live.service.engine.available(storeID: "A", sku: "Y") == 0)
        // Signing out revokes the device's token: the cookie no longer opens the page.
        #expect(try live.api.send("POST", "/store/logout", headers: form + [("Cookie", a)], body: "form_token=\(formA)").status == 303)
        #expect(try live.api.send("GET", "/store", headers: [("Cookie", a)]).status == 303)
        #expect((parse(try live.api.send("GET", "/v1/stores/A/tokens", headers: admin).body)["tokens"] as? [[String: Any]])?.isEmpty == true)
    }

    @Test func aStoreTokenSignsInAtLoginAndTheFeedWaits() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("A", lat: 30, lon: 120)
        try live.putInventory("A", [("X", 10)])
        let token = try live.token(for: "A")
        let login = try live.api.send("POST", "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=\(token)")
        #expect(login.status == 303 && login.headers["location"] == "/store")
        let cookie = try #require(login.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
        let start = parse(try live.api.send("GET", "/store/feed", headers: [("Cookie", cookie)]).body)["next_cursor"] as? String
        // A waiting feed request wakes when an order is assigned to the store.
        let woke = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let r = try? live.api.send("GET", "/store/feed?after=\(start ?? "0")&wait=10", headers: [("Cookie", cookie)])
            if let r, parse(r.body)["next_cursor"] as? String != start { woke.signal() }
        }
        usleep(200_000)
        #expect(
            try live.api.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "f1", lat: 30, lon: 120, lines: [("X", 1)])).status
                == 201)
        #expect(woke.wait(timeout: .now() + 3) == .success)
        #expect(try live.api.send("GET", "/store/app.js").body.contains("/store/feed?after="))
    }
}

/// Issue 21, done means: the pick list for an order from each fixture platform shows its lines' titles and the buyer's
/// note, copied from the platform's own payload.
@Suite(.ownThreads) struct PickListFromEachPlatformTests {
    static func file(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: Live.packageRoot + path))) }

    @Test func eachPlatformsTitlesAndNoteReachThePickList() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("HZ", lat: 30.279, lon: 120.13)
        try live.putInventory("HZ", [("SKU-1001", 100)])
        let device = try StoreAppTests.pair(live, "HZ")
        let fixtures = "/Tests/OCSSPlatformsTests/Fixtures/"
        func parse(_ platform: String, _ body: [UInt8], contentType: String) throws -> CanonicalOrder {
            let headers = ["Content-Type": contentType, "X-Shopify-Topic": "orders/create", "Event-Type": "trade_TradePaid"]
            let outcome = try Adapters.adapter(for: platform)!.parse(InboundMessage(headers: headers, body: body))
            guard case .event(let o) = outcome else { throw InProcessTimeout(method: "parse", path: platform) }
            return o
        }
        guard
            case .event(let taobao) = try AdapterOutcome.fromDetail(
                platform: "taobao", body: try Self.file("/docs/examples/taobao-trade-fullinfo.json"))
        else { throw InProcessTimeout(method: "parse", path: "taobao") }
        let orders: [(CanonicalOrder, title: String, note: String)] = [
            (
                try parse("shopify", try Self.file("/docs/examples/shopify-orders-create.json"), contentType: "application/json"),
                "农夫山泉 矿泉水", "放前台，谢谢"
            ),
            (taobao, "农夫山泉 矿泉水 550ml×2", "尽快发货"),
            (try parse("meituan", try Self.file(fixtures + "meituan.form"), contentType: "application/x-www-form-urlencoded"), "矿泉水", "少冰，放前台"),
            (try parse("eleme", try Self.file(fixtures + "eleme.json"), contentType: "application/json"), "矿泉水 550ml", "不要辣"),
            (try parse("youzan", try Self.file(fixtures + "youzan.json"), contentType: "application/json"), "农夫山泉 矿泉水 550ml", "请放门口"),
        ]
        for (order, title, note) in orders {
            let posted = try live.api.send(
                "POST", "/v1/orders", headers: admin + json, body: String(decoding: CanonicalJSON.encode(order), as: UTF8.self))
            #expect(posted.status == 201, "\(order.platform): \(posted.body)")
            let aid = try #require((OCSSAppTests.parse(posted.body)["assignment"] as? [String: Any])?["assignment_id"] as? Int, "\(order.platform)")
            let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", device)]
            let home = try live.api.send("GET", "/store", headers: [("Cookie", device)])
            #expect(
                try live.api.send("POST", "/store/assignments/\(aid)/accept", headers: form, body: "form_token=\(StoreAppTests.formToken(home.body))")
                    .status == 303)
            let print = try live.api.send("GET", "/store/print?ids=\(aid)", headers: [("Cookie", device)])
            #expect(print.status == 200 && print.body.contains(title) && print.body.contains(note), "\(order.platform): \(title) / \(note)")
        }
    }
}

/// Issue 21: a store may accept every order at once (自动接单), on intake and when a reroute brings one.
@Suite(.ownThreads) struct AutoAcceptTests {
    @Test func aStoreThatAcceptsEverythingGetsItsOrdersAccepted() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("near", lat: 30, lon: 120)
        #expect(
            try live.api.send(
                "PUT", "/v1/stores/auto", headers: admin + json, body: #"{"name":"Auto","lat":30,"lon":120.05,"rules":{"auto_accept":true}}"#
            ).status == 201)
        try live.putInventory("near", [("X", 10)])
        try live.putInventory("auto", [("X", 10)])
        #expect((parse(try live.api.send("GET", "/v1/stores/auto", headers: admin).body)["rules"] as? [String: Any])?["auto_accept"] as? Bool == true)
        func status(_ id: Int) throws -> String? { parse(try live.api.send("GET", "/v1/orders/\(id)", headers: admin).body)["status"] as? String }
        // The nearest store does not auto-accept: its order waits for it.
        let first = parse(
            try live.api.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "aa1", lat: 30, lon: 120, lines: [("X", 1)])).body)
        let firstID = try #require(first["order_id"] as? Int)
        usleep(200_000)
        #expect(try status(firstID) == "assigned")
        // It rejects; the reroute lands on the store that accepts everything, which accepts it.
        let aid = try #require((first["assignment"] as? [String: Any])?["assignment_id"] as? Int)
        let token = try live.token(for: "near")
        #expect(
            try live.api.send(
                "POST", "/v1/assignments/\(aid)/reject", headers: [("Authorization", "Bearer \(token)")] + json, body: #"{"reason":"too_busy"}"#
            )
            .status == 200)
        #expect(eventually { (try? status(firstID)) == "accepted" })
        // An order routed straight to it is accepted too, by the system, with its event.
        let second = parse(
            try live.api.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "aa2", lat: 30, lon: 120.05, lines: [("X", 1)])).body)
        let secondID = try #require(second["order_id"] as? Int)
        #expect(second["status"] as? String == "assigned")  // the intake answer is the routing decision
        #expect(eventually { (try? status(secondID)) == "accepted" })
        let events = parse(try live.api.send("GET", "/v1/platforms/direct/orders/aa2", headers: admin).body)["events"] as? [[String: Any]]
        #expect(events?.last?["type"] as? String == "accepted" && events?.last?["actor"] as? String == "system:auto_accept", "\(events ?? [])")
        // The near store turns it on from its own app; its next order is accepted without a tap, and its rules keep the rest.
        let device = try StoreAppTests.pair(live, "near")
        let home = try live.api.send("GET", "/store", headers: [("Cookie", device)])
        #expect(home.body.contains("Auto-accept is off"))
        let set = try live.api.send(
            "POST", "/store/settings", headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", device)],
            body: "form_token=\(StoreAppTests.formToken(home.body))&auto_accept=on")
        #expect(set.status == 303 && set.headers["location"] == "/store?notice=auto-accept-on")
        #expect(try live.api.send("GET", "/store", headers: [("Cookie", device)]).body.contains("Auto-accept is on"))
        let third = parse(
            try live.api.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "aa3", lat: 30, lon: 120, lines: [("X", 1)])).body)
        let thirdID = try #require(third["order_id"] as? Int)
        #expect((third["assignment"] as? [String: Any])?["store_id"] as? String == "near")
        #expect(eventually { (try? status(thirdID)) == "accepted" })
    }
}

/// Issue 21: the admin pairs a store's device from the dashboard: a QR code on the screen, scanned by the tablet.
@Suite(.ownThreads) struct DashboardPairingTests {
    @Test func theDashboardShowsAPairingQRCodeThatWorksOnce() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("A", lat: 30, lon: 120)
        let form = [("Content-Type", "application/x-www-form-urlencoded")]
        #expect(try live.api.send("POST", "/dashboard/pair", headers: form, body: "store=A").status == 303)  // no session
        let login = try live.api.send("POST", "/login", headers: form, body: "token=\(adminToken)")
        let session = try #require(login.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
        #expect(try live.api.send("GET", "/dashboard", headers: [("Cookie", session)]).body.contains(#"action="/dashboard/pair""#))
        let page = try live.api.send("POST", "/dashboard/pair", headers: form + [("Cookie", session), ("Host", "127.0.0.1:8080")], body: "store=A")
        #expect(page.status == 200 && page.body.contains("<svg") && page.body.contains("http://127.0.0.1:8080/store/pair?code=pair_"))
        #expect(try live.api.send("POST", "/dashboard/pair", headers: form + [("Cookie", session)], body: "store=nope").status == 404)
        let path = try #require(page.body.range(of: "/store/pair?code=").map { String(page.body[$0.lowerBound...].prefix { $0 != "\"" }) })
        #expect(try live.api.send("GET", path).status == 200)
        let code = String(path.split(separator: "=").last ?? "")
        #expect(try live.api.send("POST", "/store/pair", headers: form, body: "code=\(code)").status == 303)
        #expect(try live.api.send("POST", "/store/pair", headers: form, body: "code=\(code)").status == 401)
    }
}
