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
        ]
        for a in OrderAction.allCases {
            for s in OrderStatus.allCases {
                #expect((OrderStateMachine.target(of: a, from: s) != nil) == legal.contains("\(a.rawValue):\(s.rawValue)"), "\(a) from \(s)")
            }
        }
    }

    @Test func nothingIsCancelledOnceShipped() {
        for s in [OrderStatus.shipped, .delivered, .cancelled] {
            #expect(OrderStateMachine.target(of: .cancel, from: s) == nil)
        }
        #expect(!OrderStateMachine.holdsReservation(.shipped))
        #expect(OrderStateMachine.holdsReservation(.packed))
    }
}
