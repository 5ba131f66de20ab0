/// How precise a geocode is.
public enum GeoLevel: String, Sendable, Codable {
    case province, city, district, township, street
}

/// A resolved address.
public struct GeoMatch: Sendable, Hashable {
    /// WGS84, longitude first.
    public var point: GeoPoint
    /// 6-digit county or 9-digit township code.
    public var adcode: String
    public var level: GeoLevel
    /// 0...1.
    public var confidence: Double

    public init(point: GeoPoint, adcode: String, level: GeoLevel, confidence: Double) {
        self.point = point
        self.adcode = adcode
        self.level = level
        self.confidence = confidence
    }
}

/// Resolves free address text offline. The gazetteer issue implements it; until then the app uses
/// `NoGeocoder` and address-only orders wait in `address_review`.
public protocol Geocoder: Sendable {
    func geocode(_ text: String) -> GeoMatch?
}

/// A geocoder that resolves nothing.
public struct NoGeocoder: Geocoder {
    public init() {}
    public func geocode(_ text: String) -> GeoMatch? { nil }
}
