internal import CProj
public import OCSSCore

/// Geodesic distance on the WGS84 ellipsoid (Karney's algorithm, `geodesic.h` shipped with PROJ).
public struct EllipsoidalGeodesy: Geodesy {
    private let g: UnsafeSendableGeod

    public init() {
        var geod = geod_geodesic()
        geod_init(&geod, 6_378_137, 1 / 298.257223563)
        g = UnsafeSendableGeod(value: geod)
    }

    public func distance(from a: GeoPoint, to b: GeoPoint) -> Double {
        var geod = g.value
        var s12 = 0.0
        geod_inverse(&geod, a.lat, a.lon, b.lat, b.lon, &s12, nil, nil)
        return s12
    }
}

/// geod_geodesic is a plain value (constants only) and is copied per call.
struct UnsafeSendableGeod: @unchecked Sendable {
    let value: geod_geodesic
}
