@testable import OCSSApp
@testable import OCSSEngine
import Foundation
import OCSSHTTP
import OCSSTestSupport
import Testing

/// In-process tier: the route table, auth and error bodies, without a socket.
@Suite(.ownThreads) struct ResponderTests {
    @Test func errorBodyIsExactAndNamesTheField() throws {
        let live = try Live()
        defer { live.stop() }
        let r = call(
            live.service.app, "POST", "/v1/orders", headers: admin + json,
            body:
                #"{"platform":"direct","event":"order.paid","platform_order_id":"1","idempotency_key":"k","shipping":{},"lines":[{"sku":"A","quantity":0}]}"#
        )
        #expect(r.status == 400)
        #expect(r.text == #"{"error":{"code":"invalid_field","message":"must be between 1 and 100000","field":"lines[0].quantity"}}"#)
    }

    @Test(arguments: [
        ("POST", "/v1/orders", [("Content-Type", "application/json")], "{", 401, "unauthorized"),
        ("POST", "/v1/orders", [("Authorization", "Bearer \(adminToken)")], "{}", 415, "unsupported_media_type"),
        ("POST", "/v1/orders", [("Authorization", "Bearer \(adminToken)"), ("Content-Type", "application/json")], "{", 400, "invalid_json"),
        (
            "POST", "/v1/orders", [("Authorization", "Bearer \(adminToken)"), ("Content-Type", "application/json")],
            #"{"platform":"direct","event":"order.cancelled","platform_order_id":"1","idempotency_key":"k","shipping":{},"lines":[]}"#, 422,
            "unsupported_event"
        ),
        (
            "POST", "/v1/orders", [("Authorization", "Bearer \(adminToken)"), ("Content-Type", "application/json")],
            #"{"platform":"direct","event":"order.paid","platform_order_id":"1","idempotency_key":"k","shipping":{"coordinates":{"lat":95,"lon":1,"crs":"WGS84"}},"lines":[{"sku":"A","quantity":1}]}"#,
            400, "invalid_field"
        ),
        (
            "POST", "/v1/orders", [("Authorization", "Bearer \(adminToken)"), ("Content-Type", "application/json")],
            #"{"platform":"direct","event":"order.paid","platform_order_id":"1","idempotency_key":"k","shipping":{"coordinates":{"lat":30,"lon":120,"crs":"EPSG:999999"}},"lines":[{"sku":"A","quantity":1}]}"#,
            400, "invalid_field"
        ),
        ("GET", "/v1/nothing", [], "", 404, "not_found"),
        ("DELETE", "/v1/orders", [], "", 405, "method_not_allowed"),
        ("GET", "/v1/stores", [("Authorization", "Bearer wrong")], "", 401, "unauthorized"),
        (
            "PUT", "/v1/stores/X", [("Authorization", "Bearer \(adminToken)"), ("Content-Type", "application/json")], #"{"name":"n","lat":1}"#, 400,
            "invalid_field"
        ),
        (
            "PUT", "/v1/stores/X", [("Authorization", "Bearer \(adminToken)"), ("Content-Type", "application/json")],
            #"{"name":"n","lat":1,"lon":2,"kind":"kiosk"}"#, 400, "invalid_field"
        ),
        ("GET", "/v1/orders/abc", [("Authorization", "Bearer \(adminToken)")], "", 400, "invalid_field"),
        ("GET", "/v1/orders/99", [("Authorization", "Bearer \(adminToken)")], "", 404, "not_found"),
    ])
    func badInputsGetTheirStatusAndCode(method: String, path: String, headers: [(String, String)], body: String, status: Int, code: String) throws {
        let live = try Live()
        defer { live.stop() }
        let r = call(live.service.app, method, path, headers: headers, body: body)
        #expect(r.status == status, "\(r.text)")
        #expect((parse(r.text)["error"] as? [String: Any])?["code"] as? String == code)
        #expect(r.headers.contains { $0 == ("Content-Type", "application/json") })
    }

    @Test func missingFieldIsNamed() throws {
        let live = try Live()
        defer { live.stop() }
        let r = call(live.service.app, "PUT", "/v1/stores/S1", headers: admin + json, body: #"{"name":"n","lat":1}"#)
        #expect((parse(r.text)["error"] as? [String: Any])?["field"] as? String == "lon")
    }

    @Test func healthAndMetricsAndOpenAPI() throws {
        let live = try Live()
        defer { live.stop() }
        #expect(call(live.service.app, "GET", "/healthz").status == 200)
        _ = call(live.service.app, "GET", "/healthz")
        let m = call(live.service.app, "GET", "/metrics").text
        #expect(m.contains(#"ocss_http_requests_total{route="/healthz",status="200"} 2"#))
        #expect(m.contains("ocss_routing_seconds_bucket"))
        let spec = call(live.service.app, "GET", "/openapi.yaml")
        #expect(spec.status == 200)
        #expect(spec.text.hasPrefix("openapi: 3.1"))
    }
}

@Suite(.ownThreads) struct RouteTableTests {
    /// Issue 19: routes are declared once, and the API description lists exactly the API routes of that table (the
    /// dashboard's HTML pages and the benchmark's endpoint aside).
    @Test func theRouteTableAndOpenAPIListTheSamePathsAndMethods() throws {
        let yaml = try String(contentsOfFile: Live.packageRoot + "/docs/openapi.yaml", encoding: .utf8)
        var documented = Set<String>()
        var path: String?
        var inPaths = false
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if let first = line.first, first != " " { break }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") { path = String(line.dropFirst(2).dropLast()); continue }
            for m in ["get", "post", "put", "delete"] where line.hasPrefix("    \(m):") {
                if let path { documented.insert("\(m.uppercased()) \(path)") }
            }
        }
        let routed = Set(App.routes.routes.filter { !$0.page && !$0.benchOnly }.map { "\($0.method) \($0.template)" })
        #expect(routed.subtracting(documented).isEmpty, "routed, not documented: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented, not routed: \(documented.subtracting(routed).sorted())")
        #expect(routed.count >= 45)
    }

    /// Access is a property of the route: an admin route refuses a store token before its handler runs, and a path
    /// that exists under other methods answers 405 with the Allow list the table gives.
    @Test func accessAndAllowComeFromTheTable() throws {
        let live = try Live()
        defer { live.stop() }
        try live.putStore("s", lat: 30, lon: 120)
        let store = try live.token(for: "s")
        for route in App.routes.routes where route.access == .admin && route.method == "GET" && !route.template.contains("{") {
            let r = try live.http.send("GET", route.template, headers: [("Authorization", "Bearer \(store)")])
            #expect(r.status == 403, "\(route.template): \(r.status)")
        }
        let wrong = try live.http.send("PATCH", "/v1/stores/s/inventory", headers: admin)
        #expect(wrong.status == 405 && wrong.headers["allow"] == "GET, PUT", "\(wrong.headers)")
    }
}
