/// A point on the unit sphere as an (x, y, z) vector. Chord length between two unit vectors orders
/// points exactly as great-circle distance does, with no projection seams.
public struct UnitVector: Sendable, Hashable {
    public var x: Double
    public var y: Double
    public var z: Double

    public init(x: Double, y: Double, z: Double) {
        self.x = x
        self.y = y
        self.z = z
    }

    public init(_ p: GeoPoint) {
        let lat = p.lat * .pi / 180, lon = p.lon * .pi / 180
        let c = Math.cos(lat)
        self.init(x: c * Math.cos(lon), y: c * Math.sin(lon), z: Math.sin(lat))
    }

    /// Squared Euclidean (chord) distance between two unit vectors, 0...4.
    public func chordSquared(to o: UnitVector) -> Double {
        let dx = x - o.x, dy = y - o.y, dz = z - o.z
        return dx * dx + dy * dy + dz * dz
    }
}

/// Conversions between great-circle arcs and chords on the unit sphere.
public enum Sphere {
    /// WGS84 mean radius (2a+b)/3 in metres, the radius PostGIS and the benchmark use.
    public static let meanRadius = 6_371_008.7714

    /// Central angle (radians) for a squared chord length on the unit sphere.
    public static func arc(forChordSquared c2: Double) -> Double {
        let half = Swift.min(1.0, c2.squareRoot() / 2)
        return 2 * Math.asin(half)
    }

    /// Squared chord length on the unit sphere for a distance in metres on a sphere of `radius`.
    public static func chordSquared(forDistance metres: Double, radius: Double = meanRadius) -> Double {
        let angle = Swift.min(Double.pi, Swift.max(0, metres / radius))
        let c = 2 * Math.sin(angle / 2)
        return c * c
    }
}
