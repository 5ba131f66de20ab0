/// What limits a location beyond its status: capacity, opening hours, where it delivers, rank.
/// Every field is optional; a store with no rules takes any order at any time within the policy's reach.
public struct StoreRules: Sendable, Hashable, Codable {
    /// Orders it takes per local day (assignments made today), nil = unlimited.
    public var dailyCapacity: Int?
    /// IANA time zone of its hours, holidays and day boundary; nil = Asia/Shanghai.
    public var timeZone: String?
    /// Opening hours per weekday; nil = always open.
    public var hours: WeeklyHours?
    /// Local dates (`YYYY-MM-DD`) it is closed all day.
    public var holidays: [String]
    /// Farthest it delivers, metres; nil = the policy's reach (stores) or warehouse reach (warehouses).
    public var serviceRadiusMetres: Double?
    /// Where it delivers, when it delivers only to an area (GeoJSON Polygon or MultiPolygon).
    public var serviceArea: ServiceArea?
    /// Higher ranks first where the policy weighs priority. Default 0.
    public var priority: Int
    /// Every order assigned to the store is accepted at once, as food-delivery merchant apps offer (自动接单): the
    /// store still picks, readies and hands over. Not a routing rule. Default false.
    public var autoAccept: Bool

    public static let defaultTimeZone = "Asia/Shanghai"

    public init(
        dailyCapacity: Int? = nil, timeZone: String? = nil, hours: WeeklyHours? = nil, holidays: [String] = [],
        serviceRadiusMetres: Double? = nil, serviceArea: ServiceArea? = nil, priority: Int = 0, autoAccept: Bool = false
    ) {
        self.dailyCapacity = dailyCapacity
        self.timeZone = timeZone
        self.hours = hours
        self.holidays = holidays
        self.serviceRadiusMetres = serviceRadiusMetres
        self.serviceArea = serviceArea
        self.priority = priority
        self.autoAccept = autoAccept
    }

    public var isEmpty: Bool { self == StoreRules() }

    enum CodingKeys: String, CodingKey {
        case dailyCapacity = "daily_capacity", timeZone = "timezone", hours, holidays, serviceRadiusMetres = "service_radius_m"
        case serviceArea = "service_area", priority, autoAccept = "auto_accept"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dailyCapacity = try c.decodeIfPresent(Int.self, forKey: .dailyCapacity)
        timeZone = try c.decodeIfPresent(String.self, forKey: .timeZone)
        hours = try c.decodeIfPresent(WeeklyHours.self, forKey: .hours)
        holidays = try c.decodeIfPresent([String].self, forKey: .holidays) ?? []
        serviceRadiusMetres = try c.decodeIfPresent(Double.self, forKey: .serviceRadiusMetres)
        serviceArea = try c.decodeIfPresent(ServiceArea.self, forKey: .serviceArea)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority) ?? 0
        autoAccept = try c.decodeIfPresent(Bool.self, forKey: .autoAccept) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(dailyCapacity, forKey: .dailyCapacity)
        try c.encodeIfPresent(timeZone, forKey: .timeZone)
        try c.encodeIfPresent(hours, forKey: .hours)
        if !holidays.isEmpty { try c.encode(holidays, forKey: .holidays) }
        try c.encodeIfPresent(serviceRadiusMetres, forKey: .serviceRadiusMetres)
        try c.encodeIfPresent(serviceArea, forKey: .serviceArea)
        if priority != 0 { try c.encode(priority, forKey: .priority) }
        if autoAccept { try c.encode(true, forKey: .autoAccept) }
    }

    /// The first rule that does not make sense, as (field, message); nil when all do.
    public func problem() -> (field: String, message: String)? {
        if let c = dailyCapacity, c < 0 || c > 10_000_000 { return ("daily_capacity", "daily_capacity must be 0 to 10000000") }
        if let r = serviceRadiusMetres, !(r > 0 && r <= 20_000_000) { return ("service_radius_m", "service_radius_m must be > 0 and <= 20000000") }
        if !(-1000...1000).contains(priority) { return ("priority", "priority must be -1000 to 1000") }
        for (i, h) in holidays.enumerated() where LocalDate.dayNumber(h) == nil {
            return ("holidays[\(i)]", "holidays are local dates YYYY-MM-DD")
        }
        if holidays.count > 1000 { return ("holidays", "at most 1000 holidays") }
        return nil
    }
}
