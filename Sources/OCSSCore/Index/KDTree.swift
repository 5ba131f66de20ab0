/// A static 3-D k-d tree over unit-sphere vectors (stores), built once and then immutable.
///
/// Layout is implicit (kdbush style): points are permuted so that every subtree is a contiguous
/// slot range whose median slot holds the splitting point. Ranges of at most `leafSize` points are
/// leaves scanned linearly. Each point carries a caller-defined 32-bit payload (a store slot).
public struct KDTree: Sendable {
    /// Largest range that is scanned linearly instead of split.
    public static let leafSize = 8

    @usableFromInline let storage: KDStorage

    /// Number of points.
    public var count: Int { storage.count }

    /// Builds a tree. `points[i]` gets payload `payloads[i]`; both arrays must have equal length.
    public init(points: [UnitVector], payloads: [Int32]) {
        precondition(points.count == payloads.count, "one payload per point")
        storage = KDStorage(points: points, payloads: payloads)
    }

    /// Payload stored at tree slot `slot`.
    public func payload(atSlot slot: Int) -> Int32 { storage.ids[slot] }

}

/// Owns the tree's buffers. Immutable after `init`, hence safe to share across threads.
@usableFromInline
final class KDStorage: @unchecked Sendable {
    let count: Int
    /// x, y, z of each slot, interleaved.
    @usableFromInline let coords: UnsafeMutablePointer<Double>
    @usableFromInline let ids: UnsafeMutablePointer<Int32>
    /// Split axis (0, 1, 2) of the node whose median is at this slot; unused for leaf slots.
    @usableFromInline let axes: UnsafeMutablePointer<UInt8>

    init(points: [UnitVector], payloads: [Int32]) {
        count = points.count
        let n = Swift.max(count, 1)
        coords = .allocate(capacity: 3 * n)
        ids = .allocate(capacity: n)
        axes = .allocate(capacity: n)
        axes.initialize(repeating: 0, count: n)
        for (i, p) in points.enumerated() {
            coords[3 * i] = p.x
            coords[3 * i + 1] = p.y
            coords[3 * i + 2] = p.z
            ids[i] = payloads[i]
        }
        build(lo: 0, hi: count)
    }

    deinit {
        coords.deallocate()
        ids.deallocate()
        axes.deallocate()
    }

    private func build(lo: Int, hi: Int) {
        // Iterative with an explicit stack: depth is only log n, but recursion keeps closures out.
        var stack: [(Int, Int)] = [(lo, hi)]
        while let (l, h) = stack.popLast() {
            guard h - l > KDTree.leafSize else { continue }
            let axis = widestAxis(lo: l, hi: h)
            let m = (l + h) / 2
            select(k: m, lo: l, hi: h - 1, axis: axis)
            axes[m] = UInt8(axis)
            stack.append((l, m))
            stack.append((m + 1, h))
        }
    }

    private func widestAxis(lo: Int, hi: Int) -> Int {
        var mn = (Double.infinity, Double.infinity, Double.infinity)
        var mx = (-Double.infinity, -Double.infinity, -Double.infinity)
        for i in lo..<hi {
            let x = coords[3 * i], y = coords[3 * i + 1], z = coords[3 * i + 2]
            mn = (Swift.min(mn.0, x), Swift.min(mn.1, y), Swift.min(mn.2, z))
            mx = (Swift.max(mx.0, x), Swift.max(mx.1, y), Swift.max(mx.2, z))
        }
        let sx = mx.0 - mn.0, sy = mx.1 - mn.1, sz = mx.2 - mn.2
        if sx >= sy && sx >= sz { return 0 }
        return sy >= sz ? 1 : 2
    }

    /// Floyd-Rivest-free quickselect (Hoare partition, median-of-three pivot) on one axis.
    private func select(k: Int, lo: Int, hi: Int, axis: Int) {
        var l = lo, r = hi
        while r > l {
            let mid = (l + r) / 2
            // Median of three to the `mid` slot, then use it as pivot.
            if value(l, axis) > value(mid, axis) { swapSlots(l, mid) }
            if value(mid, axis) > value(r, axis) { swapSlots(mid, r) }
            if value(l, axis) > value(mid, axis) { swapSlots(l, mid) }
            let pivot = value(mid, axis)
            var i = l, j = r
            while i <= j {
                while value(i, axis) < pivot { i += 1 }
                while value(j, axis) > pivot { j -= 1 }
                if i <= j {
                    swapSlots(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { r = j } else if k >= i { l = i } else { return }
        }
    }

    @inline(__always) private func value(_ i: Int, _ axis: Int) -> Double { coords[3 * i + axis] }

    private func swapSlots(_ a: Int, _ b: Int) {
        guard a != b else { return }
        for c in 0..<3 { Swift.swap(&coords[3 * a + c], &coords[3 * b + c]) }
        Swift.swap(&ids[a], &ids[b])
    }
}
