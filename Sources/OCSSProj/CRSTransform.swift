internal import CProj
public import OCSSCore
import Synchronization

/// A coordinate system problem, with PROJ's own message when PROJ raised it.
public struct CRSError: Error, Sendable, CustomStringConvertible {
    public let crs: String
    public let message: String
    public var description: String { "cannot transform from \(crs): \(message)" }
}

/// Converts platform coordinates to WGS84. Owns one PJ_CONTEXT and a cache of PROJ transforms
/// (the first `proj_create_crs_to_crs` costs milliseconds, so each is created once). PROJ objects
/// are not thread-safe: one lock guards them.
public final class CRSTransform: Sendable {
    private let state: Mutex<ProjState>

    public init() {
        state = Mutex(ProjState())
    }

    /// `lat`/`lon` in `crs` (`WGS84`, `GCJ-02`, `BD-09`, `EPSG:nnnn`) to WGS84. For projected EPSG
    /// systems `lon` is the easting and `lat` the northing, in the CRS's units.
    public func toWGS84(lat: Double, lon: Double, crs: String) throws(CRSError) -> GeoPoint {
        let p = GeoPoint(lon: lon, lat: lat)
        switch crs.uppercased() {
        case "WGS84", "EPSG:4326": return p
        case "GCJ-02", "GCJ02": return ChineseDatums.gcj02ToWGS84(p)
        case "BD-09", "BD09": return ChineseDatums.gcj02ToWGS84(ChineseDatums.bd09ToGCJ02(p))
        default:
            let code = crs.uppercased()
            guard code.hasPrefix("EPSG:") else { throw CRSError(crs: crs, message: "unknown coordinate system") }
            let out: GeoPoint? = try state.withLock { s throws(CRSError) -> GeoPoint? in
                let pj = try s.transform(for: code)
                let c = proj_trans(pj, PJ_FWD, proj_coord(lon, lat, 0, 0))
                guard c.xyzt.x.isFinite, c.xyzt.y.isFinite else { return nil }
                // Far outside a projection's domain PROJ can still return a plausible-looking point (a UTM northing
                // of 1e12 lands in eastern China): keep the result only if it maps back to what was sent.
                let back = proj_trans(pj, PJ_INV, c)
                func near(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-6 * max(1, abs(b)) }
                guard near(back.xy.x, lon), near(back.xy.y, lat) else { return nil }
                return GeoPoint(lon: c.xy.x, lat: c.xy.y)
            }
            guard let out, out.isValid else { throw CRSError(crs: crs, message: "point lies outside the coordinate system's area") }
            return out
        }
    }
}

/// PROJ context and cached transforms. Touched only under the owner's lock.
final class ProjState: @unchecked Sendable {
    let ctx: OpaquePointer
    var transforms: [String: OpaquePointer] = [:]
    let log = ProjLog()

    init() {
        ctx = proj_context_create()
        proj_log_func(ctx, Unmanaged.passUnretained(log).toOpaque(), ocssProjLog)
        proj_log_level(ctx, PJ_LOG_ERROR)
    }

    deinit {
        for pj in transforms.values { proj_destroy(pj) }
        proj_context_destroy(ctx)
    }

    func transform(for code: String) throws(CRSError) -> OpaquePointer {
        if let pj = transforms[code] { return pj }
        log.last = nil
        guard let raw = proj_create_crs_to_crs(ctx, code, "EPSG:4326", nil) else {
            throw CRSError(crs: code, message: log.last ?? String(cString: proj_context_errno_string(ctx, proj_context_errno(ctx))))
        }
        // EPSG:4326 is lat,lon by definition; normalise so x is always longitude.
        guard let pj = proj_normalize_for_visualization(ctx, raw) else {
            proj_destroy(raw)
            throw CRSError(crs: code, message: log.last ?? "cannot normalise axis order")
        }
        proj_destroy(raw)
        transforms[code] = pj
        return pj
    }
}

/// Last message PROJ logged (its errno string alone often says "Unknown error").
final class ProjLog: @unchecked Sendable {
    var last: String?
}

func ocssProjLog(_ data: UnsafeMutableRawPointer?, _ level: Int32, _ msg: UnsafePointer<CChar>?) {
    guard let data, let msg else { return }
    Unmanaged<ProjLog>.fromOpaque(data).takeUnretainedValue().last = String(cString: msg)
}
