import OCSSCore
import OCSSPlatforms
import OCSSStore
import OCSSEngine

/// The store app's HTML: Chinese first with English, a phone's width first, no framework, nothing from outside.
enum StorePages {
    /// One assignment as staff see it: the order (masked for stores) and where it stands.
    struct Card {
        var assignmentID: Int64
        var orderID: Int64
        var status: String
        var reason: String?
        var order: CanonicalOrder?

        init(_ a: AssignmentRow) {
            assignmentID = a.id
            orderID = a.orderID
            status = a.status
            reason = a.reason
            order = try? CanonicalJSON.decode(CanonicalOrder.self, Array(a.payload.utf8))
        }

        /// What staff call the order: the platform's day number when it has one.
        var label: String { order?.pickup_no.map { "#\($0)" } ?? "No.\(orderID)" }
    }

    struct ListView {
        var store: Store
        var open: [Card]
        var closed: [Card]
        var cursor: Int64
        var deadlines: [Int64: (acceptBy: Double?, readyBy: Double?)]
        var formToken: String
        /// The notice's text, already escaped.
        var message: String?
        var now: Double
    }

    static let statusWords: [String: String] = [
        "assigned": "新订单 New", "accepted": "已接单 Accepted", "picking": "拣货中 Picking", "packed": "已打包 Packed",
        "ready": "待取 Ready", "handed_over": "已交骑手 Handed over", "shipped": "已发货 Shipped", "cancelled": "已取消 Cancelled",
        "rejected": "已拒单 Rejected", "delivered": "已送达 Delivered", "picked_up": "已取货 Collected",
    ]

    /// What the list says after a form: a fixed text per kind, so a link cannot put words of its own on the page (the
    /// argument, a status or a SKU, is checked or escaped).
    enum Notice: String {
        case shipNeedsTracking = "ship-needs-tracking", noSKU = "no-sku", outOfStock = "out-of-stock", unknownSKU = "unknown-sku"
        case illegal, notFound = "not-found", forbidden, invalid, unreadable, storage
        case autoAcceptOn = "auto-accept-on", autoAcceptOff = "auto-accept-off"

        init(_ refusal: ActionRefusal) {
            switch refusal {
            case .illegalTransition: self = .illegal
            case .orderNotFound: self = .notFound
            case .forbidden: self = .forbidden
            case .invalidField, .addressUnresolved: self = .invalid
            case .unreadableOrder: self = .unreadable
            case .storageUnavailable: self = .storage
            }
        }

        func text(_ arg: String?) -> String {
            let a = App.esc(String((arg ?? "").prefix(128)))
            switch self {
            case .shipNeedsTracking: return "发货需要快递公司和运单号 Shipping needs a carrier and a tracking number"
            case .noSKU: return "缺少商品编码 No SKU given"
            case .outOfStock: return "\(a) 已标记缺货 marked out of stock"
            case .unknownSKU: return "本店没有 \(a) This store does not stock \(a)"
            case .illegal:
                guard let arg, let words = statusWords[arg] else { return "订单状态已变，无法这样操作 The order has moved on" }
                return "订单现在是「\(App.esc(words))」，无法这样操作 The order is \(App.esc(arg)) now"
            case .notFound: return "找不到订单 Order not found"
            case .forbidden: return "这不是本店的订单 Not this store's order"
            case .invalid: return "请检查填写的内容 Check what the form says"
            case .unreadable: return "订单无法读取 The order cannot be read"
            case .storage: return "暂时无法保存，请重试 Could not be saved; try again"
            case .autoAcceptOn: return "自动接单已开启 New orders are now accepted at once"
            case .autoAcceptOff: return "自动接单已关闭 New orders wait for a tap again"
            }
        }
    }

