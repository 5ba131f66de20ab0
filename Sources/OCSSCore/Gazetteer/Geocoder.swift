/// How precise a geocode is: the deepest administrative level the address resolved to.
public enum GeoLevel: String, Sendable, Codable, Comparable {
    case province, city, district, township, street

    var rank: Int {
        switch self {
        case .province: 1
        case .city: 2
        case .district: 3
        case .township: 4
        case .street: 5
        }
    }

    public static func < (a: GeoLevel, b: GeoLevel) -> Bool { a.rank < b.rank }
}

/// The administrative names of a result, from the province down. `city` is the province-level city itself for
/// municipalities (北京市 ...), whose counties sit directly under the province.
public struct GeoNames: Sendable, Hashable {
    public var province: String?
    public var city: String?
    public var district: String?
    public var town: String?

    public init(province: String? = nil, city: String? = nil, district: String? = nil, town: String? = nil) {
        self.province = province
        self.city = city
        self.district = district
        self.town = town
    }
}

/// Another unit the address could mean, when it does not say enough to choose.
public struct GeoAlternative: Sendable, Hashable {
    public var adcode: String
    public var level: GeoLevel
    public var names: GeoNames
    public var point: GeoPoint
}

/// A resolved address.
public struct GeoMatch: Sendable, Hashable {
    /// WGS84, longitude first: the seat of the unit at `pointLevel`.
    public var point: GeoPoint
    /// 6-digit province/city/county or 9-digit township code.
    public var adcode: String
    public var level: GeoLevel
    /// 0...1. Below 0.5 the address did not say enough (see `alternatives`).
    public var confidence: Double
    public var names: GeoNames
    /// The level whose seat `point` is: a township no source places reports its county's seat.
    public var pointLevel: GeoLevel
    /// Same-name units the address could also mean (empty when it was clear).
    public var alternatives: [GeoAlternative]

    public init(
        point: GeoPoint, adcode: String, level: GeoLevel, confidence: Double, names: GeoNames = GeoNames(),
        pointLevel: GeoLevel? = nil, alternatives: [GeoAlternative] = []
    ) {
        self.point = point
        self.adcode = adcode
        self.level = level
        self.confidence = confidence
        self.names = names
        self.pointLevel = pointLevel ?? level
        self.alternatives = alternatives
    }

    /// Good enough to route on: a county or township, said clearly.
    public var routable: Bool { level >= .district && confidence >= 0.6 }
}

/// Why an address gave no match.
public enum GeoMiss: String, Sendable, Hashable {
    /// Empty, or nothing in it names a place in China.
    case noPlaceName = "no_place_name"
    /// It names a country other than China.
    case foreignCountry = "foreign_country"
}

public enum GeocodeOutcome: Sendable, Hashable {
    case match(GeoMatch)
    case miss(GeoMiss)

    public var match: GeoMatch? {
        if case .match(let m) = self { return m }
        return nil
    }
}

/// Resolves free address text offline.
public protocol Geocoder: Sendable {
    func resolve(_ text: String) -> GeocodeOutcome
}

extension Geocoder {
    public func geocode(_ text: String) -> GeoMatch? { resolve(text).match }
}

/// A geocoder that resolves nothing (address-only orders wait in `address_review`).
public struct NoGeocoder: Geocoder {
    public init() {}
    public func resolve(_ text: String) -> GeocodeOutcome { .miss(.noPlaceName) }
}
