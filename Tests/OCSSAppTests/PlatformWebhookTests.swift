import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSCore
import OCSSPlatforms
import OCSSStore
import OCSSTestSupport
import Synchronization
@testable import ocss
import Testing

@Suite(.serialized, .ownThreads) struct PlatformWebhookTests {
    static let secret = "shpss_0123456789abcdef"
    static let body =
        #"{"id":820982911946154508,"financial_status":"paid","currency":"CNY","total_price":"59.80","#
        + #""shipping_address":{"name":"张三","address1":"文三路398号","city":"杭州市","country_code":"CN","latitude":30.0,"longitude":119.99},"#
        + #""line_items":[{"sku":"A","variant_id":1,"quantity":2,"price":"29.90","requires_shipping":true}]}"#

    func headers(_ body: String, topic: String = "orders/create", secret: String = secret) -> [(String, String)] {
        [
            ("Content-Type", "application/json"), ("X-Shopify-Topic", topic),
            ("X-Shopify-Hmac-Sha256", Signatures.shopify(body: Array(body.utf8), secret: secret)),
        ]
    }

    /// Saves the shop's Shopify credentials (the webhook secret the signatures are checked with).
    func saveSecret(_ live: Live) throws {
        try live.http.send(
            "PUT", "/v1/platforms/shopify/credentials", headers: admin + json,
            body: #"{"base_url":"https://x.myshopify.com","app_secret":"\#(Self.secret)"}"#)
    }

    @Test func shopifyWebhookRoutesOnceAndCancels() throws {
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        _ = shop
        try saveSecret(live)
        let first = try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(Self.body), body: Self.body)
        #expect(first.status == 200)
        #expect(first.body.isEmpty)  // Shopify wants any 2xx
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 3)
        // Shopify redelivers the same bytes: same answer, nothing new.
        #expect(try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(Self.body), body: Self.body).status == 200)
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 3)
        let polled = parse(try live.http.send("GET", "/v1/platforms/shopify/orders/820982911946154508", headers: admin).body)
        #expect(polled["status"] as? String == "assigned")
        // A forged delivery: 401, nothing stored.
        let forged = Self.body.replacingOccurrences(of: "820982911946154508", with: "820982911946154509")
        let r = try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(forged, secret: "guess"), body: forged)
        #expect(r.status == 401)
        #expect(r.body.contains(#""field":"X-Shopify-Hmac-Sha256""#))
        #expect(try live.http.send("GET", "/v1/platforms/shopify/orders/820982911946154509", headers: admin).status == 404)
        // Malformed: 400 naming the field.
        let bad = #"{"id":5,"line_items":[{"quantity":"x"}]}"#
        let b = try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(bad), body: bad)
        #expect(b.status == 400 && b.body.contains(#""field":"line_items[0].quantity""#))
        // Wrong content type: 415 naming the header.
        let wrong = try live.http.send(
            "POST", "/v1/platforms/shopify/webhook", headers: [("Content-Type", "text/plain")] + headers(Self.body).dropFirst(), body: Self.body)
        #expect(wrong.status == 415 && wrong.body.contains(#""field":"Content-Type""#))
        // Truncated JSON, correctly signed: 400.
        let cut = String(Self.body.prefix(60))
        #expect(try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(cut), body: cut).status == 400)
        // Unknown platform 404; unrelated topic acknowledged.
        #expect(try live.http.send("POST", "/v1/platforms/myspace/webhook", headers: json, body: "{}").status == 404)
        #expect(
            try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers("{}", topic: "products/update"), body: "{}").status == 200)
        // The platform cancels: the reservation goes back.
        let cancel = #"{"id":820982911946154508,"cancelled_at":"2024-05-19T08:00:00-04:00"}"#
        #expect(
            try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(cancel, topic: "orders/cancelled"), body: cancel).status
                == 200)
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 5)
        let after = parse(try live.http.send("GET", "/v1/platforms/shopify/orders/820982911946154508", headers: admin).body)
        #expect(after["status"] as? String == "cancelled")
    }

    @Test func aPlatformCancellationCancelsThePartsSplitOffTheOrder() throws {
        let live = try Live()
        defer { live.stop() }
        let shop = try Shop(live: live)
        try saveSecret(live)
        let body = Self.body.replacingOccurrences(of: "820982911946154508", with: "820982911946154700")
            .replacingOccurrences(
                of: #""requires_shipping":true}]"#,
                with: #""requires_shipping":true},{"sku":"B","variant_id":2,"quantity":1,"price":"9.90","requires_shipping":true}]"#)
        #expect(try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(body), body: body).status == 200)
        let feed = parse(
            try live.http.send("GET", "/v1/stores/near/assignments?after=0", headers: [("Authorization", "Bearer \(shop.tokens["near"]!)")]).body)
        let assignment = try #require((feed["assignments"] as? [[String: Any]])?.first?["assignment_id"] as? Int)
        // "near" lacks B: B leaves as a part of its own, routed to "mid".
        let split = try shop.act(assignment, "reject", as: "near", body: #"{"reason":"out_of_stock","skus":["B"],"partial":true}"#)
        #expect(split.status == 200 && split.body.contains(#""split""#), "\(split.body)")
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 3)
        #expect(live.service.engine.available(storeID: "mid", sku: "B") == 4)
        // The buyer cancels the order on Shopify: the part goes too, and every unit is back.
        let cancel = #"{"id":820982911946154700,"cancelled_at":"2024-05-19T08:00:00-04:00"}"#
        #expect(
            try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(cancel, topic: "orders/cancelled"), body: cancel).status
                == 200)
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 5)
        #expect(live.service.engine.available(storeID: "mid", sku: "B") == 5)
        let db = try live.database()
        #expect(try db.query("SELECT status FROM orders ORDER BY id") { $0.text(0) } == ["cancelled", "cancelled"])
    }

    @Test func aCancellationBeforeTheOrderKeepsItFromBeingRouted() throws {
        let live = try Live()
        defer { live.stop() }
        _ = try Shop(live: live)
        try saveSecret(live)
        // orders/create failed during an outage; the buyer cancels; Shopify's retry of orders/create comes after.
        let cancel = #"{"id":820982911946154800,"cancelled_at":"2024-05-19T08:00:00-04:00"}"#
        #expect(
            try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(cancel, topic: "orders/cancelled"), body: cancel).status
                == 200)
        let create = Self.body.replacingOccurrences(of: "820982911946154508", with: "820982911946154800")
        func check(_ when: String) throws {
            let late = try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(create), body: create)
            #expect(late.status == 200, "\(when): Shopify gets its ack and stops retrying")
            #expect(live.service.engine.available(storeID: "near", sku: "A") == 5, "\(when)")
            let direct = try live.http.send(
                "POST", "/v1/orders", headers: admin + json,
                body: orderBody(
                    id: "820982911946154800", lat: 30, lon: 120,
                    lines: [("A", 1)], key: "shopify:direct-retry"
                ).replacingOccurrences(of: #""platform":"direct""#, with: #""platform":"shopify""#))
            #expect(direct.status == 409 && direct.body.contains("platform_order_cancelled"), "\(when): \(direct.body)")
            let db = try live.database()
            #expect(try db.query("SELECT COUNT(*) FROM orders") { $0.int(0) } == [0], "\(when)")
            // A platform that polls sees it cancelled, not unknown.
            let polled = try live.http.send("GET", "/v1/platforms/shopify/orders/820982911946154800", headers: admin)
            #expect(polled.status == 200 && parse(polled.body)["status"] as? String == "cancelled", "\(when): \(polled.body)")
        }
        try check("running")
        try live.restart()
        try check("after a restart")
    }

    @Test func createAndCancelRacingLeaveNothingReserved() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        try saveSecret(live)
        let http = live.http
        let statuses = Mutex<[Int]>([])
        // Each order's create and cancel arrive at once, in either order, some while the create is being committed.
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let id = 820982911946155000 + i / 2
            let body =
                i % 2 == 0
                ? Self.body.replacingOccurrences(of: "820982911946154508", with: "\(id)")
                : #"{"id":\#(id),"cancelled_at":"2024-05-19T08:00:00-04:00"}"#
            let r = try? http.send(
                "POST", "/v1/platforms/shopify/webhook", headers: headers(body, topic: i % 2 == 0 ? "orders/create" : "orders/cancelled"),
                body: body)
            statuses.withLock { $0.append(r?.status ?? -1) }
        }
        #expect(statuses.withLock { $0 }.allSatisfy { $0 == 200 }, "\(statuses.withLock { $0 })")
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 100)
        let db = try live.database()
        #expect(try db.query("SELECT COUNT(*) FROM orders WHERE status != 'cancelled'") { $0.int(0) } == [0])
        #expect(try db.query("SELECT COALESCE(SUM(reserved), 0) FROM inventory") { $0.int(0) } == [0])
    }

    @Test func anOverLongBuyerAddressFromAPlatformIsCutNotRefused() throws {
        // The platform cannot change what the buyer typed: a 400 would lose the order (or see it redelivered
        // forever). The buyer's text is cut to its limits, and the order routes.
        let live = try Live()
        defer { live.stop() }
        _ = try Shop(live: live)
        try saveSecret(live)
        let long = Self.body.replacingOccurrences(of: "文三路398号", with: String(repeating: "文三路398号", count: 400))
            .replacingOccurrences(of: "820982911946154508", with: "820982911946154600")
        let r = try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(long), body: long)
        #expect(r.status == 200, "\(r.body)")
        let polled = parse(try live.http.send("GET", "/v1/platforms/shopify/orders/820982911946154600", headers: admin).body)
        #expect(polled["status"] as? String == "assigned")
        let id = try #require(polled["order_id"] as? Int)
        let shipping =
            (parse(try live.http.send("GET", "/v1/orders/\(id)", headers: admin).body)["order"] as? [String: Any])?["shipping"] as? [String: Any]
        let detail = try #require(shipping?["detail"] as? String)
        let text = try #require(shipping?["text"] as? String)
        #expect(detail.unicodeScalars.count == 500 && detail.hasPrefix("文三路398号文三路398号"))
        #expect(text.unicodeScalars.count <= 1000)
        // The merchant's own API still refuses it, naming the field: that caller can fix its input.
        let direct = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body:
                #"{"platform":"direct","event":"order.paid","platform_order_id":"L1","idempotency_key":"direct:L1","shipping":{"detail":"\#(String(repeating: "路", count: 501))","coordinates":{"lat":30,"lon":120,"crs":"WGS84"}},"lines":[{"sku":"A","quantity":1}]}"#
        )
        #expect(direct.status == 400 && direct.body.contains(#""field":"shipping.detail""#))
    }

    @Test func wooCommercePingIsAcknowledgedUnsigned() throws {
        let live = try Live()
        defer { live.stop() }
        let r = try live.http.send(
            "POST", "/v1/platforms/woocommerce/webhook", headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "webhook_id=12")
        #expect(r.status == 200)
        #expect(r.body == #"{"ok":true}"#)
    }

    /// An order paid before the shop was connected is being fulfilled by the shop's old process: its next update
    /// (processing again, after a note or an edit) must not route it. One paid after the connection is routed.
    @Test func wooCommerceOrderPaidBeforeTheConnectionIsNotRouted() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock)
        defer { live.stop() }
        // WooCommerce's GMT times have no Z.
        let at = { (offset: Double) in String(Timestamps.format(Int64(clock.now() + offset)).dropLast()) }
        _ = try Shop(live: live)
        let secret = "wc-secret-0123"
        #expect(
            try live.http.send(
                "PUT", "/v1/platforms/woocommerce/credentials", headers: admin + json,
                body: #"{"base_url":"https://shop.example.cn","app_secret":"\#(secret)"}"#
            ).status == 200)
        func update(_ id: Int, paid: String) throws -> RawHTTP.Reply {
            let body =
                #"{"id":\#(id),"status":"processing","currency":"CNY","total":"29.90","date_created_gmt":"\#(paid)","date_paid_gmt":"\#(paid)","#
                + #""date_modified_gmt":"2099-01-01T00:00:00","billing":{"first_name":"四","last_name":"李","phone":"13900139000","state":"CN12","#
                + #""city":"杭州市","country":"CN","address_1":"西湖区文三路398号"},"line_items":[{"id":9,"product_id":93,"sku":"A","quantity":1,"price":"29.90"}]}"#
            return try live.http.send(
                "POST", "/v1/platforms/woocommerce/webhook",
                headers: [
                    ("Content-Type", "application/json"), ("X-WC-Webhook-Topic", "order.updated"),
                    ("X-WC-Webhook-Signature", Signatures.shopify(body: Array(body.utf8), secret: secret)),
                ], body: body)
        }
        #expect(try update(9001, paid: at(-3600)).status == 200)
        #expect(try live.http.send("GET", "/v1/platforms/woocommerce/orders/9001", headers: admin).status == 404)
        #expect(try update(9002, paid: at(60)).status == 200)
        let routed = parse(try live.http.send("GET", "/v1/platforms/woocommerce/orders/9002", headers: admin).body)
        #expect(routed["status"] as? String == "assigned")
        // Saving the credentials again, days later, keeps the first connection time: an order paid in between is routed.
        clock.advance(10 * 86_400)
        #expect(
            try live.http.send(
                "PUT", "/v1/platforms/woocommerce/credentials", headers: admin + json,
                body: #"{"base_url":"https://shop.example.cn","app_secret":"\#(secret)"}"#
            ).status == 200)
        #expect(try update(9003, paid: at(-5 * 86_400)).status == 200)
        #expect(parse(try live.http.send("GET", "/v1/platforms/woocommerce/orders/9003", headers: admin).body)["status"] as? String == "assigned")
    }

    @Test func ingestDryRunExitCodes() {
        let h = ["X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": Signatures.shopify(body: Array(Self.body.utf8), secret: Self.secret)]
        let ok = IngestCommand.run(platform: "shopify", secret: Self.secret, headers: h, body: Array(Self.body.utf8))
        #expect(ok.0 == 0)
        #expect(parse(ok.1)["platform_order_id"] as? String == "820982911946154508")
        let badSig = IngestCommand.run(platform: "shopify", secret: "wrong", headers: h, body: Array(Self.body.utf8))
        #expect(badSig.0 == 2 && badSig.2.contains("bad_signature"))
        let badBody = #"{"id":"x"}"#
        let h2 = ["X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": Signatures.shopify(body: Array(badBody.utf8), secret: Self.secret)]
        let bad = IngestCommand.run(platform: "shopify", secret: Self.secret, headers: h2, body: Array(badBody.utf8))
        #expect(bad.0 == 1 && bad.2.contains(#""field":"id""#))
        // --detail: a detail-API answer, no signature needed.
        let detail =
            #"{"trade_fullinfo_get_response":{"trade":{"tid":2411234567890123456,"status":"WAIT_SELLER_SEND_GOODS","orders":{"order":[{"outer_sku_id":"A","num":1,"price":"29.9"}]}}}}"#
        let d = IngestCommand.run(platform: "taobao", secret: nil, headers: [:], body: Array(detail.utf8), detail: true)
        #expect(d.0 == 0 && parse(d.1)["platform_order_id"] as? String == "2411234567890123456")
    }

    /// Issue 22.2: a paid platform order outside every service area was answered 422 and stored nowhere; platforms
    /// retry and then disable a failing webhook. It is recorded as unroutable and acknowledged; the direct API still refuses.
    @Test func platformOrderOutsideEveryServiceAreaIsRecordedAndAcknowledged() throws {
        let live = try Live()
        defer { live.stop() }
        _ = try Shop(live: live)
        try saveSecret(live)
        let far = Self.body.replacingOccurrences(of: #""latitude":30.0,"longitude":119.99"#, with: #""latitude":45.75,"longitude":126.63"#)
        let r = try live.http.send("POST", "/v1/platforms/shopify/webhook", headers: headers(far), body: far)
        #expect(r.status == 200, "\(r.body)")
        let stored = parse(try live.http.send("GET", "/v1/platforms/shopify/orders/820982911946154508", headers: admin).body)
        #expect(stored["status"] as? String == "unroutable")
        let queue = parse(try live.http.send("GET", "/v1/orders?status=unroutable", headers: admin).body)
        let rows = queue["orders"] as? [[String: Any]] ?? []
        #expect(rows.count == 1 && rows.first?["unroutable_reason"] as? String == "outside_service_area", "\(queue)")
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 5)
        let direct = try live.http.send(
            "POST", "/v1/orders", headers: admin + json, body: orderBody(id: "d1", lat: 45.75, lon: 126.63, lines: [("A", 1)]))
        #expect(direct.status == 422 && direct.body.contains("outside_service_area"))
    }
}