    static func home(_ v: ListView) -> String {
        page(
            title: "\(v.store.name) · 门店 Store",
            body: """
                <header><div><h1>\(App.esc(v.store.name))</h1><span class="muted">\(App.esc(v.store.id))</span></div>
                <div class="tools"><button type="button" id="sound" class="ghost">开启提示音 Sound on</button>
                <form method="post" action="/store/logout"><input type="hidden" name="form_token" value="\(v.formToken)">
                <button class="ghost" type="submit">退出 Sign out</button></form></div></header>
                \(list(v))
                <form method="post" action="/store/settings" class="stock"><input type="hidden" name="form_token" value="\(v.formToken)">
                <input type="hidden" name="auto_accept" value="\(v.store.rules.autoAccept ? "off" : "on")">
                <button type="submit" class="ghost" id="auto-accept">\(v.store.rules.autoAccept
                    ? "自动接单：开 Auto-accept is on (turn off)" : "自动接单：关 Auto-accept is off (turn on)")</button></form>
                <details class="stock"><summary>缺货登记 Mark a SKU out of stock</summary>
                <form method="post" action="/store/stockouts"><input type="hidden" name="form_token" value="\(v.formToken)">
                <label>商品编码 SKU <input name="sku" required maxlength="128"></label>
                <button type="submit">标记缺货 Out of stock</button></form></details>
                <script src="/store/app.js"></script>
                """)
    }

    /// The list alone (what the script swaps in): open cards, then what left the list lately.
    static func list(_ v: ListView) -> String {
        let newCount = v.open.filter { $0.status == "assigned" }.count
        var out = "<section id=\"list\" data-cursor=\"\(v.cursor)\" data-new=\"\(newCount)\">"
        if let m = v.message { out += "<p class=\"msg\" role=\"status\">\(m)</p>" }
        let printable = v.open.filter { ["accepted", "picking", "packed", "ready"].contains($0.status) }
        out += "<div class=\"bar\"><h2>待处理 Open <span class=\"count\">\(v.open.count)</span></h2>"
        if !printable.isEmpty {
            out +=
                "<a class=\"button ghost\" href=\"/store/print?ids=\(printable.map { String($0.assignmentID) }.joined(separator: ","))\">"
                + "打印拣货单 Print pick list (\(printable.count))</a>"
        }
        out += "</div>"
        if v.open.isEmpty { out += "<p class=\"empty\">暂无订单 Nothing to do. 新订单会自动出现 New orders appear here.</p>" }
        for c in v.open { out += card(c, v) }
        if !v.closed.isEmpty {
            out += "<h2>最近结束 Recently closed</h2><ul class=\"closed\">"
            for c in v.closed {
                out +=
                    "<li data-closed=\"\(c.assignmentID)\"><b>\(App.esc(c.label))</b> \(App.esc(statusWords[c.status] ?? c.status))"
                    + (c.reason.map { " · " + App.esc($0) } ?? "") + "</li>"
            }
            out += "</ul>"
        }
        return out + "</section>"
    }

    static func card(_ c: Card, _ v: ListView) -> String {
        let o = c.order
        let d = v.deadlines[c.orderID]
        var h = "<article class=\"card \(c.status)\" data-assignment=\"\(c.assignmentID)\" data-status=\"\(c.status)\">"
        h += "<div class=\"top\"><span class=\"no\">\(App.esc(c.label))</span>"
        h += "<span class=\"badge\">\(App.esc(statusWords[c.status] ?? c.status))</span>"
        if let p = o?.platform { h += "<span class=\"muted\">\(App.esc(p))</span>" }
        h += "</div>"
        if let by = d?.acceptBy { h += countdown("接单 Accept by", by, v.now) }
        if let by = d?.readyBy { h += countdown("备好 Ready by", by, v.now) }
        h += "<ul class=\"lines\">"
        for l in o?.lines ?? [] {
            let name = l.title ?? l.sku ?? l.platform_sku_id ?? "?"
            h += "<li><span class=\"qty\">×\(l.quantity)</span> \(App.esc(name))"
            if let spec = l.spec { h += " <span class=\"muted\">\(App.esc(spec))</span>" }
            if l.title != nil, let sku = l.sku { h += " <span class=\"sku\">\(App.esc(sku))</span>" }
            h += "</li>"
        }
        h += "</ul>"
        if let remark = o?.remark { h += "<p class=\"remark\">备注 Note: \(App.esc(remark))</p>" }
        h += "<p class=\"muted\">\(App.esc(way(o)))"
        if let name = o?.buyer?.name { h += " · \(App.esc(name))" }
        h += "</p>"
        h += actions(c, v)
        return h + "</article>"
    }

