/// A point on the WGS84 ellipsoid, longitude first (GeoJSON order), in degrees.
public struct GeoPoint: Sendable, Hashable, Codable {
    /// Longitude in degrees, -180...180.
    public var lon: Double
    /// Latitude in degrees, -90...90.
    public var lat: Double

    public init(lon: Double, lat: Double) {
        self.lon = lon
        self.lat = lat
    }

    /// True when both coordinates are finite and inside their ranges.
    public var isValid: Bool {
        lon.isFinite && lat.isFinite && (-180...180).contains(lon) && (-90...90).contains(lat)
    }
}

/// Ellipsoidal (or any precise) distance between two points, in metres. Implemented by an adapter
/// (OCSSProj uses Karney's geodesic from libproj), so the core stays free of C.
public protocol Geodesy: Sendable {
    /// Distance in metres along the geodesic from `a` to `b`.
    func distance(from a: GeoPoint, to b: GeoPoint) -> Double
}

/// Great-circle distance on a sphere; exact ordering twin of the k-d tree's chord metric.
public struct SphericalGeodesy: Geodesy {
    /// Sphere radius in metres; default is the WGS84 mean radius (2a+b)/3.
    public let radius: Double
    public init(radius: Double = Sphere.meanRadius) { self.radius = radius }
    public func distance(from a: GeoPoint, to b: GeoPoint) -> Double {
        let ua = UnitVector(a), ub = UnitVector(b)
        return Sphere.arc(forChordSquared: ua.chordSquared(to: ub)) * radius
    }
}
