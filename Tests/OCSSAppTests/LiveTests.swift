import Dispatch
import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSHTTP
import OCSSStore
import OCSSTestSupport
import Synchronization
import Testing

/// Live tier: the real server on 127.0.0.1 port 0 over a socket, a real SQLite file.
@Suite(.serialized, .ownThreads) struct LiveTests {
    @Test func orderIsRoutedToNearestStoreWithStockAndPolledByThatStore() throws {
        let live = try Live()
        defer { live.stop() }
        #expect(try live.putStore("near", lat: 30.2800, lon: 120.1300).status == 201)
        #expect(try live.putStore("mid", lat: 30.2900, lon: 120.1600).status == 201)
        #expect(try live.putStore("far", lat: 30.3500, lon: 120.3000).status == 201)
        #expect(try live.putStore("near", lat: 30.2800, lon: 120.1300).status == 200)  // upsert
        try live.putInventory("near", [("A", 5)])
        try live.putInventory("mid", [("A", 5), ("B", 1)])
        try live.putInventory("far", [("A", 5), ("B", 5)])

        let r = try live.http.send(
            "POST", "/v1/orders", headers: admin + json, body: orderBody(id: "1", lat: 30.28, lon: 120.13, lines: [("A", 1), ("B", 2)]))
        #expect(r.status == 201, "\(r.body)")
        let o = parse(r.body)
        let a = try #require(o["assignment"] as? [String: Any])
        #expect(a["store_id"] as? String == "far")
        let explanation = try #require(o["explanation"] as? [String: Any])
        let skipped = try #require(explanation["skipped"] as? [[String: Any]])
        #expect(skipped.map { $0["store_id"] as? String } == ["near", "mid"])
        try #require(skipped.count == 2)
        #expect(skipped[1]["missing_skus"] as? [String] == ["B"])
        #expect((a["distance_m"] as? Double ?? 0) > 15_000)
        #expect(live.service.engine.available(storeID: "far", sku: "B") == 3)

        // The chosen store polls it; another store's token may not.
        let farToken = try live.token(for: "far")
        let nearToken = try live.token(for: "near")
        let feed = try live.http.send("GET", "/v1/stores/far/assignments?after=0", headers: [("Authorization", "Bearer \(farToken)")])
        let items = try #require(parse(feed.body)["assignments"] as? [[String: Any]])
        #expect(items.count == 1)
        #expect(items[0]["order_id"] as? Int == o["order_id"] as? Int)
        #expect(parse(feed.body)["next_cursor"] as? String == "1")
        #expect(try live.http.send("GET", "/v1/stores/far/assignments", headers: [("Authorization", "Bearer \(nearToken)")]).status == 403)
        #expect(try live.http.send("GET", "/v1/orders/\(o["order_id"]!)", headers: [("Authorization", "Bearer \(nearToken)")]).status == 403)

        let detail = try live.http.send("GET", "/v1/orders/\(o["order_id"]!)", headers: [("Authorization", "Bearer \(farToken)")])
        #expect(detail.status == 200)
        let events = try #require(parse(detail.body)["events"] as? [[String: Any]])
        #expect(events.map { $0["type"] as? String } == ["received", "routed"])
    }

    /// Two stores 400 m apart east-west, "west" at (30.28, 120.13), both with 9 of SKU A.
    func westAndEast(_ live: Live) throws {
        try live.putStore("west", lat: 30.2800, lon: 120.1300)
        try live.putStore("east", lat: 30.2800, lon: 120.1342)
        try live.putInventory("west", [("A", 9)])
        try live.putInventory("east", [("A", 9)])
    }

