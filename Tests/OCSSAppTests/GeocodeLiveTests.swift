import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSStore
import OCSSTestSupport
import Testing

/// Issue 3 end to end: address-only orders geocoded at intake, same-name addresses held for review and corrected
/// by an admin, coordinates checked against the address, and GET /v1/geocode. Real server, real SQLite.
@Suite(.serialized, .ownThreads) struct GeocodeLiveTests {
    func addressOrder(_ id: String, text: String, coordinates: String? = nil) -> String {
        let coords = coordinates.map { #","coordinates":\#($0)"# } ?? ""
        return #"{"platform":"direct","event":"order.paid","platform_order_id":"\#(id)","idempotency_key":"direct:\#(id):order.paid","#
            + #""shipping":{"text":"\#(text)"\#(coords)},"lines":[{"sku":"SKU-1","quantity":1}]}"#
    }

    func stores(_ live: Live) throws {
        // Near the seats of Hangzhou's Xihu district and Beijing's Chaoyang district.
        try live.putStore("HZ", lat: 30.27, lon: 120.13)
        try live.putStore("BJ", lat: 39.93, lon: 116.45)
        try live.putInventory("HZ", [("SKU-1", 5)])
        try live.putInventory("BJ", [("SKU-1", 5)])
    }

    @Test func clearAddressIsGeocodedAndRouted() throws {
        let live = try Live()
        defer { live.stop() }
        try stores(live)
        let r = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: addressOrder("G1", text: "张三 13800138000 浙江杭州西湖区文三路398号"))
        #expect(r.status == 201, "\(r.body)")
        let o = parse(r.body)
        #expect(o["status"] as? String == "assigned")
        #expect((o["assignment"] as? [String: Any])?["store_id"] as? String == "HZ")
        let coords = (o["explanation"] as? [String: Any])?["coordinates"] as? String ?? ""
        #expect(coords.contains("geocoded district 330106"), "\(coords)")
        let m = try live.http.send("GET", "/metrics", headers: admin)
        #expect(m.body.contains(#"ocss_geocodes_total{result="routable"} 1"#))
    }

