/// Where an order is in its life. The store workflow issue extends the transitions; routing uses
/// the first states.
public enum OrderStatus: String, Sendable, Codable, CaseIterable {
    case received
    case address_review
    case assigned
    case accepted
    case picking
    case packed
    case shipped
    case delivered
    case rejected
    case unroutable
    case cancelled
}
