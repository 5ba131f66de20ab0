/// The canonical order event every platform adapter produces (shared/platforms/CANONICAL.md).
/// Field names are the public JSON API.
public struct CanonicalOrder: Sendable, Hashable, Codable {
    public var platform: String
    public var channel: String?
    public var event: String
    public var platform_order_id: String
    public var idempotency_key: String
    public var buyer: Buyer?
    public var shipping: Shipping
    public var fulfillment: String?
    /// Who takes the order from the store: `platform_rider`, `store` (the store's own delivery) or `courier`; nil when
    /// the platform does not say (and for in-store pickup).
    public var delivery_by: String?
    public var platform_store_id: String?
    /// The platform's number for the order that staff and riders call out (Meituan `day_seq`, Ele.me `daySn`).
    public var pickup_no: String?
    /// The buyer's note to the store, as sent.
    public var remark: String?
    /// When the buyer expects the order (delivery or pickup time, RFC 3339 UTC), when the platform says.
    public var expected_at: String?
    public var lines: [Line]
    public var currency: String?
    public var total_minor: Int64?
    public var shipping_fee_minor: Int64?
    public var created_at: String?
    public var paid_at: String?

    public init(
        platform: String, channel: String? = nil, event: String, platform_order_id: String, idempotency_key: String,
        buyer: Buyer? = nil, shipping: Shipping, fulfillment: String? = "delivery", platform_store_id: String? = nil,
        lines: [Line], currency: String? = nil, total_minor: Int64? = nil, shipping_fee_minor: Int64? = nil,
        created_at: String? = nil, paid_at: String? = nil
    ) {
        self.platform = platform
        self.channel = channel
        self.event = event
        self.platform_order_id = platform_order_id
        self.idempotency_key = idempotency_key
        self.buyer = buyer
        self.shipping = shipping
        self.fulfillment = fulfillment
        self.platform_store_id = platform_store_id
        self.lines = lines
        self.currency = currency
        self.total_minor = total_minor
        self.shipping_fee_minor = shipping_fee_minor
        self.created_at = created_at
        self.paid_at = paid_at
    }

    public struct Buyer: Sendable, Hashable, Codable {
        public var name: String?
        public var phone: String?
        public var phone_extension: String?

        public init(name: String?, phone: String?, phone_extension: String? = nil) {
            self.name = name
            self.phone = phone
            self.phone_extension = phone_extension
        }
    }

    public struct Shipping: Sendable, Hashable, Codable {
        public var country: String?
        public var province: String?
        public var city: String?
        public var district: String?
        public var town: String?
        public var detail: String?
        public var postal_code: String?
        public var text: String?
        public var coordinates: Coordinates?
        public var address_precision: String?

        public init(
            country: String? = nil, province: String? = nil, city: String? = nil, district: String? = nil, town: String? = nil,
            detail: String? = nil, postal_code: String? = nil, text: String? = nil, coordinates: Coordinates? = nil,
            address_precision: String? = nil
        ) {
            self.country = country
            self.province = province
            self.city = city
            self.district = district
            self.town = town
            self.detail = detail
            self.postal_code = postal_code
            self.text = text
            self.coordinates = coordinates
            self.address_precision = address_precision
        }
    }

    /// A coordinate pair as the platform sent it, tagged with its CRS.
    public struct Coordinates: Sendable, Hashable, Codable {
        public var lat: Double
        public var lon: Double
        /// `WGS84`, `GCJ-02`, `BD-09` or `EPSG:nnnn`.
        public var crs: String

        public init(lat: Double, lon: Double, crs: String) {
            self.lat = lat
            self.lon = lon
            self.crs = crs
        }
    }

    public struct Line: Sendable, Hashable, Codable {
        public var sku: String?
        public var platform_sku_id: String?
        /// What staff see on the pick list: the product's name and its variant ("550ml", "大杯/少冰").
        public var title: String?
        public var spec: String?
        public var quantity: Int
        public var unit_price_minor: Int64?

        public init(
            sku: String?, platform_sku_id: String?, quantity: Int, unit_price_minor: Int64?, title: String? = nil, spec: String? = nil
        ) {
            self.sku = sku
            self.platform_sku_id = platform_sku_id
            self.quantity = quantity
            self.unit_price_minor = unit_price_minor
            self.title = title
            self.spec = spec
        }
    }
}

/// A field-level problem in an input, with the JSON path of the field (`lines[2].quantity`).
public struct FieldError: Error, Sendable, Hashable {
    public var field: String
    public var message: String
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

extension CanonicalOrder {
    static let platforms: Set<String> = ["shopify", "woocommerce", "taobao", "jd", "pinduoduo", "meituan", "eleme", "youzan", "direct"]
    static let events: Set<String> = ["order.created", "order.paid", "order.cancelled", "order.refund_requested", "ignore"]

