import Dispatch
import OCSSCore
import OCSSPlatforms
import OCSSProj
package import OCSSStore
import Synchronization

/// The engine's clock work: acceptance and ship-by deadlines, and reloading memory from the file after a failed commit.
extension Engine {
    /// SLA timers, driven by the injected clock: an assignment not accepted within the store's
    /// acceptance SLA is rerouted; an accepted order not shipped by its ship-by time is escalated once.
    /// Returns how many orders it touched.
    @discardableResult
    package func tick() -> Int {
        let now = clock.now()
        var effects: [Effects] = []
        var escalated = 0, timedOut = 0
        state.withLock { s in
            var acted = 0
            for id in s.active.takeDue(now: now, limit: Engine.tickLooksAtMost) {
                guard var o = s.active[id], let due = Engine.slaDeadline(o, s) else { continue }
                // Not yet due, or this tick has done its share (after downtime every overdue order comes due at
                // once): look again later rather than hold the engine lock for all of them.
                if due > now || acted >= Engine.tickActsAtMost {
                    s.active.schedule(id, at: max(due, now))
                    continue
                }
                acted += 1
                var fx = Effects()
                if o.status == .assigned, now >= o.statusAt + s.sla(for: o.storeSlot).acceptSeconds {
                    timedOut += 1
                    reject(&o, reason: .sla_timeout, missing: [], note: nil, actor: .system("sla"), now: now, s: &s, fx: &fx)
                } else if [.accepted, .picking, .packed].contains(o.status), !o.escalated, let due = o.shipBy, now >= due {
                    o.escalated = true
                    escalated += 1
                    let event = NewEvent(
                        at: rfc3339(now), actor: "system:sla", type: "ship_by_missed", from: o.status.rawValue,
                        to: o.status.rawValue, reason: "not shipped by \(rfc3339(due))")
                    fx.jobs.append { db in
                        try Repository.markEscalated(db, id: id)
                        try Repository.insertEvent(db, orderID: id, event)
                    }
                } else {
                    continue
                }
                if o.status == .unroutable { s.active.removeValue(forKey: id) } else { s.active[id] = o }
                effects.append(fx)
            }
        }
        if escalated > 0 { metrics.slaBreach(kind: "ship_by", count: escalated) }
        if timedOut > 0 { metrics.slaBreach(kind: "accept", count: timedOut) }
        for fx in effects { commit(fx, then: { _ in }) }  // nobody waits: the timer's own changes
        return effects.count
    }

    /// Orders the SLA timer looks at per tick, and acts on (reroutes or escalates) per tick; the rest wait for
    /// the next one.
    package static let tickLooksAtMost = 50_000
    package static let tickActsAtMost = 1_000

    /// When `o` next breaks an SLA: the accept deadline of an assigned order, the ship-by time of an accepted,
    /// picking or packed one not yet escalated; nil when no deadline applies.
    package static func slaDeadline(_ o: ActiveOrderRow, _ s: borrowing State) -> Double? {
        switch o.status {
        case .assigned: return o.statusAt + s.sla(for: o.storeSlot).acceptSeconds
        case .accepted, .picking, .packed: return o.escalated ? nil : o.shipBy
        default: return nil
        }
    }

    /// Rebuilds every in-memory structure from the database (start-up, or after a failed commit).
    package func reload() throws {
        let fresh = try readers.read { db in
            try EngineSnapshot(db: db, fallbackPolicy: configuredPolicy, now: clock.now(), window: idempotencyWindow)
        }
        state.withLock { s in
            fresh.apply(to: &s)
            if !s.committed.complete { windowComplete.store(false, ordering: .relaxed) }
        }
    }
}
