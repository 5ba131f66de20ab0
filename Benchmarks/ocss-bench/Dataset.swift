import Glibc
import OCSSCore

/// The shared/bench dataset loaded straight into the routing structures the service uses.
struct Dataset {
    var index: StoreIndex
    var ledger: InventoryLedger
    var stock: StockIndex
    var orders: [BenchOrder]
    var loadSeconds: Double
}

/// One order of orders.csv, interned. `lines` is empty when an SKU is stocked nowhere.
struct BenchOrder {
    var point: GeoPoint
    var q: UnitVector
    var lines: [Demand]
    var stockedNowhere: Bool
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Whole file into memory (the largest is ~150 MB).
func readBytes(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { fatal("cannot open \(path) (generate it: make bench-data)") }
    defer { fclose(f) }
    fseek(f, 0, SEEK_END)
    let size = ftell(f)
    fseek(f, 0, SEEK_SET)
    var out = [UInt8](repeating: 0, count: size)
    _ = out.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
    return out
}

func fatal(_ s: String) -> Never {
    _ = "\(s)\n".withCString { write(2, $0, strlen($0)) }
    exit(2)
}

/// Splits a CSV buffer into rows of fields (byte ranges), skipping the header; no quoting in these files.
struct CSVRows {
    let bytes: [UInt8]

    func forEach(_ body: (_ fields: [Range<Int>]) -> Void) {
        var i = 0
        let n = bytes.count
        while i < n && bytes[i] != 10 { i += 1 }  // header
        i += 1
        var fields: [Range<Int>] = []
        fields.reserveCapacity(16)
        while i < n {
            fields.removeAll(keepingCapacity: true)
            var start = i
            while i < n && bytes[i] != 10 {
                if bytes[i] == 44 {
                    fields.append(start..<i)
                    start = i + 1
                }
                i += 1
            }
            var end = i
            if end > start && bytes[end - 1] == 13 { end -= 1 }
            fields.append(start..<end)
            i += 1
            if fields.count > 1 || !fields[0].isEmpty { body(fields) }
        }
    }

    func string(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }

    func int(_ r: Range<Int>) -> Int? {
        guard !r.isEmpty else { return nil }
        var v = 0
        for i in r {
            let d = Int(bytes[i]) - 48
            guard d >= 0 && d <= 9 else { return nil }
            v = v * 10 + d
        }
        return v
    }

    func double(_ r: Range<Int>) -> Double? { Double(string(r)) }
}

enum DatasetLoader {
    static func load(dir: String, size: String) -> Dataset {
        let t0 = now()
        // Stores: id,name,lat,lon. Slot = row order.
        let storeCSV = CSVRows(bytes: readBytes("\(dir)/stores_\(size).csv"))
        var stores: [Store] = []
        var slotByNumericID: [Int32] = []
        storeCSV.forEach { f in
            guard f.count >= 4, let lat = storeCSV.double(f[2]), let lon = storeCSV.double(f[3]) else { fatal("bad store row") }
            let id = storeCSV.string(f[0])
            if let n = storeCSV.int(f[0]) {
                if slotByNumericID.count <= n { slotByNumericID.append(contentsOf: repeatElement(-1, count: n + 1 - slotByNumericID.count)) }
                slotByNumericID[n] = Int32(stores.count)
            }
            stores.append(Store(id: id, code: id, name: storeCSV.string(f[1]), location: GeoPoint(lon: lon, lat: lat)))
        }
        let index = StoreIndex(stores: stores)

        // SKUs are interned in skus.csv order, so numeric SKU n maps by table, not by hashing strings.
        var ledger = InventoryLedger()
        let skuCSV = CSVRows(bytes: readBytes("\(dir)/skus.csv"))
        var skuByNumber: [Int32] = []
        skuCSV.forEach { f in
            let name = skuCSV.string(f[0])
            let k = ledger.intern(name)
            if let n = skuCSV.int(f[0]) {
                if skuByNumber.count <= n { skuByNumber.append(contentsOf: repeatElement(-1, count: n + 1 - skuByNumber.count)) }
                skuByNumber[n] = k
            }
        }
        ledger.ensureStores(stores.count)
        let inv = CSVRows(bytes: readBytes("\(dir)/inventory_\(size).csv"))
        inv.forEach { f in
            guard f.count >= 3, let s = inv.int(f[0]), let qty = inv.int(f[2]), s < slotByNumericID.count, slotByNumericID[s] >= 0 else {
                fatal("bad inventory row")
            }
            let k: Int32
            if let n = inv.int(f[1]), n < skuByNumber.count, skuByNumber[n] >= 0 { k = skuByNumber[n] } else { k = ledger.intern(inv.string(f[1])) }
            ledger.appendRow(store: slotByNumericID[s], sku: k, onHand: Int32(qty))
        }
        let stock = StockIndex(index: index, ledger: ledger)
        let loadSeconds = now() - t0

        // Orders: order_id,lat,lon,n_items,sku1,qty1,...
        let ord = CSVRows(bytes: readBytes("\(dir)/orders.csv"))
        var orders: [BenchOrder] = []
        ord.forEach { f in
            guard let lat = ord.double(f[1]), let lon = ord.double(f[2]), let n = ord.int(f[3]) else { fatal("bad order row") }
            var lines: [Demand] = []
            var nowhere = false
            for j in 0..<n {
                let name = ord.string(f[4 + 2 * j])
                guard let qty = ord.int(f[5 + 2 * j]) else { fatal("bad qty") }
                if let k = ledger.index(of: name) { lines.append(Demand(sku: k, quantity: Int32(qty))) } else { nowhere = true }
            }
            let p = GeoPoint(lon: lon, lat: lat)
            orders.append(BenchOrder(point: p, q: UnitVector(p), lines: lines, stockedNowhere: nowhere))
        }
        return Dataset(index: index, ledger: ledger, stock: stock, orders: orders, loadSeconds: loadSeconds)
    }
}

/// Peak resident set size, MiB (VmHWM).
func peakRSSMiB() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if s.hasPrefix("VmHWM:") {
            let kb = Int(s.dropFirst(6).filter { $0.isNumber }) ?? 0
            return kb / 1024
        }
    }
    return -1
}
