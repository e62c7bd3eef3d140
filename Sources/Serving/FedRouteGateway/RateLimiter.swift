import Synchronization

/// Requests-per-minute and tokens-per-minute limits of virtual keys, as token buckets.
///
/// Each key has two buckets holding at most one minute's allowance and refilling continuously. A
/// request takes one request token, and is admitted only while the key's token bucket is not empty;
/// its estimated prompt tokens are taken at admission and the difference to the tokens the upstream
/// reports when it ends (so the token bucket may go below zero, which holds the next requests back
/// until it refills). The buckets live in this process: with N replicas behind a load balancer a key
/// gets up to N times its limits (docs/GATEWAY.md says how to set them). A lock, not an actor: the
/// work is a few arithmetic operations, and a request should not wait for an executor hop.
final class RateLimiter: Sendable {
    struct Bucket {
        var level: Double
        var updated: ContinuousClock.Instant

        /// Refills at `perMinute` per minute up to `perMinute`.
        mutating func refill(perMinute: Int, now: ContinuousClock.Instant) {
            let elapsed = now - updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            level = min(Double(perMinute), level + seconds * Double(perMinute) / 60)
            updated = now
        }

        /// Seconds until the level reaches `target`.
        func secondsUntil(_ target: Double, perMinute: Int) -> Double {
            max(0, (target - level) * 60 / Double(perMinute))
        }
    }

    /// Which limit refused a request, and when to retry.
    struct Refusal: Error, Equatable {
        var limit: String
        var retryAfterSeconds: Double
    }

    private struct Buckets {
        var requests: [String: Bucket] = [:]
        var tokens: [String: Bucket] = [:]
    }

    private let buckets = Mutex(Buckets())
    let clock = ContinuousClock()

    /// Takes one request and `estimatedTokens` tokens from `keyID`'s buckets, or refuses (taking nothing).
    func admit(keyID: String, rpm: Int?, tpm: Int?, estimatedTokens: Int) throws(Refusal) {
        let now = clock.now
        try buckets.withLock { (b: inout Buckets) throws(Refusal) in try Self.admit(&b, keyID: keyID, rpm: rpm, tpm: tpm, estimatedTokens: estimatedTokens, now: now) }
    }

    private static func admit(_ all: inout Buckets, keyID: String, rpm: Int?, tpm: Int?, estimatedTokens: Int, now: ContinuousClock.Instant) throws(Refusal) {
        var r: Bucket?
        if let rpm {
            var b = all.requests[keyID] ?? Bucket(level: Double(rpm), updated: now)
            b.refill(perMinute: rpm, now: now)
            guard b.level >= 1 else { throw Refusal(limit: "\(rpm) requests per minute", retryAfterSeconds: b.secondsUntil(1, perMinute: rpm)) }
            r = b
        }
        if let tpm {
            var b = all.tokens[keyID] ?? Bucket(level: Double(tpm), updated: now)
            b.refill(perMinute: tpm, now: now)
            guard b.level > 0 else { throw Refusal(limit: "\(tpm) tokens per minute", retryAfterSeconds: b.secondsUntil(1, perMinute: tpm)) }
            b.level -= Double(estimatedTokens)
            all.tokens[keyID] = b
        }
        if var r {
            r.level -= 1
            all.requests[keyID] = r
        }
    }

    /// Charges the difference between the tokens a request used and the estimate taken at admission.
    func settle(keyID: String, tpm: Int?, estimatedTokens: Int, actualTokens: Int) {
        guard let tpm else { return }
        let now = clock.now
        buckets.withLock { all in
            var b = all.tokens[keyID] ?? Bucket(level: Double(tpm), updated: now)
            b.refill(perMinute: tpm, now: now)
            b.level -= Double(actualTokens - estimatedTokens)
            all.tokens[keyID] = b
        }
    }
}
