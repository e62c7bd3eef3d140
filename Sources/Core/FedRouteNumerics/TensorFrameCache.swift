import Foundation

/// Encoded arrays kept for reuse, so that an array sent to many peers (the round's global model, sent to
/// every sampled client) is turned into frame bytes — and compressed — once, not once per peer.
///
/// An entry is found by the identity of the array's storage: its address and size, looked up while the
/// cache holds a copy of the array. Holding the copy keeps that storage alive (so the address cannot be
/// reused for other values) and unchanged (Swift arrays copy on write, so a holder that mutates gets its
/// own storage). A hit therefore always means the same values, without hashing or comparing them.
///
/// At most `maxEntries` arrays and `maxBytes` encoded bytes are kept; the oldest are dropped first.
/// Safe to use from several threads; an array asked for by several at once is encoded once, the others
/// waiting for it (as a round starts, every sampled client's poll asks for the same new model).
public final class TensorFrameCache: @unchecked Sendable {
    struct Key: Hashable {
        let address: UInt
        let bytes: Int
        let codec: UInt8
    }

    struct Entry {
        /// The array whose storage `Key.address` is (kept alive and unchanged while the entry lives).
        let source: any Sendable
        let blob: TensorFrames.Blob
    }

    public let maxEntries: Int
    public let maxBytes: Int
    private let lock = NSCondition()
    private var entries: [Key: Entry] = [:]
    /// Keys being encoded now, by the caller that missed first.
    private var inFlight: Set<Key> = []
    private var order: [Key] = []
    private var heldBytes = 0
    private var hitCount = 0
    private var missCount = 0

    public init(maxEntries: Int = 256, maxBytes: Int = 1 << 30) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(0, maxBytes)
    }

    /// Arrays served from the cache and arrays encoded (and then kept) so far.
    public var counts: (hits: Int, misses: Int) { lock.withLock { (hitCount, missCount) } }

    /// The kept encoding of `values` under `codec`, or the one `make` produces, kept for next time.
    func blob<T: BitwiseCopyable & Sendable>(for values: [T], codec: UInt8, _ make: () throws -> TensorFrames.Blob) rethrows -> TensorFrames.Blob {
        let key = values.withUnsafeBytes { Key(address: UInt(bitPattern: $0.baseAddress), bytes: $0.count, codec: codec) }
        lock.lock()
        while true {
            if let hit = entries[key] {
                hitCount += 1
                lock.unlock()
                return hit.blob
            }
            guard inFlight.contains(key) else { break }
            // Another caller is encoding these values: its result (or, if it is not kept, a turn to encode).
            lock.wait()
        }
        inFlight.insert(key)
        lock.unlock()
        let blob: TensorFrames.Blob
        do { blob = try make() } catch {
            _ = lock.withLock { inFlight.remove(key) }
            lock.broadcast()
            throw error
        }
        defer { lock.broadcast() }
        lock.withLock {
            inFlight.remove(key)
            missCount += 1
            guard entries[key] == nil, blob.stored.count <= maxBytes else { return }
            entries[key] = Entry(source: values, blob: blob)
            order.append(key)
            heldBytes += blob.stored.count
            while order.count > maxEntries || heldBytes > maxBytes {
                let old = order.removeFirst()
                heldBytes -= entries.removeValue(forKey: old)?.blob.stored.count ?? 0
            }
        }
        return blob
    }
}
