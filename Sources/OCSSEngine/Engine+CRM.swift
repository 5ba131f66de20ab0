package import OCSSCore
import OCSSPlatforms
package import OCSSStore
import Synchronization

/// Customers, promotion codes and redemptions.
extension Engine {
    // MARK: - Facts at intake

    /// What an order adds to its customer and to analytics; the payload non-admins see is masked here, once.
    package static func facts(of order: CanonicalOrder, names: GeoNames?, at: String) -> OrderFacts {
        // Saturating: a platform may send any price; analytics must not trap on it.
        func add(_ a: Int64, _ b: Int64) -> Int64 { let (r, o) = a.addingReportingOverflow(b); return o ? (b > 0 ? .max : -.max) : r }
        func mul(_ a: Int64, _ b: Int64) -> Int64 {
            let (r, o) = a.multipliedReportingOverflow(by: b); return o ? ((a < 0) != (b < 0) ? -.max : .max) : r
        }
        let units = order.lines.reduce(Int64(0)) { add($0, Int64($1.quantity)) }
        let amount = order.total_minor ?? order.lines.reduce(Int64(0)) { add($0, mul($1.unit_price_minor ?? 0, Int64($1.quantity))) }
        let phone = order.buyer?.phone.flatMap { PhoneNumber.e164($0) }
        let address = order.shipping.address_precision == nil ? Engine.addressText(order.shipping) : nil
        return OrderFacts(
            phone: phone, name: order.buyer?.name.flatMap { $0.contains("*") ? nil : $0 }, address: address,
            channel: order.channel ?? order.platform, amountMinor: amount, units: units,
            province: names?.province ?? order.shipping.province, city: names?.city ?? order.shipping.city,
            day: BusinessDay.of(at), currency: order.currency ?? "CNY",
            maskedPayload: String(decoding: CanonicalJSON.encode(masked(order, names: names)), as: UTF8.self))
    }

    /// The order as a store or any non-admin sees it: phone `+86 138****8000`, name `张*`, address down to the district.
    package static func masked(_ order: CanonicalOrder, names: GeoNames?) -> CanonicalOrder {
        var o = order
        if var b = o.buyer {
            b.phone = b.phone.map { raw in PhoneNumber.e164(raw).map(PhoneNumber.masked) ?? "****" }
            b.name = b.name.map(AddressMask.name)
            o.buyer = b
        }
        if let text = Engine.addressText(o.shipping) {
            o.shipping.text = AddressMask.masked(text, names: names)
        }
        o.shipping.detail = o.shipping.detail.map { _ in "****" }
        o.shipping.postal_code = nil
        return o
    }

    // MARK: - Campaigns and codes

    /// Generates `count` codes from libcrypto's random source (retrying the rare clash), optionally bound one per
    /// phone, in one transaction. Returns the codes.
    package func issueCodes(campaignID: String, count: Int, phones: [String], completion: @escaping @Sendable (Result<[String], any Error>) -> Void) {
        let at = rfc3339(clock.now())
        writer.submit(
            { db in
                var codes: [(code: String, phone: String?)] = (0..<count).map { i in (Engine.newCode(), i < phones.count ? phones[i] : nil) }
                var clashes = try Repository.insertCodes(db, campaignID: campaignID, codes: codes, at: at)
                var rounds = 0
                while !clashes.isEmpty && rounds < 5 {
                    let retry = clashes.map { (code: Engine.newCode(), phone: codes[$0].phone) }
                    for (k, i) in clashes.enumerated() { codes[i].code = retry[k].code }
                    clashes = try Repository.insertCodes(db, campaignID: campaignID, codes: retry, at: at).map { clashes[$0] }
                    rounds += 1
                }
                guard clashes.isEmpty else { throw CodeSpaceExhausted() }
                return codes.map(\.code)
            }, completion: completion)
    }

    package static func newCode() -> String {
        while true {
            if let c = PromoCode.make(random: Crypto.randomBytes(24)) { return c }
        }
    }

