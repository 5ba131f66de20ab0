import OCSSCore
import OCSSProj
import Testing

@Suite struct GeodesyTests {
    // WGS84 geodesic lengths, metres, tolerance 1 mm (GeographicLib's published values).
    @Test(arguments: [
        (GeoPoint(lon: 0, lat: 0), GeoPoint(lon: 0, lat: 1), 110_574.389),  // one degree of meridian at the equator
        (GeoPoint(lon: 0, lat: 0), GeoPoint(lon: 1, lat: 0), 111_319.491),  // one degree of equator
        (GeoPoint(lon: 0, lat: 0), GeoPoint(lon: 0, lat: 0), 0.0),
        (GeoPoint(lon: 0, lat: 0), GeoPoint(lon: 0, lat: 90), 10_001_965.729),  // quarter meridian
    ])
    func ellipsoidal(a: GeoPoint, b: GeoPoint, metres: Double) {
        let d = EllipsoidalGeodesy().distance(from: a, to: b)
        #expect(abs(d - metres) < 0.001, "got \(d)")
    }

    @Test func ellipsoidalAndSphericalAgreeWithinHalfAPercent() {
        let a = GeoPoint(lon: 116.4074, lat: 39.9042), b = GeoPoint(lon: 121.4737, lat: 31.2304)
        let e = EllipsoidalGeodesy().distance(from: a, to: b), s = SphericalGeodesy().distance(from: a, to: b)
        #expect(abs(e - s) / e < 0.005)
    }

    @Test func coreTrigonometryMatchesLibm() {
        var x = -20.0
        while x < 20 {
            #expect(abs(Math.sin(x) - _sin(x)) < 1e-13)
            #expect(abs(Math.cos(x) - _cos(x)) < 1e-13)
            x += 0.0137
        }
        var y = -1.0
        while y <= 1 {
            #expect(abs(Math.asin(y) - _asin(y)) < 1e-13)
            y += 0.001
        }
    }
}

@Suite struct DatumTests {
    let crs = CRSTransform()

    @Test func gcj02RoundTripsAndOffsetsInsideChinaOnly() throws {
        for p in [GeoPoint(lon: 120.1271, lat: 30.2839), GeoPoint(lon: 116.3975, lat: 39.9087), GeoPoint(lon: 87.6, lat: 43.8)] {
            let g = ChineseDatums.wgs84ToGCJ02(p)
            let offset = EllipsoidalGeodesy().distance(from: p, to: g)
            #expect(offset > 100 && offset < 700, "offset \(offset) m")
            let back = try crs.toWGS84(lat: g.lat, lon: g.lon, crs: "GCJ-02")
            #expect(EllipsoidalGeodesy().distance(from: p, to: back) < 0.01)
        }
        let tokyo = GeoPoint(lon: 139.69, lat: 35.69)
        #expect(ChineseDatums.wgs84ToGCJ02(tokyo) == tokyo)
    }

    @Test func bd09RoundTrips() throws {
        let p = GeoPoint(lon: 121.4737, lat: 31.2304)
        let bd = ChineseDatums.gcj02ToBD09(ChineseDatums.wgs84ToGCJ02(p))
        let back = try crs.toWGS84(lat: bd.lat, lon: bd.lon, crs: "BD-09")
        // BD-09's published inverse is approximate at the decimetre level.
        #expect(EllipsoidalGeodesy().distance(from: p, to: back) < 0.5)
    }

    @Test func epsgThroughPROJ() throws {
        // Web Mercator metres for (120 E, 30 N).
        let p = try crs.toWGS84(lat: 3_503_549.843504374, lon: 13_358_338.895192828, crs: "EPSG:3857")
        #expect(abs(p.lon - 120) < 1e-9 && abs(p.lat - 30) < 1e-9)
        // CGCS2000 geographic is lat,lon in EPSG's order; normalised it is lon,lat like everything else.
        let c = try crs.toWGS84(lat: 30.5, lon: 114.3, crs: "EPSG:4490")
        #expect(abs(c.lon - 114.3) < 1e-6 && abs(c.lat - 30.5) < 1e-6)
    }

    @Test func unknownEPSGSaysWhy() {
        #expect {
            try crs.toWGS84(lat: 1, lon: 1, crs: "EPSG:999999")
        } throws: { e in
            guard let e = e as? CRSError else { return false }
            return e.crs == "EPSG:999999" && !e.message.isEmpty && e.message != "Unknown error"
        }
    }
}
