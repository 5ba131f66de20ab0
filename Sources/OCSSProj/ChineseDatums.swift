import Glibc
public import OCSSCore

/// GCJ-02 ("Mars coordinates", used by Amap, Tencent, Meituan, Ele.me) and BD-09 (Baidu).
///
/// GCJ-02 is a published obfuscation of WGS84 inside mainland China (offset 100-700 m); outside
/// China's box it is WGS84 unchanged. The inverse has no closed form and is solved by fixed-point
/// iteration to < 1e-9 degrees. BD-09 is a further rotation/scaling of GCJ-02.
public enum ChineseDatums {
    static let a = 6_378_245.0
    static let ee = 0.006_693_421_622_965_943_23
    static let xPi = Double.pi * 3000 / 180

    /// True when the point is outside the area where GCJ-02 applies an offset.
    public static func outsideChina(_ p: GeoPoint) -> Bool {
        p.lon < 72.004 || p.lon > 137.8347 || p.lat < 0.8293 || p.lat > 55.8271
    }

    public static func wgs84ToGCJ02(_ p: GeoPoint) -> GeoPoint {
        if outsideChina(p) { return p }
        let x = p.lon - 105, y = p.lat - 35
        var dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(abs(x))
        dLat += (20 * sin(6 * x * .pi) + 20 * sin(2 * x * .pi)) * 2 / 3
        dLat += (20 * sin(y * .pi) + 40 * sin(y / 3 * .pi)) * 2 / 3
        dLat += (160 * sin(y / 12 * .pi) + 320 * sin(y * .pi / 30)) * 2 / 3
        var dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(abs(x))
        dLon += (20 * sin(6 * x * .pi) + 20 * sin(2 * x * .pi)) * 2 / 3
        dLon += (20 * sin(x * .pi) + 40 * sin(x / 3 * .pi)) * 2 / 3
        dLon += (150 * sin(x / 12 * .pi) + 300 * sin(x / 30 * .pi)) * 2 / 3
        let radLat = p.lat / 180 * .pi
        var magic = sin(radLat)
        magic = 1 - ee * magic * magic
        let sqrtMagic = sqrt(magic)
        dLat = (dLat * 180) / ((a * (1 - ee)) / (magic * sqrtMagic) * .pi)
        dLon = (dLon * 180) / (a / sqrtMagic * cos(radLat) * .pi)
        return GeoPoint(lon: p.lon + dLon, lat: p.lat + dLat)
    }

    public static func gcj02ToWGS84(_ g: GeoPoint) -> GeoPoint {
        if outsideChina(g) { return g }
        var w = g
        for _ in 0..<30 {
            let back = wgs84ToGCJ02(w)
            let dLon = g.lon - back.lon, dLat = g.lat - back.lat
            w = GeoPoint(lon: w.lon + dLon, lat: w.lat + dLat)
            if abs(dLon) < 1e-10 && abs(dLat) < 1e-10 { break }
        }
        return w
    }

    public static func bd09ToGCJ02(_ b: GeoPoint) -> GeoPoint {
        let x = b.lon - 0.0065, y = b.lat - 0.006
        let z = sqrt(x * x + y * y) - 0.000_02 * sin(y * xPi)
        let theta = atan2(y, x) - 0.000_003 * cos(x * xPi)
        return GeoPoint(lon: z * cos(theta), lat: z * sin(theta))
    }

    public static func gcj02ToBD09(_ g: GeoPoint) -> GeoPoint {
        let x = g.lon, y = g.lat
        let z = sqrt(x * x + y * y) + 0.000_02 * sin(y * xPi)
        let theta = atan2(y, x) + 0.000_003 * cos(x * xPi)
        return GeoPoint(lon: z * cos(theta) + 0.0065, lat: z * sin(theta) + 0.006)
    }
}