    @Test func sameNameAddressWaitsForReviewThenAdminCorrects() throws {
        let live = try Live()
        defer { live.stop() }
        try stores(live)
        let r = try live.http.send("POST", "/v1/orders", headers: admin + json, body: addressOrder("G2", text: "朝阳区建国路88号"))
        #expect(r.status == 201, "\(r.body)")
        let o = parse(r.body)
        #expect(o["status"] as? String == "address_review")
        let why = (o["explanation"] as? [String: Any])?["geocode"] as? String ?? ""
        #expect(why.contains("110105") && why.contains("220104"), "\(why)")
        let id = try #require(o["order_id"] as? Int)

        // A vague correction is refused with the candidates, and changes nothing.
        let vague = try live.http.send("POST", "/v1/orders/\(id)/address", headers: admin + json, body: #"{"text":"朝阳区"}"#)
        #expect(vague.status == 422, "\(vague.body)")
        let err = parse(vague.body)["error"] as? [String: Any]
        #expect(err?["code"] as? String == "address_unresolved" && err?["field"] as? String == "text")
        #expect((err?["candidates"] as? [Any])?.count ?? 0 >= 2)

        // Other principals may not correct.
        let store = try live.token(for: "BJ")
        let forbidden = try live.http.send(
            "POST", "/v1/orders/\(id)/address", headers: [("Authorization", "Bearer \(store)")] + json,
            body: #"{"text":"北京市朝阳区建国路88号"}"#)
        #expect(forbidden.status == 403 || forbidden.status == 401)

        let fixed = try live.http.send("POST", "/v1/orders/\(id)/address", headers: admin + json, body: #"{"text":"北京市朝阳区建国路88号"}"#)
        #expect(fixed.status == 200, "\(fixed.body)")
        let f = parse(fixed.body)
        #expect(f["status"] as? String == "assigned")
        #expect((f["assignment"] as? [String: Any])?["store_id"] as? String == "BJ")

        // The store sees it; a second correction is refused; it all survives a restart.
        let feed = try live.http.send("GET", "/v1/stores/BJ/assignments", headers: [("Authorization", "Bearer \(store)")])
        #expect(feed.body.contains("\"order_id\":\(id)"), "\(feed.body)")
        let again = try live.http.send("POST", "/v1/orders/\(id)/address", headers: admin + json, body: #"{"text":"北京市朝阳区建国路88号"}"#)
        #expect(again.status == 409)
        try live.restart()
        let after = parse(try live.http.send("GET", "/v1/orders/\(id)", headers: admin).body)
        #expect(after["status"] as? String == "assigned")
        let events = (after["events"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        #expect(events.contains("address_review") && events.contains("address_corrected") && events.contains("assigned"), "\(events)")
    }

    @Test func correctionByCoordinatesInAChineseDatum() throws {
        let live = try Live()
        defer { live.stop() }
        try stores(live)
        let o = parse(try live.http.send("POST", "/v1/orders", headers: admin + json, body: addressOrder("G3", text: "请尽快发货")).body)
        #expect(o["status"] as? String == "address_review")
        let id = try #require(o["order_id"] as? Int)
        let bad = try live.http.send(
            "POST", "/v1/orders/\(id)/address", headers: admin + json,
            body: #"{"coordinates":{"lat":30.28,"lon":120.13,"crs":"EPSG:99999999"}}"#)
        #expect(bad.status == 400)
        let fixed = try live.http.send(
            "POST", "/v1/orders/\(id)/address", headers: admin + json,
            body: #"{"coordinates":{"lat":30.2839,"lon":120.1271,"crs":"GCJ-02"}}"#)
        #expect(fixed.status == 200, "\(fixed.body)")
        #expect((parse(fixed.body)["assignment"] as? [String: Any])?["store_id"] as? String == "HZ")
        let empty = try live.http.send("POST", "/v1/orders/\(id)/address", headers: admin + json, body: "{}")
        #expect(empty.status == 400 && empty.body.contains("\"field\":\"text\""))
    }

    @Test func anOrderWaitingForReviewOrUnroutableCanBeCancelled() throws {
        let live = try Live()
        defer { live.stop() }
        try stores(live)
        // The buyer cancels while the order waits for an admin: a correction afterwards must not route it.
        let review = parse(try live.http.send("POST", "/v1/orders", headers: admin + json, body: addressOrder("G5", text: "请尽快发货")).body)
        #expect(review["status"] as? String == "address_review")
        let id = try #require(review["order_id"] as? Int)
        let cancel = try live.http.send("POST", "/v1/orders/\(id)/cancel", headers: admin + json, body: #"{"note":"buyer cancelled"}"#)
        #expect(cancel.status == 200 && parse(cancel.body)["status"] as? String == "cancelled", "\(cancel.body)")
        #expect(try live.http.send("POST", "/v1/orders/\(id)/cancel", headers: admin).status == 200)  // a retry changes nothing
        let fix = try live.http.send("POST", "/v1/orders/\(id)/address", headers: admin + json, body: #"{"text":"浙江杭州西湖区文三路398号"}"#)
        #expect(fix.status == 409 && fix.body.contains(#""current_status":"cancelled""#), "\(fix.body)")
        #expect(live.service.engine.available(storeID: "HZ", sku: "SKU-1") == 5)
        let events = (parse(try live.http.send("GET", "/v1/orders/\(id)", headers: admin).body)["events"] as? [[String: Any]] ?? [])
            .map { $0["type"] as? String ?? "" }
        #expect(events.last == "cancelled", "\(events)")
        // An unroutable order too; a delivered one still cannot be.
        let far = parse(
            try live.http.send(
                "POST", "/v1/orders", headers: admin + json,
                body: addressOrder("G6", text: "x", coordinates: #"{"lat":30.27,"lon":120.13,"crs":"WGS84"}"#)
                    .replacingOccurrences(of: "SKU-1", with: "SKU-NONE")
            ).body)
        #expect(far["status"] as? String == "unroutable")
        let gone = try live.http.send("POST", "/v1/orders/\(far["order_id"] as? Int ?? 0)/cancel", headers: admin)
        #expect(gone.status == 200 && parse(gone.body)["status"] as? String == "cancelled", "\(gone.body)")
        let db = try live.database()
        #expect(try db.query("SELECT COUNT(*) FROM outbox WHERE event = 'cancelled'") { $0.int(0) } == [2])
    }

    @Test func coordinatesFarFromTheAddressAreFlagged() throws {
        let live = try Live()
        defer { live.stop() }
        try stores(live)
        // Beijing coordinates, a Hangzhou address: routed by the coordinates, with a warning.
        let r = try live.http.send(
            "POST", "/v1/orders", headers: admin + json,
            body: addressOrder("G4", text: "浙江省杭州市西湖区文三路398号", coordinates: #"{"lat":39.93,"lon":116.45,"crs":"WGS84"}"#))
        let o = parse(r.body)
        #expect((o["assignment"] as? [String: Any])?["store_id"] as? String == "BJ")
        let coords = (o["explanation"] as? [String: Any])?["coordinates"] as? String ?? ""
        #expect(coords.contains("warning") && coords.contains("330106"), "\(coords)")
        // Agreeing ones are not.
        let ok = parse(
            try live.http.send(
                "POST", "/v1/orders", headers: admin + json,
                body: addressOrder("G5", text: "浙江省杭州市西湖区文三路398号", coordinates: #"{"lat":30.28,"lon":120.13,"crs":"WGS84"}"#)
            ).body)
        let okCoords = (ok["explanation"] as? [String: Any])?["coordinates"] as? String ?? ""
        #expect(okCoords == "WGS84", "\(okCoords)")
    }

    @Test func geocodeEndpoint() throws {
        let live = try Live()
        defer { live.stop() }
        try stores(live)
        let q = "江苏 苏州 常熟市 北门大街".addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!
        let r = try live.http.send("GET", "/v1/geocode?q=\(q)", headers: admin)
        #expect(r.status == 200, "\(r.body)")
        let g = parse(r.body)
        #expect(g["adcode"] as? String == "320581" && g["level"] as? String == "district" && g["district"] as? String == "常熟市")
        let store = try live.token(for: "HZ")
        #expect(try live.http.send("GET", "/v1/geocode?q=\(q)", headers: [("Authorization", "Bearer \(store)")]).status == 200)
        #expect(try live.http.send("GET", "/v1/geocode?q=\(q)").status == 401)
        let missing = try live.http.send("GET", "/v1/geocode", headers: admin)
        #expect(missing.status == 400 && missing.body.contains("\"field\":\"q\""))
        let none = parse(try live.http.send("GET", "/v1/geocode?q=hello", headers: admin).body)
        #expect(none["adcode"] is NSNull && none["unresolved"] as? String == "no_place_name")
    }
}
