import OCSSCore
import Testing

@Suite struct OrderStateMachineTests {
    @Test func happyPath() {
        var s = OrderStatus.assigned
        for (a, want) in [(OrderAction.accept, OrderStatus.accepted), (.pick, .picking), (.pack, .packed), (.ship, .shipped), (.deliver, .delivered)]
        {
            #expect(OrderStateMachine.target(of: a, from: s) == want)
            s = want
            #expect(OrderStateMachine.isRepeat(of: a, at: s))
        }
    }

    @Test func everyIllegalPairIsRefused() {
        // The full table: exactly these pairs are legal.
        let legal: Set<String> = [
            "accept:assigned", "reject:assigned", "reject:accepted", "pick:accepted", "pack:picking", "ship:picking",
            "ship:packed", "deliver:shipped", "cancel:received", "cancel:address_review", "cancel:assigned",
            "cancel:accepted", "cancel:picking", "cancel:packed", "cancel:unroutable",
            // Issue 21: how orders really leave a store.
            "ready:accepted", "ready:picking", "ready:packed", "ship:ready", "cancel:ready",
            "hand_over:accepted", "hand_over:picking", "hand_over:packed", "hand_over:ready", "deliver:handed_over",
            "pickup:accepted", "pickup:picking", "pickup:packed", "pickup:ready",
        ]
        for a in OrderAction.allCases {
            for s in OrderStatus.allCases {
                #expect((OrderStateMachine.target(of: a, from: s) != nil) == legal.contains("\(a.rawValue):\(s.rawValue)"), "\(a) from \(s)")
            }
        }
    }

    /// A rider's order and a pickup order, each with its `ready` step: the goods stay reserved until they leave.
    @Test func riderAndPickupPaths() {
        for (way, out) in [(OrderAction.hand_over, OrderStatus.handed_over), (.pickup, .picked_up)] {
            var s = OrderStatus.accepted
            for (a, want) in [(OrderAction.pick, OrderStatus.picking), (.ready, .ready), (way, out)] {
                #expect(OrderStateMachine.target(of: a, from: s) == want)
                s = want
                #expect(OrderStateMachine.isRepeat(of: a, at: s))
            }
        }
        #expect(OrderStateMachine.holdsReservation(.ready))
        #expect(!OrderStateMachine.holdsReservation(.handed_over) && !OrderStateMachine.holdsReservation(.picked_up))
        #expect(OrderStateMachine.target(of: .deliver, from: .handed_over) == .delivered)
        #expect(OrderStateMachine.target(of: .deliver, from: .picked_up) == nil)
    }

    @Test func nothingIsCancelledOnceShipped() {
        for s in [OrderStatus.shipped, .handed_over, .picked_up, .delivered, .cancelled] {
            #expect(OrderStateMachine.target(of: .cancel, from: s) == nil)
        }
        #expect(!OrderStateMachine.holdsReservation(.shipped))
        #expect(OrderStateMachine.holdsReservation(.packed))
    }
}
