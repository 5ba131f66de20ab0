import FoundationEssentials
import OCSSCore

/// Meituan 外卖/闪购 order pushes: form POSTs whose text fields are percent-encoded a second time.
/// `sig` = lower-hex MD5(callback_url + "?" + sorted "k=v" joined by "&" (sig excluded) + app_secret).
/// The sources disagree on whether the signed values are once-decoded (still %XX) or fully decoded,
/// so the once-decoded form is checked first and the fully decoded one as a fallback.
struct MeituanAdapter: PlatformAdapter {
    let platform = "meituan"
    let successBody = (contentType: "application/json", body: #"{"data":"ok"}"#)
    var contentTypes: [String] { ["application/x-www-form-urlencoded"] }
    /// Fields Meituan encodes twice.
    static let doubleEncoded: Set<String> = [
        "detail", "recipient_address", "recipient_name", "wm_poi_name", "wm_poi_address", "caution",
        "extras", "poi_receive_detail", "recipient_address_detail", "reason",
    ]

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {
        let secret = try AdapterSupport.requireSecret(credentials)
        guard let url = credentials?.callback_url?.nonEmpty else {
            throw AdapterError(.signature, "no callback_url configured for meituan (the URL Meituan signs over)", field: "callback_url")
        }
        let once = try AdapterSupport.formFields(m.body)
        guard let given = once["sig"] else { throw AdapterError(.signature, "missing sig", field: "sig") }
        let full = fullyDecoded(once)
        for candidate in [once, full]
        where Crypto.constantTimeEqual(
            Array(Signatures.meituan(url: url, candidate, secret: secret).utf8),
            Array(given.lowercased().utf8))
        {
            return
        }
        throw AdapterError(.signature, "signature does not match", field: "sig")
    }

    func signedTime(_ m: InboundMessage) -> (field: String, epochSeconds: Int64?)? {
        ("timestamp", (try? AdapterSupport.formFields(m.body))?["timestamp"].flatMap { Int64($0) })
    }

    func fullyDecoded(_ once: [String: String]) -> [String: String] {
        var out = once
        for k in Self.doubleEncoded { if let v = once[k], let d = AdapterSupport.formDecode(Substring(v)) { out[k] = d } }
        return out
    }

    struct Item: Decodable {
        var sku_id: String?
        var app_food_code: String?
        var quantity: Int
        var price: Double?
        var box_num: Double?
        var food_name: String?
        var spec: String?
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        let f = fullyDecoded(try AdapterSupport.formFields(m.body))
        guard let orderID = f["order_id"]?.nonEmpty, orderID.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw AdapterError(.payload, "order_id must be digits", field: "order_id")
        }
        // Meituan pushes each kind of news to its own callback; the merchant points them all here. The cancellation
        // push carries `reason_code` and no `status`; the refund push `notify_type` (apply, agree, reject, cancelRefund).
        if f["status"] == nil, let notice = Self.cancelOrRefund(f) {
            return .event(
                CanonicalOrder(
                    platform: platform, event: notice.event, platform_order_id: orderID,
                    idempotency_key: "meituan:\(orderID):\(notice.key)", shipping: .init(), lines: []))
        }
        let status = f["status"] ?? ""
        let event: String
        switch status {
        case "2", "4": event = "order.paid"
        case "9": event = "order.cancelled"
        default: return .ignored(reason: "status '\(status)' is not routed")
        }
        if event == "order.cancelled" {
            return .event(
                CanonicalOrder(
                    platform: platform, event: event, platform_order_id: orderID,
                    idempotency_key: "meituan:\(orderID):\(status)", shipping: .init(), lines: []))
        }
        guard let detailText = f["detail"] else { throw AdapterError(.payload, "detail is missing", field: "detail") }
        let items: [Item]
        do { items = try AdapterSupport.decode([Item].self, Array(detailText.utf8)) } catch {
            throw AdapterError(.payload, error.message, field: "detail" + (error.field.map { $0.hasPrefix("[") ? $0 : "." + $0 } ?? ""))
        }
        var lines: [CanonicalOrder.Line] = []
        for (i, it) in items.enumerated() {
            // Prices are yuan JSON numbers: through their shortest decimal text, never float arithmetic.
            let price = try AdapterSupport.money(it.price.map(Self.decimalText), field: "detail[\(i)].price")
            lines.append(
                .init(
                    sku: it.sku_id?.nonEmpty, platform_sku_id: it.app_food_code?.nonEmpty, quantity: it.quantity, unit_price_minor: price,
                    title: it.food_name?.nonEmpty, spec: it.spec?.nonEmpty))
        }
        var coordinates: CanonicalOrder.Coordinates?
        if let lat = f["latitude"].flatMap(Double.init), let lon = f["longitude"].flatMap(Double.init), lat != 0 || lon != 0 {
            coordinates = .init(lat: lat, lon: lon, crs: "GCJ-02")
        }
        let phone = f["recipient_phone"]?.nonEmpty
        let address = f["recipient_address"]?.nonEmpty
        // pick_type 1 is 到店自取 (the buyer collects); otherwise a Meituan rider takes it. delivery_time 0 is "as soon
        // as possible".
        let pickup = f["pick_type"] == "1"
        let expected = f["delivery_time"] == "0" ? nil : try Timestamps.epoch(f["delivery_time"], field: "delivery_time")
        var order =
            CanonicalOrder(
                platform: platform, event: event, platform_order_id: orderID, idempotency_key: "meituan:\(orderID):\(status)",
                buyer: .init(
                    name: f["recipient_name"]?.nonEmpty, phone: phone.map { $0.replacingUnderscoreExtension() }.flatMap { $0.0 },
                    phone_extension: phone.flatMap { $0.replacingUnderscoreExtension().1 }),
                shipping: .init(country: "CN", detail: f["recipient_address_detail"]?.nonEmpty, text: address, coordinates: coordinates),
                platform_store_id: f["app_poi_code"]?.nonEmpty,
                lines: lines, currency: "CNY", total_minor: f["total"].flatMap { Money.minorUnits($0) },
                shipping_fee_minor: f["shipping_fee"].flatMap { Money.minorUnits($0) },
                created_at: try Timestamps.epoch(f["ctime"], field: "ctime"))
        order.fulfillment = pickup ? "pickup" : "delivery"
        order.delivery_by = pickup ? nil : "platform_rider"
        order.pickup_no = f["day_seq"]?.nonEmpty
        order.remark = f["caution"]?.nonEmpty
        order.expected_at = expected
        return .event(order)
    }

    /// The event of a cancellation or refund push (nil for any other push): a cancellation is final; a whole-order
    /// refund the buyer applied for, or Meituan agreed to, stops fulfilment as other platforms' refunds do. A partial
    /// refund (`notify_type=part`) and the buyer withdrawing a request change nothing a store does.
    static func cancelOrRefund(_ f: [String: String]) -> (event: String, key: String)? {
        if f["reason_code"] != nil { return ("order.cancelled", "cancel") }
        switch f["notify_type"] {
        case "apply"?: return ("order.refund_requested", "refund.apply")
        case "agree"?: return ("order.refund_requested", "refund.agree")
        default: return nil
        }
    }

    /// Shortest decimal text of a JSON number (29.9 -> "29.9").
    static func decimalText(_ d: Double) -> String { "\(d)" }
}

extension String {
    /// Privacy numbers look like `number_ext`: the number and its extension.
    func replacingUnderscoreExtension() -> (String?, String?) {
        let parts = split(separator: "_", maxSplits: 1)
        return (parts.first.map(String.init), parts.count > 1 ? String(parts[1]) : nil)
    }
}
