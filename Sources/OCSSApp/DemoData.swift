import OCSSStore
import OCSSEngine

/// The bundled demo: 24 stores and one regional warehouse at real places in six Chinese cities
/// (WGS84, hand-placed on public landmarks; names invented), and stock for ten SKUs. Loaded by
/// `ocss serve --demo` into an empty database so a first run routes real orders.
enum DemoData {
    static let stores = """
        id,name,lat,lon,kind,status
        HZ-001,杭州西湖文三路店,30.2790,120.1300,store,open
        HZ-002,杭州武林广场店,30.2715,120.1618,store,open
        HZ-003,杭州滨江星光店,30.2085,120.2102,store,open
        HZ-004,杭州钱江新城店,30.2450,120.2110,store,open
        SH-001,上海人民广场店,31.2326,121.4752,store,open
        SH-002,上海陆家嘴店,31.2397,121.4998,store,open
        SH-003,上海徐家汇店,31.1940,121.4370,store,open
        SH-004,上海五角场店,31.3010,121.5140,store,paused
        BJ-001,北京王府井店,39.9110,116.4100,store,open
        BJ-002,北京中关村店,39.9830,116.3160,store,open
        BJ-003,北京国贸店,39.9090,116.4600,store,open
        BJ-004,北京望京店,39.9960,116.4700,store,open
        SZ-001,深圳福田中心店,22.5410,114.0590,store,open
        SZ-002,深圳南山科技园店,22.5400,113.9530,store,open
        SZ-003,深圳罗湖东门店,22.5470,114.1200,store,open
        SZ-004,深圳宝安中心店,22.5550,113.8830,store,open
        GZ-001,广州天河城店,23.1320,113.3230,store,open
        GZ-002,广州北京路店,23.1250,113.2690,store,open
        GZ-003,广州番禺市桥店,22.9380,113.3640,store,open
        GZ-004,广州白云万达店,23.1780,113.2620,store,closed
        CD-001,成都春熙路店,30.6570,104.0800,store,open
        CD-002,成都天府广场店,30.6570,104.0660,store,open
        CD-003,成都高新南区店,30.5800,104.0650,store,open
        CD-004,成都宽窄巷子店,30.6700,104.0540,store,open
        WH-EAST,华东区域仓（嘉兴）,30.7460,120.7550,warehouse,open
        """

    static let skus = [
        "SKU-1001", "SKU-1002", "SKU-1003", "SKU-1004", "SKU-1005",
        "SKU-1006", "SKU-1007", "SKU-1008", "SKU-1009", "SKU-1010",
    ]

    /// Stock is a fixed pattern: popular SKUs everywhere, rarer ones in fewer stores.
    static var inventory: String {
        var out = "store_id,sku,qty\n"
        let ids = TextLines(stores).lines.dropFirst().map { String($0.split(separator: ",")[0]) }
        for (s, id) in ids.enumerated() {
            for (k, sku) in skus.enumerated() where (s + k) % (k / 3 + 1) == 0 {
                out += "\(id),\(sku),\(id.hasPrefix("WH") ? 500 : 5 + (s * 7 + k * 3) % 20)\n"
            }
        }
        return out
    }

    /// Loads stores and inventory; returns (stores, inventory rows).
    static func load(into db: Connection, at: String) throws -> (Int, Int) {
        var s = TextLines(stores)
        let n = try Importer.importStores(&s, db: db, at: at, label: "demo stores")
        var i = TextLines(inventory)
        let m = try Importer.importInventory(&i, db: db, label: "demo inventory")
        return (n, m)
    }
}