    static func countdown(_ label: String, _ epoch: Double, _ now: Double) -> String {
        let left = Int(epoch - now)
        let text = (left < 0 ? "-" : "") + "\(abs(left) / 60):" + String(format2(abs(left) % 60))
        return "<p class=\"due\(left < 0 ? " late" : "")\">\(label) <time data-deadline=\"\(Int64(epoch * 1000))\">\(text)</time></p>"
    }

    static func format2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// How the order leaves: what the buttons offer follows from it.
    static func way(_ o: CanonicalOrder?) -> String {
        if o?.fulfillment == "pickup" { return "到店自取 In-store pickup" }
        switch o?.delivery_by {
        case "platform_rider": return "平台骑手配送 Platform rider"
        case "store": return "门店配送 Store delivery"
        default: return "快递 Parcel"
        }
    }

    static func button(_ c: Card, _ action: String, _ text: String, _ v: ListView, primary: Bool = false, extra: String = "") -> String {
        "<form method=\"post\" action=\"/store/assignments/\(c.assignmentID)/\(action)\" class=\"act\">"
            + "<input type=\"hidden\" name=\"form_token\" value=\"\(v.formToken)\">\(extra)"
            + "<button type=\"submit\" data-action=\"\(action)\"\(primary ? " class=\"primary\"" : "")>\(text)</button></form>"
    }

    static func actions(_ c: Card, _ v: ListView) -> String {
        let o = c.order
        var h = "<div class=\"actions\">"
        let out: String
        if o?.fulfillment == "pickup" {
            out = button(c, "pickup", "顾客已取 Collected", v, primary: c.status == "ready")
        } else if o?.delivery_by == "platform_rider" || o?.delivery_by == "store" {
            out = button(c, "hand_over", "交给骑手 Hand over", v, primary: c.status == "ready")
        } else {
            out = button(
                c, "ship", "发货 Ship", v, primary: c.status == "ready",
                extra: "<input name=\"carrier\" placeholder=\"快递 Carrier\" maxlength=\"64\" required>"
                    + "<input name=\"tracking_number\" placeholder=\"单号 Tracking no.\" maxlength=\"64\" required>")
        }
        switch c.status {
        case "assigned":
            h += button(c, "accept", "接单 Accept", v, primary: true)
            var reject = "<details class=\"reject\"><summary>拒单 Reject</summary>"
            reject += "<form method=\"post\" action=\"/store/assignments/\(c.assignmentID)/reject\">"
            reject += "<input type=\"hidden\" name=\"form_token\" value=\"\(v.formToken)\">"
            reject += "<label>原因 Reason <select name=\"reason\"><option value=\"out_of_stock\">缺货 Out of stock</option>"
            reject += "<option value=\"too_busy\">太忙 Too busy</option><option value=\"closed\">已打烊 Closed</option>"
            reject += "<option value=\"other\">其他 Other</option></select></label>"
            for l in o?.lines ?? [] where l.sku != nil {
                reject += "<label class=\"line\"><input type=\"checkbox\" name=\"sku\" value=\"\(App.esc(l.sku!))\"> 缺 Missing: "
                reject += "\(App.esc(l.title ?? l.sku!))</label>"
            }
            reject += "<input name=\"note\" placeholder=\"备注 Note\" maxlength=\"200\">"
            reject += "<button type=\"submit\" data-action=\"reject\">确认拒单 Reject</button></form></details>"
            h += reject
        case "accepted":
            h += button(c, "pick", "开始拣货 Pick", v, primary: true) + button(c, "ready", "备好 Ready", v) + out
        case "picking", "packed":
            h += button(c, "ready", "备好 Ready", v, primary: true) + out
        case "ready":
            h += out
        default: break
        }
        if c.status != "assigned" {
            h += "<a class=\"button ghost\" href=\"/store/print?ids=\(c.assignmentID)\">打印 Print</a>"
        }
        return h + "</div>"
    }

    /// The pick list: every line of the chosen orders grouped by SKU (what to fetch from the shelves), then one
    /// ticket per order (number, lines, note, masked buyer) to go with the bag.
    static func pickList(store: Store, cards: [Card], paper: String, at: Double) -> String {
        var totals: [(key: String, title: String, spec: String?, qty: Int)] = []
        var index: [String: Int] = [:]
        for c in cards {
            for l in c.order?.lines ?? [] {
                let key = l.sku ?? l.platform_sku_id ?? "?"
                if let i = index[key] {
                    totals[i].qty += l.quantity
                } else {
                    index[key] = totals.count
                    totals.append((key, l.title ?? key, l.spec, l.quantity))
                }
            }
        }
        var h = "<main class=\"print p\(paper)\"><h1>拣货单 Pick list</h1><p>\(App.esc(store.name)) · \(Timestamps.local(at))</p>"
        h += "<table><tr><th>商品 Item</th><th>编码 SKU</th><th>数量 Qty</th></tr>"
        for t in totals.sorted(by: { $0.key < $1.key }) {
            h += "<tr><td>\(App.esc(t.title))\(t.spec.map { " <small>\(App.esc($0))</small>" } ?? "")</td>"
            h += "<td>\(App.esc(t.key))</td><td class=\"n\">\(t.qty)</td></tr>"
        }
        h += "</table>"
        for c in cards {
            h += "<section class=\"ticket\"><h2>\(App.esc(c.label))</h2><p>\(App.esc(way(c.order)))</p><ul>"
            for l in c.order?.lines ?? [] {
                h += "<li>×\(l.quantity) \(App.esc(l.title ?? l.sku ?? "?"))\(l.spec.map { " (\(App.esc($0)))" } ?? "")</li>"
            }
            h += "</ul>"
            if let remark = c.order?.remark { h += "<p class=\"remark\">备注 Note: \(App.esc(remark))</p>" }
            if let name = c.order?.buyer?.name { h += "<p>\(App.esc(name))\(c.order?.buyer?.phone.map { " " + App.esc($0) } ?? "")</p>" }
            h += "<p class=\"muted\">订单 Order \(c.orderID) · \(App.esc(c.order?.platform ?? ""))</p></section>"
        }
        h += "<p class=\"noprint\"><a class=\"button\" href=\"/store\">返回 Back</a> "
        h += "<a class=\"button ghost\" href=\"?ids=\(cards.map { String($0.assignmentID) }.joined(separator: ","))&amp;paper=58\">58 mm</a> "
        h += "<a class=\"button ghost\" href=\"?ids=\(cards.map { String($0.assignmentID) }.joined(separator: ","))&amp;paper=80\">80 mm</a> "
        h += "<a class=\"button ghost\" href=\"?ids=\(cards.map { String($0.assignmentID) }.joined(separator: ","))&amp;paper=a4\">A4</a></p>"
        return page(title: "拣货单 Pick list", body: h + "</main>")
    }

    static func pairConfirm(code: String, store: Store) -> String {
        page(
            title: "配对 Pair this device",
            body: """
                <main class="narrow"><h1>\(App.esc(store.name))</h1>
                <p>把这台设备登记为本店设备？This device will act for the store until it signs out or its token is revoked.</p>
                <form method="post" action="/store/pair"><input type="hidden" name="code" value="\(App.esc(code))">
                <button class="primary" type="submit" id="pair">在此设备登录 Pair this device</button></form></main>
                """)
    }

    /// What the dashboard shows the admin: the QR code to scan with the store's device, and the link as text.
    static func pairLinkPage(store: Store, url: String, qr: String?) -> String {
        page(
            title: "配对 Pair a device",
            body: """
                <main class="narrow"><h1>\(App.esc(store.name))</h1>
                <p>用门店设备扫码，10 分钟内有效，仅可使用一次。Scan with the store's phone or tablet: valid for 10 minutes, once.</p>
                <div id="qr">\(qr ?? "")</div><p><a href="\(App.esc(url))">\(App.esc(url))</a></p>
                <p><a class="button ghost" href="/dashboard">返回 Back</a></p></main>
                """)
    }

    static func message(_ text: String) -> String {
        page(
            title: "ocss",
            body: "<main class=\"narrow\"><h1>ocss</h1><p class=\"err\">\(App.esc(text))</p>"
                + "<p><a class=\"button ghost\" href=\"/store\">返回 Back</a></p></main>")
    }

    static func page(title: String, body: String) -> String {
        """
        <!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(App.esc(title))</title><style>
        body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:0;padding:12px;background:#f4f5f7;color:#1d232b}
        header{display:flex;flex-wrap:wrap;gap:8px;align-items:center;justify-content:space-between}
        h1{font-size:1.25rem;margin:0}h2{font-size:1.05rem;margin:14px 0 8px}.muted{color:#5b6470;font-size:.85rem}
        .tools{display:flex;gap:6px;align-items:center}.bar{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap}
        #list{display:block}.count{background:#1d232b;color:#fff;border-radius:10px;padding:0 8px;font-size:.85rem}
        .card{background:#fff;border-radius:10px;padding:10px 12px;margin:0 0 10px;box-shadow:0 1px 3px #0002;border-left:6px solid #8a939e}
        .card.assigned{border-left-color:#d9480f}.card.ready{border-left-color:#2b8a3e}.card.accepted,.card.picking,.card.packed{border-left-color:#1864ab}
        @media(min-width:900px){#list .card{display:inline-block;vertical-align:top;width:calc(50% - 8px);margin-right:8px;box-sizing:border-box}}
        .top{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}.no{font-size:1.5rem;font-weight:700}
        .badge{background:#e9ecef;border-radius:6px;padding:1px 6px;font-size:.85rem}
        .lines{list-style:none;padding:0;margin:6px 0}.lines li{padding:3px 0;border-bottom:1px dashed #e3e6ea}
        .qty{display:inline-block;min-width:2.2em;font-weight:700}.sku{color:#5b6470;font-size:.75rem}
        .remark{background:#fff3bf;padding:4px 6px;border-radius:4px;margin:6px 0}
        .due{margin:2px 0;font-variant-numeric:tabular-nums}.due.late,.late{color:#c92a2a;font-weight:700}
        .actions{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start;margin-top:6px}.act{display:inline-flex;gap:4px;flex-wrap:wrap;margin:0}
        button,.button{font:inherit;font-size:1rem;padding:10px 14px;border-radius:8px;border:1px solid #adb5bd;background:#fff;color:#1d232b;
        text-decoration:none;display:inline-block;min-height:44px;box-sizing:border-box;cursor:pointer}
        .primary{background:#1864ab;border-color:#1864ab;color:#fff}.ghost{background:transparent}
        input,select{font:inherit;padding:8px;border-radius:6px;border:1px solid #adb5bd;max-width:100%}
        details{margin:4px 0}details form{display:flex;flex-direction:column;gap:6px;padding:6px 0}label.line{display:block}
        .msg{background:#e7f5ff;padding:8px;border-radius:6px}.empty{color:#5b6470}.closed{padding-left:18px;color:#5b6470}
        .stock{margin-top:16px}.narrow{max-width:420px;margin:8vh auto;background:#fff;padding:24px;border-radius:10px}.err{color:#b3261e}
        .toast{position:fixed;left:12px;right:12px;bottom:12px;background:#1d232b;color:#fff;padding:12px;border-radius:8px}
        table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px;border-bottom:1px solid #ccc}td.n{text-align:right;font-weight:700}
        .ticket{border-top:2px dashed #333;margin-top:10px;padding-top:6px}
        .print.p58{max-width:58mm;font-size:11px}.print.p80{max-width:80mm;font-size:12px}.print.pa4{max-width:190mm}
        @media print{body{background:#fff;padding:0}.noprint{display:none}.ticket{break-inside:avoid}.print.pa4 .ticket{break-before:auto}}
        @page{margin:4mm}
        </style></head><body>\(body)</body></html>
        """
    }

    /// The page's script: live updates by long poll (`/store/feed`), the list swapped in place, a sound and a title
    /// badge for new orders, a note when an order leaves the list other than by a tap here, countdowns.
    static let script = #"""
        (function () {
          "use strict";
          var audio = null, known = null, busy = false;
          function ids(root, attr) {
            var out = {};
            Array.prototype.forEach.call(root.querySelectorAll("[" + attr + "]"), function (e) { out[e.getAttribute(attr)] = e; });
            return out;
          }
          function tick() {
            Array.prototype.forEach.call(document.querySelectorAll("[data-deadline]"), function (e) {
              var ms = Number(e.getAttribute("data-deadline")) - Date.now(), a = Math.abs(ms);
              var s = Math.floor(a / 1000) % 60;
              e.textContent = (ms < 0 ? "-" : "") + Math.floor(a / 60000) + ":" + (s < 10 ? "0" : "") + s;
              if (ms < 0) { e.parentNode.classList.add("late"); }
            });
          }
          function beep() {
            if (!audio) { return; }
            try {
              var o = audio.createOscillator(), g = audio.createGain();
              o.frequency.value = 880; g.gain.value = 0.25; o.connect(g); g.connect(audio.destination);
              o.start(); o.stop(audio.currentTime + 0.35);
            } catch (e) {}
          }
          function toast(text) {
            var t = document.createElement("div");
            t.className = "toast"; t.setAttribute("role", "status"); t.textContent = text;
            document.body.appendChild(t);
            setTimeout(function () { t.remove(); }, 6000);
          }
          function badge() {
            var list = document.getElementById("list"), n = list ? Number(list.getAttribute("data-new")) : 0;
            var base = document.title.replace(/^\(\d+\) /, "");
            document.title = n > 0 ? "(" + n + ") " + base : base;
          }
          function refresh() {
            return fetch("/store?fragment=1", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
              if (r.redirected || r.status === 401) { location.href = "/login"; return; }
              if (r.status !== 200) { return; }
              return r.text().then(function (html) {
                var box = document.createElement("div");
                box.innerHTML = html;
                var fresh = box.querySelector("#list"), old = document.getElementById("list");
                if (!fresh || !old) { return; }
                var before = known || ids(old, "data-assignment"), after = ids(fresh, "data-assignment");
                var isNew = false;
                Object.keys(after).forEach(function (k) {
                  if (!before[k] && after[k].getAttribute("data-status") === "assigned") { isNew = true; }
                });
                Object.keys(before).forEach(function (k) {
                  if (!after[k]) {
                    var c = box.querySelector('[data-closed="' + k + '"]');
                    if (c) { toast(c.textContent); }
                  }
                });
                old.replaceWith(fresh);
                known = after;
                badge(); tick();
                if (isNew) { beep(); }
              });
            });
          }
          function poll() {
            var list = document.getElementById("list");
            if (!list) { return; }
            var cursor = list.getAttribute("data-cursor");
            fetch("/store/feed?after=" + cursor + "&wait=25", { credentials: "same-origin", cache: "no-store" })
              .then(function (r) { return r.status === 200 ? r.json() : null; })
              .then(function (j) {
                if (j && j.next_cursor !== cursor) { return refresh(); }
                if (!j) { return new Promise(function (ok) { setTimeout(ok, 3000); }); }
              })
              .catch(function () { return new Promise(function (ok) { setTimeout(ok, 3000); }); })
              .then(poll);
          }
          var sound = document.getElementById("sound");
          if (sound) {
            sound.addEventListener("click", function () {
              try { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); beep(); } catch (e) {}
              sound.textContent = "提示音已开 Sound is on";
            });
          }
          known = document.getElementById("list") ? ids(document.getElementById("list"), "data-assignment") : null;
          badge(); tick(); setInterval(tick, 1000); poll();
        })();
        """#
}
