import Foundation
import OCSSApp
@testable import OCSSEngine
import OCSSTestSupport
import Testing

@Suite(.serialized, .ownThreads) struct AuthThrottleTests {
    /// Issue 22.G: any non-empty admin token was accepted, and guesses were not throttled (about 11,000 a second on one
    /// connection). Past the limit an address is refused 429 with Retry-After, its credentials unchecked (the right
    /// one too), for a time that doubles with each further failure; other addresses are not affected.
    @Test func repeatedFailuresFromOneAddressAreSlowedDown() throws {
        let clock = ManualClock()
        let live = try Live(clock: clock) { $0.authFailuresPerMinute = 5 }
        defer { live.stop() }
        let bad = [("Authorization", "Bearer adm_guess_000000000000000000000000000")]
        for _ in 0..<6 { #expect(try live.api.send("GET", "/v1/stores", headers: bad).status == 401) }
        let refused = try live.api.send("GET", "/v1/stores", headers: admin)
        #expect(refused.status == 429 && refused.headers["retry-after"] == "1", "\(refused.status) \(refused.body)")
        #expect(refused.body.contains(#""code":"too_many_auth_failures""#) && refused.body.contains(#""field":"Authorization""#))
        // The login form counts and is refused alike.
        #expect(try live.api.send("POST", "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=x").status == 429)
        // Another client behind the local proxy is counted by its own address.
        #expect(try live.api.send("GET", "/v1/stores", headers: admin + [("X-Forwarded-For", "203.0.113.7")]).status == 200)
        // Requests without credentials are not refused.
        #expect(try live.api.send("GET", "/healthz").status == 200)
        clock.advance(1.5)
        #expect(try live.api.send("GET", "/v1/stores", headers: admin).status == 200)
        // Still failing within the minute: the next block is twice as long.
        #expect(try live.api.send("GET", "/v1/stores", headers: bad).status == 401)
        #expect(try live.api.send("GET", "/v1/stores", headers: admin).headers["retry-after"] == "2")
        let metrics = try live.api.send("GET", "/metrics").body
        #expect(metrics.contains("ocss_auth_failures_total 7") && metrics.contains("ocss_auth_throttled_total 3"), "\(metrics)")
    }

    @Test func anAdminTokenShorterThan32CharactersIsRefusedAtStart() throws {
        let dir = TempDir("ocss-token")
        defer { dir.remove() }
        #expect {
            _ = try Live.start(dir: dir, demo: false) { $0.adminToken = "hunter2" }
        } throws: { e in
            "\(e)".contains("has 7 characters: use at least 32")
        }
    }
}