    // MARK: - Redemption

    /// Redeems `code` for `phone` at a store: throttled per store and per phone (5 guesses, unknown codes or codes
    /// tried with the wrong phone, in 15 minutes lock the key out for 15 minutes), decided and audited in one
    /// transaction, exactly once.
    package func redeem(code typed: String, phone: String, storeSlot: Int32, completion: @escaping @Sendable (RedemptionResult, String?) -> Void) {
        let now = clock.now()
        let at = rfc3339(now)
        let keys = ["store:\(storeSlot)", "phone:\(phone)"]
        if let until = throttle.withLock({ t in keys.compactMap { t.lockedUntil(key: $0, now: now) }.max() }) {
            writer.submit({ db in
                try Repository.audit(db, at: at, storeSlot: storeSlot, phone: phone, code: PromoCode.normalise(typed) ?? typed, result: .locked_out)
            }) { _ in completion(.locked_out, rfc3339(until)) }
            return
        }
        guard let code = PromoCode.normalise(typed) else {
            // A malformed code or a wrong check symbol never reaches the table, but counts as a failed guess.
            throttle.withLock { t in for k in keys { t.fail(key: k, now: now) } }
            writer.submit({ db in try Repository.audit(db, at: at, storeSlot: storeSlot, phone: phone, code: typed, result: .unknown_code) }) { _ in
                completion(.unknown_code, nil)
            }
            return
        }
        writer.submit({ db in
            try Repository.redeem(db, code: code, phone: phone, storeSlot: storeSlot, at: at)
        }) { [self] result in
            switch result {
            case .success(let r):
                // Guesses count against the store and the phone: an unknown code, or a code tried with the wrong phone.
                // (Already used, expired or not eligible are honest mistakes with a real code.)
                if r == .unknown_code || r == .wrong_phone { throttle.withLock { t in for k in keys { t.fail(key: k, now: now) } } }
                completion(r, nil)
            case .failure:
                completion(.unknown_code, "storage")
            }
        }
    }
}

/// Failed redemption attempts per key (store or phone) in a sliding window, and lockouts.
package struct RedemptionThrottle: Sendable {
    package static let window = 15 * 60.0
    package static let maxFailures = 5
    package static let lockout = 15 * 60.0
    package var failures: [String: [Double]] = [:]
    package var locked: [String: Double] = [:]

    package func lockedUntil(key: String, now: Double) -> Double? {
        guard let until = locked[key], until > now else { return nil }
        return until
    }

    package mutating func fail(key: String, now: Double) {
        var f = (failures[key] ?? []).filter { $0 > now - RedemptionThrottle.window }
        f.append(now)
        if f.count >= RedemptionThrottle.maxFailures {
            locked[key] = now + RedemptionThrottle.lockout
            f = []
        }
        failures[key] = f
        // Keys guessed once and never again would otherwise stay for good (a phone-number sweep grows this).
        // Pruning again only after the tables doubled keeps its cost per failure constant.
        if failures.count + locked.count > pruneAbove { prune(now: now) }
    }

    /// Entries (failures and lockouts) above which old ones are dropped; never below `pruneFloor`.
    package let pruneFloor: Int
    private var pruneAbove: Int

    package init(pruneFloor: Int = 100_000) {
        self.pruneFloor = pruneFloor
        pruneAbove = pruneFloor
    }

    /// Drops failures older than the window and lockouts that have ended.
    package mutating func prune(now: Double) {
        failures = failures.compactMapValues { f in
            let recent = f.filter { $0 > now - RedemptionThrottle.window }
            return recent.isEmpty ? nil : recent
        }
        locked = locked.filter { $0.value > now }
        pruneAbove = max(pruneFloor, 2 * (failures.count + locked.count))
    }
}

/// Five rounds of fresh codes still clashed with codes already issued: the code space is nearly full.
package struct CodeSpaceExhausted: Error, Sendable {}
