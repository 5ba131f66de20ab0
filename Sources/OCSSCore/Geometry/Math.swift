/// Elementary functions for the core without importing Glibc or Foundation.
///
/// The standard library has no trigonometry, so these are portable polynomial/argument-reduction
/// implementations within 1e-13 of libm for |x| <= 20 rad (checked in OCSSProjTests); the core only
/// needs |x| <= pi.
public enum Math {
    @usableFromInline static let twoPi = 2 * Double.pi

    /// Sine of `x` radians.
    public static func sin(_ x: Double) -> Double { sine(x, quarterTurns: 0) }

    /// Cosine of `x` radians: sin(x + pi/2), taken as one more quarter turn after reduction so that
    /// no precision is lost adding pi/2.
    public static func cos(_ x: Double) -> Double { sine(x, quarterTurns: 1) }

    /// sin(x + quarterTurns * pi/2), reducing x to [-pi/4, pi/4] by quadrant.
    static func sine(_ x: Double, quarterTurns: Int) -> Double {
        let q = (x / (Double.pi / 2)).rounded(.toNearestOrEven)
        let r = (x - q * 1.5707963267948966) - q * 6.123233995736766e-17
        let quadrant = (Int(q.truncatingRemainder(dividingBy: 4)) + quarterTurns + 8) % 4
        switch quadrant {
        case 0: return sinKernel(r)
        case 1: return cosKernel(r)
        case 2: return -sinKernel(r)
        default: return -cosKernel(r)
        }
    }

    /// Taylor kernel, |r| <= pi/4.
    static func sinKernel(_ r: Double) -> Double {
        let r2 = r * r
        var t = 1.0 / 6227020800.0  // 1/13!
        t = t * r2 - 1.0 / 39916800.0
        t = t * r2 + 1.0 / 362880.0
        t = t * r2 - 1.0 / 5040.0
        t = t * r2 + 1.0 / 120.0
        t = t * r2 - 1.0 / 6.0
        return r + r * r2 * t
    }

    /// Taylor kernel, |r| <= pi/4.
    static func cosKernel(_ r: Double) -> Double {
        let r2 = r * r
        var t = 1.0 / 87178291200.0  // 1/14!
        t = t * r2 - 1.0 / 479001600.0
        t = t * r2 + 1.0 / 3628800.0
        t = t * r2 - 1.0 / 40320.0
        t = t * r2 + 1.0 / 720.0
        t = t * r2 - 1.0 / 24.0
        t = t * r2 + 0.5
        return 1 - r2 * t
    }

    /// Arcsine of `x` in [-1, 1], radians; Newton refinement on sin.
    public static func asin(_ x: Double) -> Double {
        if x >= 1 { return Double.pi / 2 }
        if x <= -1 { return -Double.pi / 2 }
        // Initial guess from atan-style series is unnecessary: Newton from x converges for |x| < 0.9;
        // beyond that use asin(x) = pi/2 - 2 asin(sqrt((1-x)/2)).
        if Swift.abs(x) > 0.7 {
            let s = ((1 - Swift.abs(x)) / 2).squareRoot()
            let v = Double.pi / 2 - 2 * asin(s)
            return x < 0 ? -v : v
        }
        var y = x
        for _ in 0..<6 {
            let s = sin(y), c = cos(y)
            let next = y - (s - x) / c
            if next == y { break }
            y = next
        }
        return y
    }
}
