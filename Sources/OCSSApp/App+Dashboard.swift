import OCSSCore
import OCSSHTTP
import OCSSPlatforms
import OCSSStore
import Synchronization
import OCSSEngine

/// `/dashboard`: a server-rendered page with inline SVG charts, no scripts, fonts or anything from outside (the
/// machines that show it may have no internet). Admin login: the admin token typed into `/login`, or a one-time link
/// from `POST /v1/dashboard/links`; either sets an HttpOnly session cookie valid for 12 hours.
extension App {
    static let sessionSeconds = 12 * 3600.0
    static let cookieName = "ocss_session"

    func hasSession(_ r: Request) -> Bool {
        guard let cookies = r.header("cookie") else { return false }
        for part in cookies.split(separator: ";") {
            let kv = part.trimmingPrefix(" ").split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0] == App.cookieName else { continue }
            let hash = Crypto.sha256Hex(Array(kv[1].utf8))
            let now = engine.clock.now()
            if sessions.withLock({ s in (s[hash] ?? 0) > now }) { return true }
        }
        return false
    }

    func startSession(location: String) -> Response {
        let token = Crypto.token(prefix: "ses_")
        let now = engine.clock.now()
        sessions.withLock { s in
            s = s.filter { $0.value > now }
            s[Crypto.sha256Hex(Array(token.utf8))] = now + App.sessionSeconds
        }
        return Response(
            status: 303,
            headers: [
                ("Location", location),
                ("Set-Cookie", "\(App.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(App.sessionSeconds))"),
                ("Cache-Control", "no-store"),
            ], body: [])
    }

    /// `POST /v1/dashboard/links` (admin): a one-time login link valid for 5 minutes (for a browser on a kiosk, or a test).
    func postDashboardLink(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        let once = Crypto.token(prefix: "once_")
        let now = engine.clock.now()
        loginLinks.withLock { l in
            l = l.filter { $0.value > now }
            l[Crypto.sha256Hex(Array(once.utf8))] = now + 300
        }
        let path = "/login?once=\(once)"
        reply.send(jsonResponse(201, .object([("url", .string(App.origin(of: r) + path)), ("path", .string(path)), ("expires_in_s", .int(300))])))
    }

    /// `scheme://host[:port]` the client reached us by: its `Host` header (only host characters, else 127.0.0.1), and
    /// https when a proxy on this machine says so (`X-Forwarded-Proto`). A link handed to someone must work as it is.
    static func origin(of r: Request) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
        let host = r.header("host").flatMap { h in !h.isEmpty && h.count <= 255 && h.allSatisfy(allowed.contains) ? h : nil } ?? "127.0.0.1"
        let local = r.remoteAddress == "127.0.0.1" || r.remoteAddress == "::1"
        let scheme = local && r.header("x-forwarded-proto")?.lowercased() == "https" ? "https" : "http"
        return scheme + "://" + host
    }

    /// `GET /`: people open the bare address; the dashboard is what there is to see.
    func root(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        reply.send(
            Response(
                status: 302, headers: [("Location", "/dashboard"), ("Content-Type", "text/plain; charset=utf-8")],
                body: Array("ocss: see /dashboard (admin), /openapi.yaml (API), /healthz\n".utf8)))
    }

    /// `GET /login`: the form, or a one-time link's redemption. `POST /login`: the admin token from the form.
    func login(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        if r.method == "GET" {
            if let once = r.query["once"] {
                let hash = Crypto.sha256Hex(Array(once.utf8))
                let now = engine.clock.now()
                let ok = loginLinks.withLock { l in l.removeValue(forKey: hash).map { $0 > now } ?? false }
                guard ok else { return reply.send(html(401, loginPage(error: "链接已过期或已使用 This link has expired or was already used."))) }
                return reply.send(startSession(location: "/dashboard"))
            }
            return reply.send(html(200, loginPage(error: nil)))
        }
        let form = App.formFields(r.body)
        let token = form["token"] ?? ""
        // A store's token signs a device in to the store app; the admin token opens the dashboard.
        switch token.isEmpty ? nil : principal(token: token) {
        case .admin?: reply.send(startSession(location: "/dashboard"))
        case .store?: reply.send(App.storeSession(token: token))
        case nil: reply.send(html(401, loginPage(error: "令牌错误 Wrong token.")))
        }
    }

    static func formFields(_ body: [UInt8]) -> [String: String] {
        var out: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard let k = kv.first else { continue }
            out[percentDecode(String(k))] = kv.count > 1 ? percentDecode(String(kv[1])) : ""
        }
        return out
    }

    static func percentDecode(_ s: String) -> String {
        var bytes: [UInt8] = []
        var u = Array(s.utf8)[...]
        while let c = u.popFirst() {
            if c == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if c == UInt8(ascii: "%"), u.count >= 2,
                let v = UInt8(String(decoding: u.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                u = u.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An HTML page under a strict policy: nothing from outside, inline styles, forms to this origin only; `scripts`
    /// allows this origin's scripts and fetches (the store app's `/store/app.js`), never inline ones.
    func html(_ status: Int, _ body: String, scripts: Bool = false) -> Response {
        let policy =
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'"
            + (scripts ? "; script-src 'self'; connect-src 'self'" : "")
        return Response(
            status: status,
            headers: [
                ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"), ("Content-Security-Policy", policy),
                ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
            ], body: Array(body.utf8))
    }

    func loginPage(error: String?) -> String {
        App.page(
            title: "ocss — sign in",
            body: """
                <main class="narrow"><h1>ocss</h1>
                <form method="post" action="/login"><label for="t">管理令牌或门店令牌 Admin or store token</label>
                <input id="t" name="token" type="password" autocomplete="current-password" required>
                <button type="submit">登录 Sign in</button></form>
                \(error.map { "<p class=\"err\">\(App.esc($0))</p>" } ?? "")</main>
                """)
    }

    /// `GET /dashboard?from&to`: Chinese first, English second. Orders per day, sales by platform (per currency: money
    /// is never added across currencies), orders by province and by store (most orders first, stores by id and name),
    /// the work queues (address review, unroutable) with the oldest orders waiting, stock-outs at the store that gave
    /// the order back, promotions; days in the business time zone.
    func dashboard(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        guard hasSession(r) else {
            return reply.send(Response(status: 303, headers: [("Location", "/login"), ("Cache-Control", "no-store")], body: []))
        }
        let (from, to) = try window(r)
        let (days, platforms, provinces, stores, kpis, stockouts, promos, queues, review) = try engine.readers.read { db in
            (
                try Analytics.sales(db, from: from, to: to, by: .day), try Analytics.sales(db, from: from, to: to, by: .platform),
                try Analytics.sales(db, from: from, to: to, by: .province, limit: 40),
                try Analytics.sales(db, from: from, to: to, by: .store, limit: 40),
                try Analytics.routing(db, from: from, to: to), try Analytics.stockOuts(db, from: from, to: to, limit: 8),
                try Analytics.promotions(db),
                try Repository.orderCounts(db, statuses: ["address_review", "unroutable"]),
                try Repository.orders(db, status: "address_review", platform: nil, after: 0, limit: 8)
            )
        }
        let names = Dictionary(engine.allStores.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        func storeLabel(_ id: String) -> String { names[id].map { "\(id) \($0)" } ?? id }
        // Orders add up across currencies; money does not.
        func ordersByKey(_ rows: [Analytics.SalesRow], top: Int) -> [(String, Double)] {
            var sums: [String: Int64] = [:]
            for row in rows { sums[row.key, default: 0] += row.orders }
            return sums.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(top).map { ($0.key, Double($0.value)) }
        }
        // Every day of the window, zero where there were no orders.
        var series: [(String, Double)] = []
        if let a = LocalDate.dayNumber(from), let b = LocalDate.dayNumber(to) {
            let byDay = Dictionary(days.map { ($0.key, Double($0.orders)) }, uniquingKeysWith: +)
            for d in a...b { let k = LocalDate.string(dayNumber: d); series.append((k, byDay[k] ?? 0)) }
        }
        let totalOrders = days.reduce(0) { $0 + $1.orders }
        var salesByCurrency: [String: Int64] = [:]
        for d in days { salesByCurrency[d.currency, default: 0] &+= d.amountMinor }
        let sales = salesByCurrency.sorted { $0.key < $1.key }.map { App.money($0.value, currency: $0.key) }.joined(separator: " · ")
        let currencies = Set(platforms.map(\.currency))
        let tiles: [(String, String)] = [
            ("订单 Orders", App.grouped(totalOrders)), ("销售额 Sales", sales.isEmpty ? "–" : sales),
            ("已派单 Routed", kpis.orders == 0 ? "–" : "\(Int((Double(kpis.routed) / Double(kpis.orders) * 100).rounded()))%"),
            ("平均距离 Mean distance", kpis.meanDistanceMetres.map { String(format1: $0 / 1000) + " km" } ?? "–"),
            ("P90 距离 p90 distance", kpis.p90DistanceMetres.map { String(format1: $0 / 1000) + " km" } ?? "–"),
            ("改派率 Reroute rate", String(format1: kpis.rerouteRate * 100) + "%"),
            ("无法派单率 Unroutable", String(format1: kpis.unroutableRate * 100) + "%"),
            ("接单用时 Time to accept", kpis.meanSecondsToAccept.map { "\(Int($0.rounded())) s" } ?? "–"),
            ("超时 SLA breaches", App.grouped(kpis.slaBreaches)),
            ("待核地址 Address review", App.grouped(Int64(queues["address_review"] ?? 0))),
            ("待重新派单 Unroutable now", App.grouped(Int64(queues["unroutable"] ?? 0))),
        ]
        let now = engine.clock.now()
        let reviewRows = review.map { o -> String in
            let waited = o.statusAt.map { App.duration(now - $0) } ?? "–"
            return "<tr><td>\(o.id)</td><td>\(App.esc(o.platform))</td><td>\(App.esc(o.platformOrderID))</td><td>\(waited)</td>"
                + "<td>\(App.esc(o.summary ?? ""))</td></tr>"
        }.joined()
        let reviewTable =
            review.isEmpty
            ? "<p class=\"empty\">没有待核地址的订单 No order is waiting for address review.</p>"
            : "<table><thead><tr><th>订单 Order</th><th>平台 Platform</th><th>平台单号 Platform id</th><th>等待 Waiting</th><th>原因 Why</th></tr></thead>"
                + "<tbody>\(reviewRows)</tbody></table><p class=\"empty\">修正地址 Correct with <code>POST /v1/orders/{id}/address</code>; "
                + "全部 all: <code>GET /v1/orders?status=address_review</code></p>"
        let platformSales = platforms.map { row in
            (currencies.count > 1 ? "\(row.key) \(row.currency)" : row.key, Double(row.amountMinor) / 100)
        }
        let unit = currencies.count == 1 ? App.currencySymbol(currencies.first!) : ""
        let body = """
            <header><h1>ocss 运营看板 dashboard</h1><form method="get" action="/dashboard">
            <label>从 From <input type="date" name="from" value="\(from)"></label> <label>到 To <input type="date" name="to" value="\(to)"></label>
            <button>查看 Show</button></form>
            <form method="post" action="/logout"><button>退出 Sign out</button></form></header>
            <section class="tiles">\(tiles.map { "<div class=\"tile\"><div class=\"k\">\($0.0)</div><div class=\"v\">\(App.esc($0.1))</div></div>" }.joined())</section>
            <section class="grid">
            <figure id="orders-by-day"><figcaption>每日订单 Orders per day</figcaption>\(Charts.line(series))</figure>
            <figure id="sales-by-platform"><figcaption>各平台销售额 Sales by platform\(currencies.count > 1 ? "（按币种 per currency）" : "")</figcaption>\(Charts.bars(platformSales, unit: unit))</figure>
            <figure id="orders-by-province"><figcaption>各省订单 Orders by province (top 10)</figcaption>\(Charts.bars(ordersByKey(provinces, top: 10), unit: ""))</figure>
            <figure id="orders-by-store"><figcaption>各门店订单 Orders by store (top 10)</figcaption>\(Charts.bars(ordersByKey(stores, top: 10).map { (storeLabel($0.0), $0.1) }, unit: ""))</figure>
            <figure id="address-review"><figcaption>待核地址 Orders waiting for address review (oldest first)</figcaption>\(reviewTable)</figure>
            <figure id="stockouts"><figcaption>缺货与无法派单 Stock-outs and unroutable orders</figcaption>\(Charts.bars(stockouts.map { ("\($0.kind == "unroutable" ? "无法派单 unroutable: \($0.key)" : "缺货 out of stock at " + storeLabel($0.key))", Double($0.count)) }, unit: ""))</figure>
            <figure id="promotions"><figcaption>优惠码 发放/核销 Promotion codes issued / redeemed\(promos.failedAttempts > 0 ? " (\(promos.failedAttempts) failed attempts)" : "")</figcaption>\(Charts.pairs(promos.campaigns.map { ($0.name, Double($0.issued), Double($0.redeemed)) }))</figure>
            </section>
            <section id="devices"><h2>门店设备 Store devices</h2>
            <form method="post" action="/dashboard/pair"><label>门店编号 Store id <input name="store" required maxlength="128"></label>
            <button type="submit">生成配对二维码 Pairing QR code</button></form></section>
            <footer>\(from) – \(to)（\(App.esc(businessTimeZone)) 日 days）· 生成于 generated \(rfc3339(now))</footer>
            """
        reply.send(html(200, App.page(title: "ocss 运营看板 dashboard", body: body)))
    }

    /// `POST /logout`: ends the session and clears its cookie.
    func logout(_ r: Request, _ p: RouteContext, _ reply: ReplyCounter) throws {
        for part in (r.header("cookie") ?? "").split(separator: ";") {
            let kv = part.trimmingPrefix(" ").split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0] == App.cookieName else { continue }
            let hash = Crypto.sha256Hex(Array(kv[1].utf8))
            _ = sessions.withLock { $0.removeValue(forKey: hash) }
        }
        reply.send(
            Response(
                status: 303,
                headers: [
                    ("Location", "/login"), ("Cache-Control", "no-store"),
                    ("Set-Cookie", "\(App.cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
                ], body: []))
    }

    /// Minor units as money in `currency` (`¥1,234.50`, `USD 12.00`).
    static func money(_ minor: Int64, currency: String) -> String {
        let major = grouped(minor / 100), cents = abs(minor % 100)
        return currencySymbol(currency) + major + "." + (cents < 10 ? "0" : "") + String(cents)
            + (currencySymbol(currency).isEmpty ? " " + currency : "")
    }

    static func currencySymbol(_ code: String) -> String {
        switch code {
        case "CNY": "¥"
        case "USD": "US$"
        case "EUR": "€"
        case "HKD": "HK$"
        default: ""
        }
    }

    /// `3 min`, `2 h`, `5 d`.
    static func duration(_ seconds: Double) -> String {
        let s = max(0, seconds)
        return s < 3600 ? "\(Int(s / 60)) min" : s < 172_800 ? "\(Int(s / 3600)) h" : "\(Int(s / 86_400)) d"
    }

    static func page(title: String, body: String) -> String {
        """
        <!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(esc(title))</title><style>
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:16px;background:#f6f7f9;color:#1d232b}
        header{display:flex;flex-wrap:wrap;gap:12px;align-items:center;justify-content:space-between}
        h1{font-size:1.3rem;margin:0 0 8px}
        .tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:8px;margin:12px 0}
        .tile{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px #0001}
        .tile .k{font-size:.75rem;color:#5b6470}.tile .v{font-size:1.3rem;font-weight:600}
        .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));gap:12px}
        figure{background:#fff;border-radius:8px;margin:0;padding:10px 12px;box-shadow:0 1px 2px #0001}
        figcaption{font-weight:600;margin-bottom:6px}svg{width:100%;height:auto;display:block}
        .narrow{max-width:360px;margin:10vh auto;background:#fff;padding:24px;border-radius:8px}
        input,button{font:inherit;padding:6px 8px;margin:4px 0}.narrow input{width:100%;box-sizing:border-box}
        .err{color:#b3261e}footer{color:#5b6470;font-size:.8rem;margin-top:12px}.empty{color:#5b6470;font-size:.9rem}
        table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #e3e6ea}
        header form{display:inline-block}
        </style></head><body>\(body)</body></html>
        """
    }

    static func esc(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }

    static func grouped(_ v: Int64) -> String {
        let s = String(abs(v))
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (v < 0 ? "-" : "") + out
    }
}

extension String {
    /// One decimal, no Foundation.
    init(format1 v: Double) {
        let r = (v * 10).rounded() / 10
        self = r == r.rounded() ? String(Int64(r)) + ".0" : String(r)
    }
}

/// Inline SVG charts; every mark carries a class (`bar`, `line`, `point`) the browser test counts.
enum Charts {
    static let palette = ["#3867d6", "#20bf6b", "#f7b731", "#eb3b5a", "#8854d0", "#0fb9b1", "#fa8231", "#4b6584"]

    static func empty() -> String { "<p class=\"empty\">此期间无数据 No data in this window.</p>" }

    /// A line over the days of the window, with a point per day and the axis maximum.
    static func line(_ series: [(String, Double)]) -> String {
        guard series.contains(where: { $0.1 > 0 }) else { return empty() }
        let w = 600.0, h = 220.0, left = 44.0, bottom = 24.0, top = 10.0
        let maxV = max(1, series.map(\.1).max() ?? 1)
        let n = max(1, series.count - 1)
        func x(_ i: Int) -> Double { left + (w - left - 10) * Double(i) / Double(n) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - v / maxV) }
        let points = series.enumerated().map { i, p in "\(r(x(i))),\(r(y(p.1)))" }.joined(separator: " ")
        var svg = "<svg viewBox=\"0 0 \(Int(w)) \(Int(h))\" role=\"img\" aria-label=\"orders per day\">"
        svg += "<line x1=\"\(left)\" y1=\"\(r(y(0)))\" x2=\"\(w - 10)\" y2=\"\(r(y(0)))\" stroke=\"#c9ced6\"/>"
        svg += "<text x=\"\(left - 6)\" y=\"\(r(y(maxV) + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#5b6470\">\(Int(maxV))</text>"
        svg += "<text x=\"\(left - 6)\" y=\"\(r(y(0) + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#5b6470\">0</text>"
        svg += "<polyline class=\"line\" fill=\"none\" stroke=\"\(palette[0])\" stroke-width=\"2\" points=\"\(points)\"/>"
        for (i, p) in series.enumerated() {
            svg +=
                "<circle class=\"point\" cx=\"\(r(x(i)))\" cy=\"\(r(y(p.1)))\" r=\"2.5\" fill=\"\(palette[0])\"><title>\(p.0): \(Int(p.1))</title></circle>"
        }
        if let first = series.first, let last = series.last {
            svg += "<text x=\"\(left)\" y=\"\(h - 6)\" font-size=\"11\" fill=\"#5b6470\">\(first.0)</text>"
            svg += "<text x=\"\(w - 10)\" y=\"\(h - 6)\" text-anchor=\"end\" font-size=\"11\" fill=\"#5b6470\">\(last.0)</text>"
        }
        return svg + "</svg>"
    }

    /// Horizontal bars with labels and values.
    static func bars(_ items: [(String, Double)], unit: String) -> String {
        guard !items.isEmpty else { return empty() }
        let rowH = 26.0, w = 600.0, labelW = 170.0
        let h = rowH * Double(items.count) + 6
        let maxV = max(1, items.map(\.1).max() ?? 1)
        var svg = "<svg viewBox=\"0 0 \(Int(w)) \(Int(h))\" role=\"img\">"
        for (i, it) in items.enumerated() {
            let y = 3 + rowH * Double(i)
            let bw = max(2, (w - labelW - 90) * it.1 / maxV)
            svg +=
                "<text x=\"\(labelW - 6)\" y=\"\(r(y + 16))\" text-anchor=\"end\" font-size=\"12\" fill=\"#1d232b\">\(App.esc(String(it.0.prefix(24))))</text>"
            svg +=
                "<rect class=\"bar\" x=\"\(labelW)\" y=\"\(r(y + 3))\" width=\"\(r(bw))\" height=\"\(rowH - 8)\" rx=\"3\" fill=\"\(palette[i % palette.count])\"/>"
            svg +=
                "<text x=\"\(r(labelW + bw + 6))\" y=\"\(r(y + 16))\" font-size=\"12\" fill=\"#5b6470\">\(unit)\(App.grouped(Int64(it.1.rounded())))</text>"
        }
        return svg + "</svg>"
    }

    /// Two bars per item (issued, redeemed).
    static func pairs(_ items: [(String, Double, Double)]) -> String {
        guard !items.isEmpty else { return empty() }
        return bars(items.flatMap { [("\($0.0) issued", $0.1), ("\($0.0) redeemed", $0.2)] }, unit: "")
    }

    static func r(_ v: Double) -> String { String((v * 10).rounded() / 10) }
}
