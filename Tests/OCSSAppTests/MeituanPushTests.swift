import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSPlatforms
import OCSSTestSupport
import Testing

/// Meituan's pushes through the real server: each signed as Meituan signs (`sig` over the once-decoded values).
@Suite(.serialized, .ownThreads) struct MeituanPushTests {
    static let url = "https://ocss.example.cn/v1/platforms/meituan/webhook"

    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// A signed form; `doubled` values are percent-encoded once more inside the form, as Meituan does for text.
    static func form(
        _ plain: [String: String], timestamp: String? = "1800000000",
        doubled: Set<String> = ["detail", "reason", "recipient_address"]
    ) -> String {
        var once: [String: String] = ["app_id": "mt-app"]
        once["timestamp"] = timestamp
        for (k, v) in plain { once[k] = doubled.contains(k) ? encode(v) : v }
        once["sig"] = Signatures.meituan(url: url, once, secret: "mt-secret")
        return once.sorted { $0.key < $1.key }.map { "\($0.key)=\(encode($0.value))" }.joined(separator: "&")
    }

    func push(_ live: Live, _ body: String) throws -> RawHTTP.Reply {
        try live.api.send("POST", "/v1/platforms/meituan/webhook", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: body)
    }

    /// Issue 22.3: the dedicated cancellation push (`order_id`, `reason_code`, `reason`) was answered `ignore`, and the
    /// store went on preparing a cancelled order. The refund push (`notify_type=apply`) stops fulfilment too.
    @Test func cancellationAndRefundPushesCancelTheOrder() throws {
        let live = try Live(clock: ManualClock())
        defer { live.stop() }
        _ = try Shop(live: live)
        try live.api.send(
            "PUT", "/v1/platforms/meituan/credentials", headers: admin + json,
            body: #"{"base_url":"https://waimaiopen.meituan.com","app_key":"mt-app","app_secret":"mt-secret","callback_url":"\#(Self.url)"}"#)
        let detail = #"[{"app_food_code":"F1","sku_id":"A","quantity":2,"price":29.9}]"#
        for id in ["101", "102"] {
            let paid = try push(
                live,
                Self.form([
                    "order_id": id, "status": "2", "detail": detail, "recipient_address": "浙江省杭州市文三路398号",
                    "latitude": "30.0", "longitude": "119.99", "ctime": "1800000000",
                ]))
            #expect(paid.status == 200 && paid.body == #"{"data":"ok"}"#, "\(paid.body)")
        }
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 1)

        let cancel = try push(live, Self.form(["order_id": "101", "reason_code": "1001", "reason": "用户取消"]))
        #expect(cancel.status == 200 && cancel.body == #"{"data":"ok"}"#, "\(cancel.body)")
        let cancelled = parse(try live.api.send("GET", "/v1/platforms/meituan/orders/101", headers: admin).body)
        #expect(cancelled["status"] as? String == "cancelled", "\(cancelled)")

        let refund = try push(live, Self.form(["order_id": "102", "notify_type": "apply", "reason": "商品缺货"]))
        #expect(refund.status == 200, "\(refund.body)")
        #expect(parse(try live.api.send("GET", "/v1/platforms/meituan/orders/102", headers: admin).body)["status"] as? String == "cancelled")
        #expect(live.service.engine.available(storeID: "near", sku: "A") == 5)

        // A forged cancellation is refused and cancels nothing.
        var forged = Self.form(["order_id": "103", "reason_code": "1001", "reason": "x"])
        forged = forged.replacingOccurrences(of: "order_id=103", with: "order_id=104")
        #expect(try push(live, forged).status == 401)
    }
}

@Suite(.serialized, .ownThreads) struct WebhookFreshnessTests {
    /// Issue 22.F: a Meituan message signed with a 2010 timestamp created an order. A signed time more than
    /// `webhook_freshness_s` (600 s) from the server's clock is refused 401 naming the field, and nothing is stored.
    @Test func signedTimestampsOutsideTheWindowAreRefused() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock)
        defer { live.stop() }
        _ = try Shop(live: live)
        try live.api.send(
            "PUT", "/v1/platforms/meituan/credentials", headers: admin + json,
            body:
                #"{"base_url":"https://waimaiopen.meituan.com","app_key":"mt-app","app_secret":"mt-secret","callback_url":"\#(MeituanPushTests.url)"}"#
        )
        let detail = #"[{"app_food_code":"F1","sku_id":"A","quantity":1,"price":1}]"#
        func push(_ id: String, timestamp: String?) throws -> RawHTTP.Reply {
            let form = MeituanPushTests.form(
                ["order_id": id, "status": "2", "detail": detail, "latitude": "30.0", "longitude": "119.99"],
                timestamp: timestamp)
            return try live.api.send(
                "POST", "/v1/platforms/meituan/webhook", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: form)
        }
        for (id, ts) in [("1", "1262304000"), ("2", "1800000601"), ("3", nil)] as [(String, String?)] {
            let r = try push(id, timestamp: ts)
            #expect(r.status == 401 && r.body.contains(#""field":"timestamp""#), "\(String(describing: ts)): \(r.body)")
            #expect(try live.api.send("GET", "/v1/platforms/meituan/orders/\(id)", headers: admin).status == 404)
        }
        #expect(try push("4", timestamp: "1799999500").status == 200)
        clock.advance(10_000)
        #expect(try push("5", timestamp: "1800010000").status == 200)
    }
}
