/// Province names with their suffix (CANONICAL.md rule 4: `广东` -> `广东省`).
enum Provinces {
    static let special: [String: String] = [
        "北京": "北京市", "天津": "天津市", "上海": "上海市", "重庆": "重庆市", "内蒙古": "内蒙古自治区", "广西": "广西壮族自治区",
        "西藏": "西藏自治区", "宁夏": "宁夏回族自治区", "新疆": "新疆维吾尔自治区", "香港": "香港特别行政区", "澳门": "澳门特别行政区",
    ]
    static let suffixes = ["省", "市", "自治区", "特别行政区"]

    static func normalised(_ name: String?) -> String? {
        guard let n = name?.nonEmpty else { return nil }
        if suffixes.contains(where: { n.hasSuffix($0) }) { return n }
        return special[n] ?? n + "省"
    }
}
