/// The idempotency keys the engine answers from memory: the newest `capacity` committed keys with
/// their body hashes. Every key also stays in the database (the unique index on
/// `orders.idempotency_key`), so memory is bounded however long the service runs. Once a key has been
/// evicted, or left unloaded at start-up, `complete` is false and a key missing here must be looked up
/// in the database before it is treated as new.
struct IdempotencyWindow {
    let capacity: Int
    private var hashes: [String: String] = [:]
    /// Keys in commit order; once full, a ring whose oldest key sits at `oldest`.
    private var ring: [String] = []
    private var oldest = 0
    /// True while every key ever committed is held here.
    private(set) var complete: Bool

    /// `complete`: whether the keys about to be inserted are all the database holds.
    init(capacity: Int, complete: Bool = true) {
        precondition(capacity > 0, "an idempotency window holds at least one key")
        self.capacity = capacity
        self.complete = complete
        hashes.reserveCapacity(min(capacity, 1 << 16))
    }

    subscript(key: String) -> String? { hashes[key] }

    var count: Int { hashes.count }

    /// Records a committed key, evicting the oldest one when full.
    mutating func insert(_ key: String, hash: String) {
        if hashes.updateValue(hash, forKey: key) != nil { return }
        if ring.count < capacity {
            ring.append(key)
            return
        }
        hashes.removeValue(forKey: ring[oldest])
        ring[oldest] = key
        oldest = (oldest + 1) % capacity
        complete = false
    }
}
