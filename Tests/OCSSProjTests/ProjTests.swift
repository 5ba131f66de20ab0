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

    /// Published golden pairs from two independent implementations (eviltransform's test table; coordtransform's
    /// README), WGS84 -> GCJ-02 and GCJ-02 <-> BD-09: the forward formulas agree to 1e-7 degrees (about 1 cm), and our
    /// iterative inverse gives the WGS84 point back within 0.5 m.
    @Test(arguments: [
        // (wgs lat, wgs lon, gcj lat, gcj lon)
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  // Shanghai
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  // Shenzhen
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  // Beijing
        (39.915, 116.404, 39.91640428150164, 116.41024449916938),  // Beijing (coordtransform)
    ])
    func gcj02GoldenTable(_ wLat: Double, _ wLon: Double, _ gLat: Double, _ gLon: Double) throws {
        let g = ChineseDatums.wgs84ToGCJ02(GeoPoint(lon: wLon, lat: wLat))
        #expect(abs(g.lat - gLat) < 1e-7 && abs(g.lon - gLon) < 1e-7, "\(g)")
        let back = try crs.toWGS84(lat: gLat, lon: gLon, crs: "GCJ-02")
        #expect(EllipsoidalGeodesy().distance(from: back, to: GeoPoint(lon: wLon, lat: wLat)) < 0.5)
    }

    @Test func bd09GoldenTable() throws {
        // coordtransform: gcj02tobd09 and bd09togcj02 of (116.404, 39.915).
        let bd = ChineseDatums.gcj02ToBD09(GeoPoint(lon: 116.404, lat: 39.915))
        #expect(abs(bd.lon - 116.41036949371029) < 1e-7 && abs(bd.lat - 39.92133699351021) < 1e-7)
        let gcj = ChineseDatums.bd09ToGCJ02(GeoPoint(lon: 116.404, lat: 39.915))
        #expect(abs(gcj.lon - 116.39762729119315) < 1e-7 && abs(gcj.lat - 39.90865673957631) < 1e-7)
        // (eviltransform's BD-09 pairs are left out: its own WGS84 answers, run forward through the published
        // formulas, land 10-41 m from its BD-09 inputs, so they test its approximation, not the datum.)
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

    @Test func aPointOutsideAProjectionIsRefusedNotMisplaced() throws {
        // UTM zone 51N (EPSG:32651): a real point near Shanghai, then a northing no point on Earth has, which PROJ's
        // inverse alone turns into a plausible point in eastern China.
        let p = try crs.toWGS84(lat: 3_456_000, lon: 350_000, crs: "EPSG:32651")
        #expect((121...122).contains(p.lon) && (31...31.5).contains(p.lat))
        #expect(throws: CRSError.self) { try crs.toWGS84(lat: 1e12, lon: 500_000, crs: "EPSG:32651") }
        #expect(throws: CRSError.self) { try crs.toWGS84(lat: 3_350_000, lon: 1e12, crs: "EPSG:32651") }
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
