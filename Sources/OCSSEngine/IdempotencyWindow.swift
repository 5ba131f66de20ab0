/// The newest `capacity` entries of a map that grows without end (its full copy is in the database), evicting the
/// oldest. Once an entry has been evicted, or left unloaded at start-up, `complete` is false and a key missing here
/// must be looked up in the database before it is treated as new.
package struct RecentWindow<Key: Hashable, Value> {
    package let capacity: Int
    private var values: [Key: Value] = [:]
    /// Keys in insertion order; once full, a ring whose oldest key sits at `oldest`.
    private var ring: [Key] = []
    private var oldest = 0
    /// True while every entry ever inserted is held here.
    private(set) var complete: Bool

    /// `complete`: whether the entries about to be inserted are all the database holds.
    package init(capacity: Int, complete: Bool = true) {
        precondition(capacity > 0, "a window holds at least one entry")
        self.capacity = capacity
        self.complete = complete
        values.reserveCapacity(min(capacity, 1 << 16))
    }

    package subscript(key: Key) -> Value? { values[key] }

    package var count: Int { values.count }

    /// Records an entry, evicting the oldest one when full.
    package mutating func insert(_ key: Key, value: Value) {
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
/// service runs. Keys and body hashes are held as 128-bit digests, not texts: an entry costs about 100 bytes instead
/// of about 950 (measured at 200,000 keys: 190 MB as texts). Two keys, or two bodies, share a digest with odds of
/// about 2^-128 a pair; the key digest comes from this process's seeded hasher, so nobody can aim for a collision.
package struct IdempotencyWindow: Sendable {
    package struct Digest: Hashable, Sendable {
        var hi: UInt64
        var lo: UInt64
    }

    private var window: RecentWindow<Digest, Digest>

    package init(capacity: Int, complete: Bool = true) { window = RecentWindow(capacity: capacity, complete: complete) }

    /// The body digest committed under `key`.
    package subscript(key: String) -> Digest? { window[Self.digest(key: key)] }

    package var count: Int { window.count }
    package var complete: Bool { window.complete }

    package mutating func insert(_ key: String, hash: String) { window.insert(Self.digest(key: key), value: Self.digest(hex: hash)) }

    package static func digest(key: String) -> Digest {
        var a = Hasher(), b = Hasher()
        a.combine(0 as UInt8)
        a.combine(key)
        b.combine(1 as UInt8)
        b.combine(key)
        return Digest(hi: UInt64(bitPattern: Int64(a.finalize())), lo: UInt64(bitPattern: Int64(b.finalize())))
    }

    /// The first 128 bits of a hex body hash (SHA-256).
    package static func digest(hex: String) -> Digest {
        let u = Array(hex.utf8)
        func word(_ r: Range<Int>) -> UInt64 {
            let r = r.clamped(to: 0..<u.count)
            return r.isEmpty ? 0 : UInt64(String(decoding: u[r], as: UTF8.self), radix: 16) ?? 0
        }
        return Digest(hi: word(0..<16), lo: word(16..<32))
    }
}

extension RecentWindow: Sendable where Key: Sendable, Value: Sendable {}
