/// Where an order is in its life. The store workflow issue extends the transitions; routing uses
/// the first states.
public enum OrderStatus: String, Sendable, Codable, CaseIterable {
    case received
    case address_review
    case assigned
    case accepted
    case picking
    case packed
    /// Packed and waiting at the counter for the rider or the buyer.
    case ready
    /// Given to the platform's rider.
    case handed_over
    /// Collected in the store by the buyer.
    case picked_up
    case shipped
    case delivered
    case rejected
    case unroutable
    case cancelled
}