    @Test func chineseDatumsAreNormalisedBeforeRouting() throws {
        let live = try Live()
        defer { live.stop() }
        // The customer stands on store "west" in WGS84.
        try westAndEast(live)
        // The GCJ-02 form of the same point lies ~500 m south-east; read as WGS84 it would be nearer "east".
        let r = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "g", lat: 30.277_710, lon: 120.134_761, crs: "GCJ-02", lines: [("A", 1)]))
        #expect(r.status == 201)
        #expect((parse(r.body)["assignment"] as? [String: Any])?["store_id"] as? String == "west")
        #expect((parse(r.body)["assignment"] as? [String: Any])?["distance_m"] as? Double ?? 99 < 5)
    }

    @Test func projectedEPSGCoordinatesAreEastingAndNorthing() throws {
        let live = try Live()
        defer { live.stop() }
        try westAndEast(live)
        // Store "west" in Web Mercator (EPSG:3857): easting and northing in metres, far outside -180..180 / -90..90.
        let r = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "m", lat: 3_539_592.246, lon: 13_372_810.429, crs: "EPSG:3857", lines: [("A", 1)]))
        #expect(r.status == 201, "\(r.body)")
        #expect((parse(r.body)["assignment"] as? [String: Any])?["store_id"] as? String == "west")
        #expect((parse(r.body)["assignment"] as? [String: Any])?["distance_m"] as? Double ?? 99 < 1)
        // Degrees stay bounded for the geographic systems, and a projected point outside its system is refused by name.
        let degrees = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "w", lat: 3_539_592.246, lon: 13_372_810.429, lines: [("A", 1)]))
        #expect(degrees.status == 400)
        #expect(degrees.body.contains("\"field\":\"shipping.coordinates\""))
        let outside = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "o", lat: 1e12, lon: 500_000, crs: "EPSG:32651", lines: [("A", 1)]))
        #expect(outside.status == 400)
        #expect(outside.body.contains("\"field\":\"shipping.coordinates\""))
    }

    /// The review and unroutable queues are found by listing, not by the ids only their platforms saw.
    @Test func ordersAreListedByStatusAndPlatformOldestFirst() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 5)])
        let vague =
            #"{"platform":"jd","event":"order.paid","platform_order_id":"v1","idempotency_key":"v1","shipping":{"text":"朝阳区幸福小区"},"lines":[{"sku":"A","quantity":1}]}"#
        #expect(try live.http.send("POST", "/v1/orders", headers: admin + json, body: vague).status == 201)
        for i in 0..<3 {
            #expect(
                try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "ok\(i)", lat: 30, lon: 120, lines: [("A", 1)]))
                    .status == 201)
        }
        #expect(
            try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "big", lat: 30, lon: 120, lines: [("A", 9)])).status
                == 201)
        func list(_ query: String) throws -> (ids: [Int], rows: [[String: Any]], cursor: String?) {
            let r = try live.http.send("GET", "/v1/orders" + query, headers: admin)
            #expect(r.status == 200, "\(query): \(r.body)")
            let rows = parse(r.body)["orders"] as? [[String: Any]] ?? []
            return (rows.compactMap { $0["order_id"] as? Int }, rows, parse(r.body)["next_cursor"] as? String)
        }
        #expect(try list("").ids == [1, 2, 3, 4, 5])
        let review = try list("?status=address_review")
        #expect(review.ids == [1])
        #expect(review.rows.first?["platform"] as? String == "jd")
        #expect((review.rows.first?["summary"] as? String)?.contains("address review") == true)
        let unroutable = try list("?status=unroutable")
        #expect(unroutable.ids == [5])
        #expect(unroutable.rows.first?["unroutable_reason"] as? String == "no_eligible_store_in_reach")
        let assigned = try list("?status=assigned&platform=direct")
        #expect(assigned.ids == [2, 3, 4])
        #expect(assigned.rows.allSatisfy { $0["store_id"] as? String == "s" })
        #expect(try list("?platform=jd").ids == [1])
        // Pages follow the cursor.
        let page1 = try list("?limit=2")
        #expect(page1.ids == [1, 2])
        #expect(try list("?limit=2&after=\(page1.cursor ?? "")").ids == [3, 4])
        #expect(try list("?after=5").ids == [])
        // The queues' lengths are gauges, to alert on.
        let metrics = try live.http.send("GET", "/metrics").body
        #expect(metrics.contains("\nocss_orders_address_review 1.0\n") && metrics.contains("\nocss_orders_unroutable 1.0\n"))
        // A transition moves the order between queues.
        let cancel = try live.http.send("POST", "/v1/orders/1/cancel", headers: admin)
        #expect(cancel.status == 200)
        #expect(try live.http.send("GET", "/metrics").body.contains("\nocss_orders_address_review 0.0\n"))
        #expect(try list("?status=address_review").ids == [])
        #expect(try list("?status=cancelled").ids == [1])
        for (query, field) in [("?status=lost", "status"), ("?limit=501", "limit"), ("?after=-1", "after"), ("?platform=", "platform")] {
            let r = try live.http.send("GET", "/v1/orders" + query, headers: admin)
            #expect(r.status == 400)
            #expect((parse(r.body)["error"] as? [String: Any])?["field"] as? String == field)
        }
    }

    /// What routing sees of a store's stock: the store's staff and ops can read it, reservations and safety
    /// stock included.
    @Test func storeInventoryShowsReservedAndAvailable() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putStore("t", lat: 31, lon: 121)
        try live.putInventory("s", [("B", 4), ("A", 5), ("C", 0)])
        #expect(
            try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "o1", lat: 30, lon: 120, lines: [("A", 2)])).status
                == 201)
        #expect(try live.http.send("PUT", "/v1/inventory/safety-stock", headers: admin + json, body: #"{"default":1}"#).status == 200)
        func rows(_ query: String, token: [(String, String)] = admin) throws -> (rows: [String: [String: Int]], order: [String], cursor: Any?) {
            let r = try live.http.send("GET", "/v1/stores/s/inventory" + query, headers: token)
            #expect(r.status == 200, "\(query): \(r.body)")
            let list = parse(r.body)["rows"] as? [[String: Any]] ?? []
            var out: [String: [String: Int]] = [:]
            for row in list {
                out[row["sku"] as? String ?? ""] = row.compactMapValues { $0 as? Int }
            }
            return (out, list.compactMap { $0["sku"] as? String }, parse(r.body)["next_cursor"])
        }
        let all = try rows("")
        #expect(all.order == ["A", "B", "C"])
        #expect(all.rows["A"] == ["on_hand": 5, "reserved": 2, "safety": 1, "available": 2])
        #expect(all.rows["B"] == ["on_hand": 4, "reserved": 0, "safety": 1, "available": 3])
        #expect(all.rows["C"] == ["on_hand": 0, "reserved": 0, "safety": 1, "available": 0])
        #expect(all.cursor is NSNull)
        // The store's own token reads it; another store's does not.
        let own = [("Authorization", "Bearer \(try live.token(for: "s"))")]
        #expect(try rows("?sku=B", token: own).order == ["B"])
        let other = [("Authorization", "Bearer \(try live.token(for: "t"))")]
        #expect(try live.http.send("GET", "/v1/stores/s/inventory", headers: other).status == 403)
        // Pages by SKU.
        let first = try rows("?limit=2")
        #expect(first.order == ["A", "B"])
        #expect(first.cursor as? String == "B")
        #expect(try rows("?limit=2&after=B").order == ["C"])
        #expect(try rows("?sku=NOPE").order == [])
        for (query, field) in [("?limit=0", "limit"), ("?sku=", "sku")] {
            let r = try live.http.send("GET", "/v1/stores/s/inventory" + query, headers: admin)
            #expect(r.status == 400)
            #expect((parse(r.body)["error"] as? [String: Any])?["field"] as? String == field)
        }
        #expect(try live.http.send("GET", "/v1/stores/nope/inventory", headers: admin).status == 404)
    }

    @Test func addressWithoutCoordinatesWaitsForReviewAndUnstockedSKUIsUnroutable() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 1)])
        let noCoords =
            #"{"platform":"direct","event":"order.paid","platform_order_id":"x","idempotency_key":"x","shipping":{"text":"浙江省杭州市"},"lines":[{"sku":"A","quantity":1}]}"#
        let r1 = try live.http.send("POST", "/v1/orders", headers: admin + json, body: noCoords)
        #expect(r1.status == 201)
        #expect(parse(r1.body)["status"] as? String == "address_review")
        let r2 = try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "u", lat: 30, lon: 120, lines: [("NOPE", 1)]))
        #expect(parse(r2.body)["status"] as? String == "unroutable")
        #expect((parse(r2.body)["explanation"] as? [String: Any])?["unroutable_reason"] as? String == "sku_not_stocked:NOPE")
        // Beyond every location's reach: refused at intake, nothing stored.
        let r3 = try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "far", lat: 40, lon: 116, lines: [("A", 1)]))
        #expect(r3.status == 422)
        #expect((parse(r3.body)["error"] as? [String: Any])?["code"] as? String == "outside_service_area")
        #expect((parse(r3.body)["error"] as? [String: Any])?["field"] as? String == "shipping.coordinates")
        // In reach, but not enough stock anywhere: recorded as unroutable.
        let r4 = try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "big", lat: 30, lon: 120, lines: [("A", 2)]))
        #expect(r4.status == 201)
        #expect((parse(r4.body)["explanation"] as? [String: Any])?["unroutable_reason"] as? String == "no_eligible_store_in_reach")
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 1)
        let far = try live.http.send("GET", "/v1/orders/\((parse(r4.body)["order_id"] as? Int ?? 0) + 1)", headers: admin)
        #expect(far.status == 404)
    }

    @Test func concurrentRetriesOfOneOrderCreateOneOrder() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        let body = orderBody(id: "dup", lat: 30, lon: 120, lines: [("A", 1)])
        let ids = Mutex<[Int]>([])
        let statuses = Mutex<[Int]>([])
        let http = live.http
        DispatchQueue.concurrentPerform(iterations: 24) { _ in
            let r: RawHTTP.Reply?
            do { r = try http.send("POST", "/v1/orders", headers: admin + json, body: body) } catch { print("ERR", error); r = nil }
            statuses.withLock { $0.append(r?.status ?? -1) }
            if let id = parse(r?.body ?? "")["order_id"] as? Int { ids.withLock { $0.append(id) } }
        }
        #expect(statuses.withLock { $0 }.allSatisfy { $0 == 201 }, "\(statuses.withLock { $0 })")
        #expect(Set(ids.withLock { $0 }).count == 1)
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 99)
        // Same key, different body: 409, nothing changes.
        let other = orderBody(id: "dup", lat: 30, lon: 120, lines: [("A", 2)], key: "direct:dup:order.paid")
        #expect(try http.send("POST", "/v1/orders", headers: admin + json, body: other).status == 409)
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 99)
    }

    @Test func createdThenPaidForOnePlatformOrderIsOneOrder() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        // Youzan, Shopify and Meituan each send more than one routed event per order, under keys of their own.
        let created = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "po", lat: 30, lon: 120, lines: [("A", 1)], key: "direct:po:order.created"))
        let paid = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "po", lat: 30, lon: 120, lines: [("A", 1)], key: "direct:po:order.paid"))
        #expect(created.status == 201 && paid.status == 201)
        #expect(paid.body == created.body)
        #expect(paid.headers["idempotent-replay"] == "true")
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 99)
        // Another platform's order with the same id is another order.
        let other = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: orderBody(id: "po", lat: 30, lon: 120, lines: [("A", 1)], key: "shopify:po").replacingOccurrences(
                of: #""platform":"direct""#, with: #""platform":"shopify""#))
        #expect(other.status == 201 && parse(other.body)["order_id"] as? Int != parse(created.body)["order_id"] as? Int)
        // Events of one platform order arriving at once under different keys: one order, every answer its answer.
        let ids = Mutex<[Int]>([])
        let http = live.http
        DispatchQueue.concurrentPerform(iterations: 12) { i in
            let body = orderBody(id: "burst", lat: 30, lon: 120, lines: [("A", 1)], key: "direct:burst:\(i)")
            let r = try? http.send("POST", "/v1/orders", headers: admin + json, body: body)
            ids.withLock { $0.append(r?.status == 201 ? parse(r?.body ?? "")["order_id"] as? Int ?? -1 : -1) }
        }
        #expect(ids.withLock { $0.count } == 12 && Set(ids.withLock { $0 }).count == 1 && !ids.withLock { $0 }.contains(-1))
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 97)
        let db = try live.database()
        #expect(try db.query("SELECT COUNT(*) FROM orders") { $0.int(0) } == [3])
        #expect(try live.http.send("GET", "/metrics").body.contains("ocss_duplicate_platform_orders_total 12"))
    }

    @Test func concurrentOrdersNeverOversell() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("a", lat: 30, lon: 120)
        try live.putStore("b", lat: 30.01, lon: 120)
        try live.putInventory("a", [("A", 3)])
        try live.putInventory("b", [("A", 4)])
        let http = live.http
        let outcomes = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let r = try? http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "o\(i)", lat: 30, lon: 120, lines: [("A", 1)]))
            outcomes.withLock { $0.append(parse(r?.body ?? "")["status"] as? String ?? "error") }
        }
        let all = outcomes.withLock { $0 }
        #expect(all.filter { $0 == "assigned" }.count == 7)
        #expect(all.filter { $0 == "unroutable" }.count == 33)
        #expect(live.service.engine.available(storeID: "a", sku: "A") == 0)
        #expect(live.service.engine.available(storeID: "b", sku: "A") == 0)
        let db = try live.database()
        #expect(try db.query("SELECT SUM(reserved), SUM(on_hand) FROM inventory") { [$0.int(0), $0.int(1)] } == [[7, 7]])
    }

    @Test func longPollWakesOnAssignmentAndTimesOutEmpty() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 10)])
        let token = try live.token(for: "s")
        let http = live.http
        // Times out: empty list, cursor unchanged, after roughly the wait.
        let t0 = Date()
        let empty = try http.send("GET", "/v1/stores/s/assignments?after=0&wait=1", headers: [("Authorization", "Bearer \(token)")])
        #expect(Date().timeIntervalSince(t0) >= 0.9)
        #expect(empty.body == #"{"assignments":[],"next_cursor":"0"}"#)
        // Wakes: an order arrives while the poll waits (up to 20 s).
        let got = Mutex<RawHTTP.Reply?>(nil)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let r = try? http.send("GET", "/v1/stores/s/assignments?after=0&wait=20", headers: [("Authorization", "Bearer \(token)")])
            got.withLock { $0 = r }
            done.signal()
        }
        // Wait until the poll is parked (suspended, holding no thread), then order.
        for _ in 0..<200 where live.service.server.suspendedCount == 0 { usleep(10_000) }
        #expect(live.service.server.suspendedCount == 1)
        let started = Date()
        _ = try http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "lp", lat: 30, lon: 120, lines: [("A", 1)]))
        #expect(done.wait(timeout: .now() + 25) == .success)
        #expect(Date().timeIntervalSince(started) < 15)
        let items = parse(got.withLock { $0 }?.body ?? "")["assignments"] as? [[String: Any]]
        #expect(items?.count == 1)
    }

    @Test func transportLimits() throws {
        let live = try Live()
        defer { live.stop() }
        let http = live.http
        let dup = try http.raw(
            "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}")
        #expect(dup.status == 400)
        #expect(dup.body.contains(#""field":"Content-Length""#))
        let big = try http.raw("POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{")
        #expect(big.status == 413)
        // Chunked, no Content-Length: the 413 comes once the body has ended (answered mid-upload, the socket was closed
        // under the client's writes, and the reset lost the answer).
        let chunk = String(repeating: "x", count: 65_536)
        let chunked = try http.raw(
            "POST /v1/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n" + String(repeating: "10000\r\n" + chunk + "\r\n", count: 40) + "0\r\n\r\n")
        #expect(chunked.status == 413 && chunked.body.contains("body_too_large"))
        // Issue 22.H: one over 8 MiB was cut off without its 413.
        let long = try http.raw(
            "POST /v1/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n" + String(repeating: "10000\r\n" + chunk + "\r\n", count: 200) + "0\r\n\r\n")
        #expect(long.status == 413 && long.body.contains(#""code":"body_too_large""#), "\(long.status)")
        let headers = try http.send("GET", "/healthz", headers: [("X-Big", String(repeating: "a", count: 100_000))])
        #expect(headers.status == 431)
        // What deploy/nginx.conf lets through (large_client_header_buffers 4 8k) still fits the 32 KiB per connection.
        let fits = try http.send(
            "GET", "/healthz",
            headers: [
                ("Cookie", String(repeating: "c", count: 8_000)),
                ("X-Signature", String(repeating: "s", count: 8_000)),
            ])
        #expect(fits.status == 200)
        let head = try http.raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(head.status == 200 && head.body.isEmpty && head.headers["content-type"] == "application/json")
        #expect(try http.raw("HEAD /v1/stores HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 401)
        let missing = try http.send("GET", "/nope")
        #expect(missing.status == 404)
        #expect(missing.body.hasPrefix(#"{"error":{"code":"not_found""#))
    }

    @Test func anEncodedNULDoesNotCutAPathOrAValueShort() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        let http = live.http
        // %00 used to end the C string: this answered for store "s", and "5%00" read as 5.
        #expect(try http.send("GET", "/v1/stores/s%00x", headers: admin).status == 404)
        let limit = try http.send("GET", "/v1/stores?limit=5%00", headers: admin)
        #expect(limit.status == 400 && parse(limit.body)["error"].flatMap { ($0 as? [String: Any])?["field"] as? String } == "limit")
        // Every other escape still decodes, in the path and in values ('+' is a space in a value).
        #expect(try http.send("GET", "/v1/stores/%73", headers: admin).status == 200)
        let q = try http.send("GET", "/v1/geocode?q=%E6%9D%AD%E5%B7%9E%E5%B8%82+%E8%A5%BF%E6%B9%96%E5%8C%BA", headers: admin)
        #expect(parse(q.body)["address"] as? String == "杭州市 西湖区", "\(q.body)")
    }

    @Test func perIPConnectionLimitAndIdleTimeout() throws {
        let live = try Live { c in
            c.limits.perIPConnectionLimit = 3
            c.limits.connectionTimeoutSeconds = 1
        }
        defer { live.stop() }
        let http = live.http
        // Three idle connections fill this address's quota; a fourth is refused (closed at once).
        let held = try (0..<3).map { _ in try http.connectSocket(timeoutSeconds: 5) }
        let extra = try http.connectSocket(timeoutSeconds: 5)
        var byte: UInt8 = 0
        #expect(recv(extra, &byte, 1, 0) == 0)
        close(extra)
        // An idle (slow) client is cut off after the timeout; then its slot is free again.
        let t0 = Date()
        #expect(recv(held[0], &byte, 1, 0) == 0)
        #expect(Date().timeIntervalSince(t0) < 5)
        held.forEach { close($0) }
        usleep(200_000)
        #expect(try http.send("GET", "/healthz").status == 200)
    }

    @Test func restartRebuildsMemoryFromTheDatabase() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120, status: "open")
        try live.putStore("p", lat: 30.001, lon: 120, status: "paused")
        try live.putInventory("s", [("A", 5)])
        try live.putInventory("p", [("A", 5)])
        let body = orderBody(id: "r", lat: 30.001, lon: 120, lines: [("A", 2)])
        let first = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body)
        let token = try live.token(for: "s")
        try live.restart()
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 3)
        #expect(live.service.engine.available(storeID: "p", sku: "A") == 5)
        let again = try live.http.send("POST", "/v1/orders", headers: admin + json, body: body)
        #expect(again.status == 201)
        #expect(again.headers["idempotent-replay"] == "true")
        #expect(again.body == first.body)
        // The feed still holds the assignment made before the restart (the newest id per store is rebuilt: were it
        // lost, every poll would be answered "nothing new" from memory).
        let feed = try live.http.send("GET", "/v1/stores/s/assignments?after=0", headers: [("Authorization", "Bearer \(token)")])
        #expect(feed.status == 200)
        let aid = (parse(first.body)["assignment"] as? [String: Any])?["assignment_id"] as? Int
        #expect(aid != nil && (parse(feed.body)["assignments"] as? [[String: Any]])?.map { $0["assignment_id"] as? Int } == [aid])
        let next = try live.http.send(
            "POST", "/v1/orders", headers: admin + json, body: orderBody(id: "r2", lat: 30.001, lon: 120, lines: [("A", 1)]))
        #expect((parse(next.body)["assignment"] as? [String: Any])?["store_id"] as? String == "s")
    }
}

