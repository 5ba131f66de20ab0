import OCSSCore
import OCSSTestSupport
import Testing

/// Random points clustered like stores: a few city centres plus a uniform tail, inside China's box.
func randomStores(_ n: Int, _ rng: inout SplitMix64) -> [GeoPoint] {
    let centres = (0..<4).map { _ in GeoPoint(lon: Double.random(in: 100...122, using: &rng), lat: Double.random(in: 22...42, using: &rng)) }
    return (0..<n).map { _ in
        if Double.random(in: 0...1, using: &rng) < 0.8 {
            let c = centres[Int.random(in: 0..<centres.count, using: &rng)]
            return GeoPoint(lon: c.lon + Double.random(in: -0.5...0.5, using: &rng), lat: c.lat + Double.random(in: -0.4...0.4, using: &rng))
        }
        return GeoPoint(lon: Double.random(in: 73...135, using: &rng), lat: Double.random(in: 18...53, using: &rng))
    }
}

@Suite struct KDTreeTests {
    @Test(arguments: [0, 1, 2, 7, 8, 9, 17, 64, 300, 2_000])
    func walkYieldsAllPointsWithinReachInDistanceOrder(n: Int) {
        for seed in UInt64(1)...6 {
            var rng = SplitMix64(seed: seed &* 7919 &+ UInt64(n))
            let pts = randomStores(n, &rng).map(UnitVector.init)
            let tree = KDTree(points: pts, payloads: (0..<n).map { Int32($0) })
            #expect(tree.invariantViolation() == nil)
            let scratch = WalkScratch(capacity: 4)
            for _ in 0..<20 {
                let q = UnitVector(randomStores(1, &rng)[0])
                let maxD2 = Bool.random(using: &rng) ? 4.0 : Sphere.chordSquared(forDistance: Double.random(in: 1_000...300_000, using: &rng))
                var walk = NearestWalk(tree: tree, from: q, maxChordSquared: maxD2, scratch: scratch)
                var got: [(Int32, Double)] = []
                while let (slot, d2) = walk.next() { got.append((tree.payload(atSlot: slot), d2)) }
                let want = pts.enumerated().map { (Int32($0.offset), $0.element.chordSquared(to: q)) }.filter { $0.1 <= maxD2 }
                #expect(got.count == want.count)
                #expect(Set(got.map(\.0)) == Set(want.map(\.0)))
                for i in got.indices.dropFirst() { #expect(got[i - 1].1 <= got[i].1) }
                for (id, d2) in got { #expect(d2 == pts[Int(id)].chordSquared(to: q)) }
            }
        }
    }

    @Test func duplicatePointsAreAllKept() {
        let p = UnitVector(GeoPoint(lon: 120, lat: 30))
        let tree = KDTree(points: Array(repeating: p, count: 50), payloads: (0..<50).map { Int32($0) })
        #expect(tree.invariantViolation() == nil)
        var walk = NearestWalk(tree: tree, from: p, maxChordSquared: 0, scratch: WalkScratch())
        var count = 0
        while walk.next() != nil { count += 1 }
        #expect(count == 50)
    }
}

@Suite struct SphereTests {
    // Golden distances on the mean-radius sphere, metres, tolerance 0.01 m (haversine computed with libm).
    @Test(arguments: [
        (GeoPoint(lon: 116.4074, lat: 39.9042), GeoPoint(lon: 121.4737, lat: 31.2304), 1_067_311.64),
        (GeoPoint(lon: 0, lat: 0), GeoPoint(lon: 0, lat: 0), 0.0),
        (GeoPoint(lon: 179.5, lat: 0), GeoPoint(lon: -179.5, lat: 0), 111_195.08),  // antimeridian
        (GeoPoint(lon: 0, lat: 90), GeoPoint(lon: 180, lat: 89), 111_195.08),  // pole
        (GeoPoint(lon: 0, lat: 0), GeoPoint(lon: 180, lat: 0), 20_015_114.35),  // antipode
    ])
    func greatCircle(a: GeoPoint, b: GeoPoint, metres: Double) {
        let d = SphericalGeodesy().distance(from: a, to: b)
        #expect(abs(d - metres) < 0.01, "got \(d)")
    }

    @Test func chordAndArcAreInverse() {
        for m in stride(from: 0.0, through: 1_000_000, by: 12_345) {
            let back = Sphere.arc(forChordSquared: Sphere.chordSquared(forDistance: m)) * Sphere.meanRadius
            #expect(abs(back - m) < 1e-6)
        }
    }
}
