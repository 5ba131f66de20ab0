/// Parameters of one routing decision.
public struct RoutingPolicy: Sendable, Hashable, Codable {
    /// Farthest a store may be from the customer, metres (great circle). Default 50 km.
    public var reachMetres: Double
    /// How many skipped candidates an explanation lists (the rest are counted).
    public var traceLimit: Int

    public init(reachMetres: Double = 50_000, traceLimit: Int = 20) {
        self.reachMetres = reachMetres
        self.traceLimit = traceLimit
    }
}