@Suite(.serialized, .ownThreads) struct TextLimitTests {
    /// Sets `path` (dot-separated) in a valid order to `value`.
    func order(_ id: String, setting path: String, to value: String) throws -> String {
        var o = try #require(
            try JSONSerialization.jsonObject(with: Data(orderBody(id: id, lat: 30, lon: 120, lines: [("A", 1)]).utf8)) as? [String: Any])
        let parts = path.split(separator: ".").map(String.init)
        func set(_ d: inout [String: Any], _ keys: ArraySlice<String>) {
            if keys.count == 1 { d[keys.first!] = value; return }
            var inner = d[keys.first!] as? [String: Any] ?? [:]
            set(&inner, keys.dropFirst())
            d[keys.first!] = inner
        }
        if parts[0] == "lines" {
            o["lines"] = [["sku": "A", "quantity": 1, "platform_sku_id": value]]
        } else {
            set(&o, parts[...])
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
    }

    @Test func overLongTextFieldsAreRefusedByNameAndTheLimitItselfIsAccepted() throws {
        // A 1 MB body could carry a 300,000-character address: stored three times and run through the geocoder
        // (0.86 s of CPU for one order, measured before the limit).
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 1_000)])
        let limits: [(String, Int)] = [
            ("platform_order_id", 128), ("channel", 64), ("buyer.name", 200), ("buyer.phone", 64),
            ("shipping.province", 100), ("shipping.detail", 500), ("shipping.text", 1000),
            ("shipping.postal_code", 32), ("platform_store_id", 128),
            ("lines.platform_sku_id", 128),
        ]
        for (n, (path, limit)) in limits.enumerated() {
            let field = path == "lines.platform_sku_id" ? "lines[0].platform_sku_id" : path
            let tooLong = try live.http.send(
                "POST", "/v1/orders", headers: admin + json,
                body: try order("long\(n)", setting: path, to: String(repeating: "路", count: limit + 1)))
            #expect(tooLong.status == 400, "\(path): \(tooLong.status)")
            let error = parse(tooLong.body)["error"] as? [String: Any]
            #expect(error?["field"] as? String == field && (error?["message"] as? String)?.contains("at most \(limit)") == true, "\(tooLong.body)")
            // Exactly at the limit: taken (platform_order_id is the key's source, so give each its own id).
            let atLimit = try live.http.send(
                "POST", "/v1/orders", headers: admin + json,
                body: try order(
                    "ok\(n)", setting: path,
                    to: path == "platform_order_id"
                        ? String(repeating: "9", count: limit) : String(repeating: "路", count: limit)))
            #expect(atLimit.status == 201, "\(path) at \(limit): \(atLimit.body)")
        }
    }
}

