extension KDTree {
    /// Checks the implicit-layout invariant: for every internal node, every point left of the median
    /// slot is <= the split value on the node's axis and every point right of it is >= it.
    /// Returns a description of the first violation, or nil. O(n log n); for tests.
    public func invariantViolation() -> String? {
        var stack: [(Int, Int)] = [(0, count)]
        while let (lo, hi) = stack.popLast() {
            guard hi - lo > KDTree.leafSize else { continue }
            let m = (lo + hi) / 2
            let axis = Int(storage.axes[m])
            let split = storage.coords[3 * m + axis]
            for i in lo..<m where storage.coords[3 * i + axis] > split {
                return "slot \(i) left of median \(m) exceeds split on axis \(axis)"
            }
            for i in (m + 1)..<hi where storage.coords[3 * i + axis] < split {
                return "slot \(i) right of median \(m) below split on axis \(axis)"
            }
            stack.append((lo, m))
            stack.append((m + 1, hi))
        }
        var seen = Set<Int32>()
        for i in 0..<count where !seen.insert(storage.ids[i]).inserted {
            return "payload \(storage.ids[i]) appears twice"
        }
        return nil
    }
}
