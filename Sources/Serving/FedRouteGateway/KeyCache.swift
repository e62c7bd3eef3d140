import FedRouteGatewayStore
import Synchronization

/// Keys recently read from the store, by hash, so that a burst of requests with one key reads the
/// store once per `ttl` instead of once per request. Only found keys are kept (a new key works at
/// once); a revocation, expiry or policy change reaches a replica within `ttl`. Spend is not read from
/// here: budget admission always asks the store.
final class KeyCache: Sendable {
    private struct Entry {
        var key: VirtualKey
        var fetched: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// Most keys kept; beyond it the cache is cleared (keys are few, hashes of unknown keys are not kept).
    static let capacity = 10_000

    /// The key with `hash` if it was read less than `ttl` ago.
    func key(hash: String, ttl: Duration, now: ContinuousClock.Instant = .now) -> VirtualKey? {
        guard ttl > .zero else { return nil }
        return entries.withLock { e in
            guard let entry = e[hash], now - entry.fetched < ttl else { return nil }
            return entry.key
        }
    }

    func store(_ key: VirtualKey, now: ContinuousClock.Instant = .now) {
        entries.withLock { e in
            if e.count >= Self.capacity { e.removeAll(keepingCapacity: true) }
            e[key.hash] = Entry(key: key, fetched: now)
        }
    }
}