@Suite(.ownThreads) struct MoneyValidationTests {
    /// Issue 22.4: `currency:"RMBX"` and a negative `total_minor` were taken (201), and a USD order then counted as yuan.
    @Test func currencyIsISO4217AndMoneyIsNotNegative() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 10)])
        func post(_ id: String, _ extra: String) throws -> RawHTTP.Reply {
            let body = orderBody(id: id, lat: 30, lon: 120, lines: [("A", 1)])
            return try live.api.send("POST", "/v1/orders", headers: admin + json, body: String(body.dropLast()) + "," + extra + "}")
        }
        for (n, (extra, field)) in [
            (#""currency":"RMBX""#, "currency"), (#""currency":"cny""#, "currency"),
            (#""total_minor":-1"#, "total_minor"), (#""shipping_fee_minor":-5"#, "shipping_fee_minor"),
            (#""total_minor":1000000000001"#, "total_minor"),
        ].enumerated() {
            let r = try post("bad\(n)", extra)
            #expect(r.status == 400 && (parse(r.body)["error"] as? [String: Any])?["field"] as? String == field, "\(extra): \(r.body)")
        }
        #expect(try post("usd", #""currency":"USD","total_minor":1000"#).status == 201)
        #expect(try post("zero", #""currency":"CNY","total_minor":0"#).status == 201)
    }
}

@Suite(.ownThreads) struct ConcurrentDuplicateTests {
    /// Issue 22.H: the same key sent several times at once was answered 201 without `Idempotent-Replay: true` on every
    /// copy, so a client could not tell which request made the order. Exactly one answer lacks it.
    @Test func concurrentCopiesOfOneKeyAreMarkedAsReplays() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        let body = orderBody(id: "dup", lat: 30, lon: 120, lines: [("A", 1)])
        let answers = Mutex<[RawHTTP.Reply]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            if let r = try? live.api.send("POST", "/v1/orders", headers: admin + json, body: body) { answers.withLock { $0.append(r) } }
        }
        let all = answers.withLock { $0 }
        #expect(all.count == 8 && all.allSatisfy { $0.status == 201 && $0.body == all[0].body })
        #expect(all.filter { $0.headers["idempotent-replay"] == nil }.count == 1, "\(all.map { $0.headers["idempotent-replay"] ?? "-" })")
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 99)
    }
}

