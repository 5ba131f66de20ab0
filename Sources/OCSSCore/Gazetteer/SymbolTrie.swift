/// A trie over 32-bit symbols (Unicode scalars or pinyin syllable ids), frozen after building.
///
/// Edges live in one open-addressing table keyed by (node, symbol), so a step is one hash probe and the whole
/// trie is four flat arrays. Terminal nodes carry postings (UInt32 payloads) in CSR form.
struct SymbolTrie: Sendable {
    private var keys: [UInt64]  // (node + 1) << 32 | symbol; 0 = empty slot
    private var children: [Int32]
    private var mask: Int
    private var postStart: [Int32]  // per node, into `postings`; count = postStart[n + 1] - postStart[n]
    private var postings: [UInt32]

    @inline(__always) private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 29) & mask
    }

    /// The child of `node` along `symbol`, or -1.
    @inline(__always) func step(_ node: Int32, _ symbol: UInt32) -> Int32 {
        let key = (UInt64(UInt32(bitPattern: node) &+ 1) << 32) | UInt64(symbol)
        var i = SymbolTrie.slot(key, mask)
        while true {
            let k = keys[i]
            if k == key { return children[i] }
            if k == 0 { return -1 }
            i = (i &+ 1) & mask
        }
    }

    @inline(__always) func postingRange(_ node: Int32) -> Range<Int> {
        Int(postStart[Int(node)])..<Int(postStart[Int(node) + 1])
    }

    @inline(__always) func posting(_ i: Int) -> UInt32 { postings[i] }

    struct Builder {
        private var keys: [UInt64]
        private var children: [Int32]
        private var mask: Int
        private var used = 0
        private var nodes: Int32 = 1
        private var terminals: [(Int32, UInt32)] = []

        init(expectedEdges: Int) {
            var cap = 1024
            while cap < expectedEdges * 2 { cap <<= 1 }
            keys = Array(repeating: 0, count: cap)
            children = Array(repeating: -1, count: cap)
            mask = cap - 1
        }

        private mutating func grow() {
            let oldKeys = keys, oldChildren = children
            let cap = keys.count * 2
            keys = Array(repeating: 0, count: cap)
            children = Array(repeating: -1, count: cap)
            mask = cap - 1
            for (i, k) in oldKeys.enumerated() where k != 0 {
                var j = SymbolTrie.slot(k, mask)
                while keys[j] != 0 { j = (j + 1) & mask }
                keys[j] = k
                children[j] = oldChildren[i]
            }
        }

        mutating func insert<S: Sequence>(_ symbols: S, payload: UInt32) where S.Element == UInt32 {
            var node: Int32 = 0
            var any = false
            for s in symbols {
                any = true
                if (used + 1) * 4 > keys.count * 3 { grow() }
                let key = (UInt64(UInt32(bitPattern: node) &+ 1) << 32) | UInt64(s)
                var i = SymbolTrie.slot(key, mask)
                while keys[i] != 0 && keys[i] != key { i = (i + 1) & mask }
                if keys[i] == key {
                    node = children[i]
                } else {
                    keys[i] = key
                    children[i] = nodes
                    node = nodes
                    nodes += 1
                    used += 1
                }
            }
            if any { terminals.append((node, payload)) }
        }

        func freeze() -> SymbolTrie {
            var counts = [Int32](repeating: 0, count: Int(nodes) + 1)
            var seen = Set<UInt64>()
            var unique: [(Int32, UInt32)] = []
            for (n, p) in terminals where seen.insert(UInt64(UInt32(bitPattern: n)) << 32 | UInt64(p)).inserted {
                unique.append((n, p))
                counts[Int(n) + 1] += 1
            }
            for i in 1..<counts.count { counts[i] += counts[i - 1] }
            var fill = counts
            var postings = [UInt32](repeating: 0, count: unique.count)
            for (n, p) in unique {
                postings[Int(fill[Int(n)])] = p
                fill[Int(n)] += 1
            }
            return SymbolTrie(keys: keys, children: children, mask: mask, postStart: counts, postings: postings)
        }
    }
}
