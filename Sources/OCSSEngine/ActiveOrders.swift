package import OCSSStore

/// Orders between assigned and delivered, by id, with a queue of when the SLA timer must next look at each.
/// A tick then costs what is due, not every active order: it used to sort and walk all of them every second
/// under the engine lock, so a day's worth of shipped-but-undelivered orders stalled intake once a second.
///
/// Any change to an order (the setter) queues it to be looked at on the next tick, where its real deadline is
/// worked out; entries superseded by a later change are dropped when they surface.
package struct ActiveOrders {
    private var byID: [Int64: ActiveOrderRow] = [:]
    private var queue = DeadlineQueue()
    /// The one time each queued order counts for.
    private var scheduled: [Int64: Double] = [:]

    package init(_ rows: some Sequence<ActiveOrderRow> = []) {
        for o in rows { self[o.id] = o }
    }

    package subscript(id: Int64) -> ActiveOrderRow? {
        get { byID[id] }
        set {
            byID[id] = newValue
            if newValue != nil { schedule(id, at: -.infinity) } else { scheduled.removeValue(forKey: id) }
        }
    }

    @discardableResult
    package mutating func removeValue(forKey id: Int64) -> ActiveOrderRow? {
        scheduled.removeValue(forKey: id)
        return byID.removeValue(forKey: id)
    }

    package var values: Dictionary<Int64, ActiveOrderRow>.Values { byID.values }
    package var count: Int { byID.count }
    /// Queue entries, superseded ones included (tests check they do not pile up).
    package var queued: Int { queue.count }

    /// Looks at `id` again at `time` (or on the next tick, for `-infinity`).
    package mutating func schedule(_ id: Int64, at time: Double) {
        guard byID[id] != nil else { return }
        scheduled[id] = time
        queue.push(time, id)
    }

    /// Orders of `slot` looked at again on the next tick (its SLA changed).
    package mutating func reschedule(slot: Int32) {
        for (id, o) in byID where o.storeSlot == slot { schedule(id, at: -.infinity) }
    }

    /// Takes up to `limit` orders whose time has come, earliest first (ties by id). Each is unscheduled: the
    /// caller schedules it again if it still has a deadline.
    package mutating func takeDue(now: Double, limit: Int) -> [Int64] {
        var out: [Int64] = []
        while out.count < limit, let top = queue.min, top.time <= now {
            queue.popMin()
            guard scheduled[top.id] == top.time else { continue }
            scheduled.removeValue(forKey: top.id)
            out.append(top.id)
        }
        return out
    }
}

/// A binary min-heap of (time, id), ordered by time, then id.
package struct DeadlineQueue {
    private var items: [(time: Double, id: Int64)] = []

    package var count: Int { items.count }
    package var min: (time: Double, id: Int64)? { items.first }

    private static func less(_ a: (time: Double, id: Int64), _ b: (time: Double, id: Int64)) -> Bool {
        a.time < b.time || (a.time == b.time && a.id < b.id)
    }

    package mutating func push(_ time: Double, _ id: Int64) {
        items.append((time, id))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    package mutating func popMin() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, Self.less(items[l], items[m]) { m = l }
            if r < items.count, Self.less(items[r], items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
    }
}
