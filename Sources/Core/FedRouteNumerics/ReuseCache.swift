import Foundation

/// Values kept by key for reuse: at most `maxEntries` values and `maxBytes` bytes (as `make` reports each value's
/// size), the oldest dropped first; a value larger than `maxBytes` is never kept.
///
/// A key asked for by several callers at once is made once: the first caller makes it while the others wait for
/// it (if it is not kept, or `make` throws, the next waiter makes it in turn). The waiting blocks a thread, so
/// `make` must be short synchronous work that needs no other waiting caller to finish. Safe to use from several
/// threads. `TensorFrameCache` and the federation's shared network buffers keep the round's model with it.
public final class ReuseCache<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    public let maxEntries: Int
    public let maxBytes: Int
    private let lock = NSCondition()
    private var entries: [Key: (value: Value, bytes: Int)] = [:]
    private var order: [Key] = []
    private var heldBytes = 0
    private var hitCount = 0
    private var missCount = 0
    /// Keys being made now, by the caller that missed first.
    private var inFlight: Set<Key> = []

    public init(maxEntries: Int, maxBytes: Int) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(0, maxBytes)
    }

    /// Values served from the cache and values made so far.
    public var counts: (hits: Int, misses: Int) { lock.withLock { (hitCount, missCount) } }

    /// The kept value for `key`, or the one `make` returns (with its size in bytes), kept for next time.
    public func value(for key: Key, _ make: () throws -> (value: Value, bytes: Int)) rethrows -> Value {
        lock.lock()
        while true {
            if let hit = entries[key] {
                hitCount += 1
                lock.unlock()
                return hit.value
            }
            guard inFlight.contains(key) else { break }
            lock.wait()
        }
        inFlight.insert(key)
        lock.unlock()
        // Whatever happens, the waiters are woken to find the value or make it themselves.
        defer { lock.broadcast() }
        let made: (value: Value, bytes: Int)
        do { made = try make() } catch {
            _ = lock.withLock { inFlight.remove(key) }
            throw error
        }
        lock.withLock {
            inFlight.remove(key)
            missCount += 1
            guard entries[key] == nil, made.bytes <= maxBytes else { return }
            entries[key] = made
            order.append(key)
            heldBytes += made.bytes
            while order.count > maxEntries || heldBytes > maxBytes {
                let old = order.removeFirst()
                heldBytes -= entries.removeValue(forKey: old)?.bytes ?? 0
            }
        }
        return made.value
    }
}