    /// A free-text field and its longest accepted length in characters. `buyerTyped`: what the buyer typed (names,
    /// phones, the address), which a platform webhook cuts instead of refusing.
    typealias TextLimit<Root> = (field: String, path: any WritableKeyPath<Root, String?> & Sendable, limit: Int, buyerTyped: Bool)

    /// The limits (docs/openapi.yaml says the same). Real addresses are a few dozen characters; without a bound, a
    /// 1 MB body could carry a 300,000-character address, stored three times over and run through the geocoder
    /// (about a second of CPU).
    static let orderLimits: [TextLimit<CanonicalOrder>] = [
        ("channel", \.channel, 64, false), ("fulfillment", \.fulfillment, 64, false), ("platform_store_id", \.platform_store_id, 128, false),
        ("currency", \.currency, 16, false), ("created_at", \.created_at, 64, false), ("paid_at", \.paid_at, 64, false),
        ("delivery_by", \.delivery_by, 32, false), ("pickup_no", \.pickup_no, 32, false), ("remark", \.remark, 500, true),
        ("expected_at", \.expected_at, 64, false),
    ]
    static let lineLimits: [TextLimit<Line>] = [("title", \.title, 200, true), ("spec", \.spec, 200, true)]
    /// Who may take an order from a store (`delivery_by`).
    public static let deliveryBy: Set<String> = ["platform_rider", "store", "courier"]
    static let buyerLimits: [TextLimit<Buyer>] = [
        ("buyer.name", \.name, 200, true), ("buyer.phone", \.phone, 64, true), ("buyer.phone_extension", \.phone_extension, 32, true),
    ]
    static let shippingLimits: [TextLimit<Shipping>] = [
        ("shipping.country", \.country, 64, true), ("shipping.province", \.province, 100, true), ("shipping.city", \.city, 100, true),
        ("shipping.district", \.district, 100, true), ("shipping.town", \.town, 100, true), ("shipping.detail", \.detail, 500, true),
        ("shipping.postal_code", \.postal_code, 32, true), ("shipping.text", \.text, 1000, true),
        ("shipping.address_precision", \.address_precision, 64, false),
    ]

    static func firstOverLimit<Root>(_ root: Root, _ limits: [TextLimit<Root>]) -> FieldError? {
        limits.first { (root[keyPath: $0.path]?.unicodeScalars.count ?? 0) > $0.limit }
            .map { FieldError(field: $0.field, message: "at most \($0.limit) characters") }
    }

    static func cutBuyerTyped<Root>(_ root: inout Root, _ limits: [TextLimit<Root>], noting cut: inout [String]) {
        for t in limits where t.buyerTyped {
            guard let v = root[keyPath: t.path], v.unicodeScalars.count > t.limit else { continue }
            var kept = String.UnicodeScalarView()
            kept.append(contentsOf: v.unicodeScalars.prefix(t.limit))
            root[keyPath: t.path] = String(kept)
            cut.append(t.field)
        }
    }

    /// The order with what its buyer typed cut to the limits above, and the fields cut. For platform webhooks: the
    /// platform cannot change a buyer's address, so refusing it would lose the order (or have it redelivered
    /// forever). Ids and the rest are the adapter's and stay checked.
    public func clippingBuyerText() -> (order: CanonicalOrder, clipped: [String]) {
        var o = self
        var cut: [String] = []
        if o.buyer != nil { Self.cutBuyerTyped(&o.buyer!, Self.buyerLimits, noting: &cut) }
        Self.cutBuyerTyped(&o.shipping, Self.shippingLimits, noting: &cut)
        Self.cutBuyerTyped(&o, Self.orderLimits, noting: &cut)
        for i in o.lines.indices {
            var lineCut: [String] = []
            Self.cutBuyerTyped(&o.lines[i], Self.lineLimits, noting: &lineCut)
            cut += lineCut.map { "lines[\(i)].\($0)" }
        }
        return (o, cut)
    }

    /// Whether any of what only staff read (CANONICAL.md rule 9) is set.
    public var hasStaffFields: Bool {
        delivery_by != nil || pickup_no != nil || remark != nil || expected_at != nil
            || lines.contains { $0.title != nil || $0.spec != nil }
    }