@Suite(.serialized, .ownThreads) struct ImmutableSharedMemoryTests {
    static func chattr(_ flag: String, _ path: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        p.arguments = [flag, path]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Issue 22.E: an unwritable `-shm` (made immutable while ocss runs) ended the process with SIGBUS, and /healthz said
    /// ok on a database it could not write. Now orders get 503 `storage_unavailable`, /healthz 503 naming the file,
    /// the process lives on (this test runs the service in its own process), and work resumes once the file is fixed.
    @Test func anImmutableSHMIsRefusedNotACrash() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        try live.putInventory("s", [("A", 100)])
        #expect(
            try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "i0", lat: 30, lon: 120, lines: [("A", 1)])).status
                == 201)
        let shm = live.dir.file("ocss.sqlite-shm")
        guard Self.chattr("+i", shm) else { return }  // a file system without the flag (tmpfs): nothing to test
        defer { _ = Self.chattr("-i", shm) }
        for i in 1...3 {
            let r = try live.http.send(
                "POST", "/v1/orders", headers: admin + json, body: orderBody(id: "i\(i)", lat: 30, lon: 120, lines: [("A", 1)]))
            #expect(r.status == 503, "\(r.status) \(r.body)")
        }
        let health = try live.http.send("GET", "/healthz")
        #expect(health.status == 503 && health.body.contains("immutable"), "\(health.body)")
        #expect(Self.chattr("-i", shm))
        // The guard looks again within 100 ms; the same key may be sent until it is taken (a retry is safe).
        let again = {
            try live.http.send("POST", "/v1/orders", headers: admin + json, body: orderBody(id: "i9", lat: 30, lon: 120, lines: [("A", 1)]))
        }
        #expect(try eventually { try again().status == 201 })
        #expect(try live.http.send("GET", "/healthz").status == 200)
        #expect(live.service.engine.available(storeID: "s", sku: "A") == 98)
    }
}
