/// Reusable buffer for best-first walks. Not thread-safe: keep one per thread.
public final class WalkScratch {
    @usableFromInline var heap: UnsafeMutablePointer<WalkEntry>
    @usableFromInline var capacity: Int
    /// Candidates of a rarest-SKU scan: (squared chord, store slot).
    var candidates: [(Double, Int32)] = []

    public init(capacity: Int = 1024) {
        self.capacity = capacity
        heap = .allocate(capacity: capacity)
    }

    deinit { heap.deallocate() }

    @usableFromInline func grow() {
        let bigger = UnsafeMutablePointer<WalkEntry>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: heap, count: capacity)
        heap.deallocate()
        heap = bigger
        capacity *= 2
    }
}

/// One entry of the walk's priority queue: a subtree with a lower bound, or a point with its exact
/// squared chord distance (`hi < 0`).
public struct WalkEntry {
    @usableFromInline var key: Double
    // Per-axis offsets from the query to the subtree's box (Arya-Mount incremental distance).
    @usableFromInline var ox: Double
    @usableFromInline var oy: Double
    @usableFromInline var oz: Double
    @usableFromInline var lo: Int32
    @usableFromInline var hi: Int32

    init(key: Double, ox: Double, oy: Double, oz: Double, lo: Int32, hi: Int32) {
        self.key = key
        self.ox = ox
        self.oy = oy
        self.oz = oz
        self.lo = lo
        self.hi = hi
    }
}

/// Yields tree points in nondecreasing chord distance from a query, up to a maximum.
///
/// Best-first: subtrees and points share one min-heap keyed by (lower bound | exact) squared chord,
/// so the walk stops as soon as the caller accepts a point; nothing beyond `maxChordSquared` is
/// ever yielded.
public struct NearestWalk {
    @usableFromInline let storage: KDStorage
    @usableFromInline let scratch: WalkScratch
    @usableFromInline let qx: Double, qy: Double, qz: Double
    @usableFromInline let maxD2: Double
    @usableFromInline var size = 0
    // Local copies of the scratch buffer: class properties would pay a dynamic exclusivity check
    // on every heap operation.
    @usableFromInline var heap: UnsafeMutablePointer<WalkEntry>
    @usableFromInline var capacity: Int
    /// Points yielded so far.
    public private(set) var yielded = 0

    public init(tree: KDTree, from q: UnitVector, maxChordSquared: Double, scratch: WalkScratch) {
        storage = tree.storage
        self.scratch = scratch
        qx = q.x
        qy = q.y
        qz = q.z
        maxD2 = maxChordSquared
        heap = scratch.heap
        capacity = scratch.capacity
        if tree.count > 0 {
            push(WalkEntry(key: 0, ox: 0, oy: 0, oz: 0, lo: 0, hi: Int32(tree.count)))
        }
    }

    /// Next point: its tree slot and squared chord distance, or nil when none is left within reach.
    public mutating func next() -> (slot: Int, chordSquared: Double)? {
        while size > 0 {
            let e = pop()
            if e.hi < 0 {
                yielded += 1
                return (Int(e.lo), e.key)
            }
            let lo = Int(e.lo), hi = Int(e.hi)
            if hi - lo <= KDTree.leafSize {
                for i in lo..<hi { pushPoint(i) }
                continue
            }
            let m = (lo + hi) / 2
            pushPoint(m)
            let axis = Int(storage.axes[m])
            let split = storage.coords[3 * m + axis]
            let diff: Double
            let old: Double
            switch axis {
            case 0: diff = qx - split; old = e.ox
            case 1: diff = qy - split; old = e.oy
            default: diff = qz - split; old = e.oz
            }
            // Near side keeps the parent's bound; far side's offset on this axis becomes `diff`.
            let farKey = e.key - old * old + diff * diff
            var far = e
            switch axis {
            case 0: far.ox = diff
            case 1: far.oy = diff
            default: far.oz = diff
            }
            far.key = Swift.max(e.key, farKey)
            var near = e
            if diff <= 0 {
                near.lo = Int32(lo); near.hi = Int32(m)
                far.lo = Int32(m + 1); far.hi = Int32(hi)
            } else {
                near.lo = Int32(m + 1); near.hi = Int32(hi)
                far.lo = Int32(lo); far.hi = Int32(m)
            }
            if near.hi > near.lo { push(near) }
            if far.hi > far.lo && far.key <= maxD2 { push(far) }
        }
        return nil
    }

    mutating func pushPoint(_ i: Int) {
        let p = storage.coords + 3 * i
        let dx = p[0] - qx, dy = p[1] - qy, dz = p[2] - qz
        let d2 = dx * dx + dy * dy + dz * dz
        if d2 <= maxD2 {
            push(WalkEntry(key: d2, ox: 0, oy: 0, oz: 0, lo: Int32(i), hi: -1))
        }
    }

    mutating func push(_ e: WalkEntry) {
        if size == capacity {
            scratch.grow()
            heap = scratch.heap
            capacity = scratch.capacity
        }
        let h = heap
        var i = size
        size += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if h[parent].key <= e.key { break }
            h[i] = h[parent]
            i = parent
        }
        h[i] = e
    }

    mutating func pop() -> WalkEntry {
        let h = heap
        let top = h[0]
        size -= 1
        if size > 0 {
            let last = h[size]
            var i = 0
            while true {
                let l = 2 * i + 1
                if l >= size { break }
                var c = l
                if l + 1 < size && h[l + 1].key < h[l].key { c = l + 1 }
                if h[c].key >= last.key { break }
                h[i] = h[c]
                i = c
            }
            h[i] = last
        }
        return top
    }
}
