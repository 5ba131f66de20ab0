/// Per-SKU k-d trees over the stores that list each SKU: the router walks the order's rarest SKU's
/// own tree, so every candidate it touches at least carries that SKU.
///
/// Built from a store index and a ledger, then frozen. Rows the ledger gains later (a store listing
/// an SKU for the first time) are not in the trees: `builtCount` says how much of each
/// `storesBySKU` list a tree covers, and the router scans the rest linearly. A new store index
/// (stores added or moved) makes the whole thing stale; `isCurrent(for:)` tells.
public struct StockIndex: Sendable {
    /// Trees by SKU index; nil for SKUs listed in fewer than `minTreeSize` stores (scanned instead).
    let trees: [KDTree?]
    /// How many leading entries of `storesBySKU[k]` tree `k` covers.
    let builtCount: [Int]
    let storeIndexID: ObjectIdentifier

    /// SKUs listed in fewer stores than this get no tree: a scan of their list is as fast.
    public static let defaultMinTreeSize = 64

    public init(index: StoreIndex, ledger: InventoryLedger, minTreeSize: Int = defaultMinTreeSize) {
        var trees: [KDTree?] = []
        var built: [Int] = []
        trees.reserveCapacity(ledger.storesBySKU.count)
        for list in ledger.storesBySKU {
            built.append(list.count)
            guard list.count >= minTreeSize else {
                trees.append(nil)
                continue
            }
            trees.append(KDTree(points: list.map { index.vectors[Int($0)] }, payloads: list))
        }
        self.trees = trees
        builtCount = built
        storeIndexID = index.identity
    }

    /// True when built for this very store index.
    public func isCurrent(for index: StoreIndex) -> Bool { storeIndexID == index.identity }

    /// Points in all trees (for sizing reports).
    public var pointCount: Int { trees.reduce(0) { $0 + ($1?.count ?? 0) } }

    func tree(for sku: Int) -> (KDTree, Int)? {
        guard sku < trees.count, let t = trees[sku] else { return nil }
        return (t, builtCount[sku])
    }
}

extension StoreIndex {
    /// Identity of this build: a rebuilt index (any store change) has a new one.
    public var identity: ObjectIdentifier { ObjectIdentifier(tree.storage) }
}
