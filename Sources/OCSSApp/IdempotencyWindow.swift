/// The newest `capacity` entries of a map that grows without end (its full copy is in the database), evicting the
/// oldest. Once an entry has been evicted, or left unloaded at start-up, `complete` is false and a key missing here
/// must be looked up in the database before it is treated as new.
struct RecentWindow<Key: Hashable, Value> {
    let capacity: Int
    private var values: [Key: Value] = [:]
    /// Keys in insertion order; once full, a ring whose oldest key sits at `oldest`.
    private var ring: [Key] = []
    private var oldest = 0
    /// True while every entry ever inserted is held here.
    private(set) var complete: Bool

    /// `complete`: whether the entries about to be inserted are all the database holds.
    init(capacity: Int, complete: Bool = true) {
        precondition(capacity > 0, "a window holds at least one entry")
        self.capacity = capacity
        self.complete = complete
        values.reserveCapacity(min(capacity, 1 << 16))
    }

    subscript(key: Key) -> Value? { values[key] }

    var count: Int { values.count }

    /// Records an entry, evicting the oldest one when full.
    mutating func insert(_ key: Key, value: Value) {
        if values.updateValue(value, forKey: key) != nil { return }
        if ring.count < capacity {
            ring.append(key)
            return
        }
        values.removeValue(forKey: ring[oldest])
        ring[oldest] = key
        oldest = (oldest + 1) % capacity
        complete = false
    }
}

/// The idempotency keys the engine answers from memory: the newest committed keys with their body hashes. Every key
/// also stays in the database (the unique index on `orders.idempotency_key`), so memory is bounded however long the
/// service runs.
typealias IdempotencyWindow = RecentWindow<String, String>

extension RecentWindow where Key == String, Value == String {
    mutating func insert(_ key: String, hash: String) { insert(key, value: hash) }
}

extension RecentWindow: Sendable where Key: Sendable, Value: Sendable {}