    /// Semantic checks beyond JSON shape. Returns the first problem found.
    public func validate() -> FieldError? {
        if !Self.platforms.contains(platform) { return FieldError(field: "platform", message: "unknown platform '\(platform)'") }
        if !Self.events.contains(event) { return FieldError(field: "event", message: "unknown event '\(event)'") }
        if platform_order_id.isEmpty { return FieldError(field: "platform_order_id", message: "must not be empty") }
        if platform_order_id.unicodeScalars.count > 128 { return FieldError(field: "platform_order_id", message: "at most 128 characters") }
        if let tooLong = Self.firstOverLimit(self, Self.orderLimits) ?? buyer.flatMap({ Self.firstOverLimit($0, Self.buyerLimits) })
            ?? Self.firstOverLimit(shipping, Self.shippingLimits)
        {
            return tooLong
        }
        if idempotency_key.isEmpty || idempotency_key.unicodeScalars.count > 256 {
            return FieldError(field: "idempotency_key", message: "must be 1 to 256 characters")
        }
        if event == "order.created" || event == "order.paid" {
            if lines.isEmpty { return FieldError(field: "lines", message: "an order needs at least one line") }
            if lines.count > 500 { return FieldError(field: "lines", message: "at most 500 lines") }
        }
        for (i, line) in lines.enumerated() {
            if line.quantity <= 0 || line.quantity > 100_000 {
                return FieldError(field: "lines[\(i)].quantity", message: "must be between 1 and 100000")
            }
            if let sku = line.sku, sku.isEmpty || sku.unicodeScalars.count > 128 {
                return FieldError(field: "lines[\(i)].sku", message: "must be 1 to 128 characters or null")
            }
            if (line.platform_sku_id?.unicodeScalars.count ?? 0) > 128 {
                return FieldError(field: "lines[\(i)].platform_sku_id", message: "at most 128 characters")
            }
            if let t = Self.firstOverLimit(line, Self.lineLimits) {
                return FieldError(field: "lines[\(i)].\(t.field)", message: t.message)
            }
            if line.sku == nil && (line.platform_sku_id ?? "").isEmpty {
                return FieldError(field: "lines[\(i)].sku", message: "a line needs a sku or a platform_sku_id")
            }
        }
        if let d = delivery_by, !Self.deliveryBy.contains(d) {
            return FieldError(field: "delivery_by", message: "expected platform_rider, store or courier")
        }
        if let f = fulfillment, f != "delivery" && f != "pickup" {
            return FieldError(field: "fulfillment", message: "expected delivery or pickup")
        }
        if let c = currency, !Currency.iso4217.contains(c) {
            return FieldError(field: "currency", message: "expected an ISO 4217 code such as CNY or USD")
        }
        let money: [(String, Int64?)] =
            [("total_minor", total_minor), ("shipping_fee_minor", shipping_fee_minor)]
            + lines.indices.map { ("lines[\($0)].unit_price_minor", lines[$0].unit_price_minor) }
        if let (field, _) = money.first(where: { $0.1.map { !(0...Currency.maxMinorUnits).contains($0) } ?? false }) {
            return FieldError(field: field, message: "must be between 0 and \(Currency.maxMinorUnits) minor units")
        }
        if let c = shipping.coordinates {
            if !CoordinateSystem.isKnown(c.crs) {
                return FieldError(field: "shipping.coordinates.crs", message: "expected WGS84, GCJ-02, BD-09 or EPSG:nnnn")
            }
            // An EPSG system may be projected (lon = easting, lat = northing, in metres or feet): PROJ judges those.
            if let problem = CoordinateSystem.rangeProblem(lat: c.lat, lon: c.lon, crs: c.crs) {
                return FieldError(field: "shipping.coordinates", message: problem)
            }
        }
        return nil
    }
}

/// Names of coordinate systems the service accepts.
public enum CoordinateSystem {
    /// Exactly the names CANONICAL.md gives: `WGS84`, `GCJ-02`, `BD-09` or `EPSG:` and 1 to 6 digits.
    /// Why `lat`/`lon` cannot be a point in `crs`, or nil. Degrees for WGS84, GCJ-02 and BD-09; an EPSG system may be
    /// projected (lon = easting, lat = northing, in its own units), so PROJ judges those beyond being finite.
    public static func rangeProblem(lat: Double, lon: Double, crs: String) -> String? {
        if crs.hasPrefix("EPSG:") { return lat.isFinite && lon.isFinite ? nil : "lat and lon must be finite numbers" }
        return GeoPoint(lon: lon, lat: lat).isValid ? nil : "lat must be within -90..90 and lon within -180..180"
    }

    public static func isKnown(_ crs: String) -> Bool {
        switch crs {
        case "WGS84", "GCJ-02", "BD-09": return true
        default:
            guard crs.hasPrefix("EPSG:") else { return false }
            let digits = crs.dropFirst(5)
            return !digits.isEmpty && digits.count <= 6 && digits.allSatisfy { $0.isASCII && $0.isNumber }
        }
    }
}
