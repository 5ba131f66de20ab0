/// What a store (or the platform, an admin, the SLA timer) does to an order.
public enum OrderAction: String, Sendable, Codable, CaseIterable {
    case accept, reject, pick, pack, ship, deliver, cancel
    /// Packed and waiting for whoever takes it (出餐/拣货完成): relayed to the platform where it has such a call.
    case ready
    /// The platform's rider took it.
    case hand_over
    /// The buyer collected it in the store.
    case pickup
}

/// Why a store rejects an assignment.
public enum RejectReason: String, Sendable, Codable, CaseIterable {
    case out_of_stock, closed, too_busy, other
    /// Set by the SLA timer, not by a store.
    case sla_timeout
    /// Set by inventory sync when a snapshot leaves less on hand than is reserved, not by a store.
    case stock_shortfall
}

/// The order life cycle:
/// received -> (address_review) -> assigned -> accepted -> picking -> packed -> shipped -> delivered,
/// with reject (assigned or accepted, before picking) rerouting to the next store (assigned again,
/// or unroutable), and cancel allowed any time before the goods leave the store.
///
/// How the goods leave depends on who takes them: `ship` (a parcel, with carrier and tracking number), `hand_over`
/// (the platform's rider; `delivered` follows when the platform says so) or `pickup` (the buyer, in the store; final).
/// `ready` (packed and waiting at the counter) may come first, from `accepted`, `picking` or `packed`; each way out is
/// allowed from `ready` and from the steps before it, because small stores skip steps.
public enum OrderStateMachine {
    /// The state `action` leads to from `status`, or nil when the action is illegal there.
    /// For `reject` the result is `rejected`: the caller reroutes, ending in `assigned` or `unroutable`.
    public static func target(of action: OrderAction, from status: OrderStatus) -> OrderStatus? {
        switch (action, status) {
        case (.accept, .assigned): .accepted
        case (.reject, .assigned), (.reject, .accepted): .rejected
        case (.pick, .accepted): .picking
        case (.pack, .picking): .packed
        case (.ship, .picking), (.ship, .packed), (.ship, .ready): .shipped
        case (.ready, .accepted), (.ready, .picking), (.ready, .packed): .ready
        case (.hand_over, .accepted), (.hand_over, .picking), (.hand_over, .packed), (.hand_over, .ready): .handed_over
        case (.pickup, .accepted), (.pickup, .picking), (.pickup, .packed), (.pickup, .ready): .picked_up
        case (.deliver, .shipped), (.deliver, .handed_over): .delivered
        case (.cancel, .received), (.cancel, .address_review), (.cancel, .assigned), (.cancel, .accepted),
            (.cancel, .picking), (.cancel, .packed), (.cancel, .ready), (.cancel, .unroutable):
            .cancelled
        default: nil
        }
    }

    /// True when repeating `action` on an order already in `status` is a no-op success (idempotent
    /// retry of the request that got it there).
    public static func isRepeat(of action: OrderAction, at status: OrderStatus) -> Bool {
        switch (action, status) {
        case (.accept, .accepted), (.pick, .picking), (.pack, .packed), (.ship, .shipped), (.deliver, .delivered),
            (.cancel, .cancelled), (.ready, .ready), (.hand_over, .handed_over), (.pickup, .picked_up):
            true
        default: false
        }
    }

    /// States whose stock is still reserved in a store.
    public static func holdsReservation(_ s: OrderStatus) -> Bool {
        switch s {
        case .assigned, .accepted, .picking, .packed, .ready: true
        default: false
        }
    }

    /// Events the customer sees, which go to the platform through the outbox.
    public static func isCustomerVisible(_ s: OrderStatus) -> Bool {
        switch s {
        case .accepted, .ready, .handed_over, .picked_up, .shipped, .delivered, .cancelled: true
        default: false
        }
    }
}
