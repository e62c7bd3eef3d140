import FedRouteNumerics
import Foundation
import NIOCore
import NIOFoundationCompat

/// Network buffers of the arrays a `TensorFrameCache` holds, one buffer an array, so that a frame sent to many
/// peers (the round's global model, in every sampled client's task) takes its arrays from one buffer instead of
/// a copy for each peer: a `ByteBuffer` shares its storage, so every response sends the same bytes.
///
/// An entry is found by the identity of the cache's `Data` (its address and size) and keeps that `Data` alive,
/// so the address cannot be reused for other bytes while the entry lives (the same rule as `TensorFrameCache`).
/// At most `maxEntries` buffers and `maxBytes` bytes are kept; the oldest go first. Safe to use from several
/// threads; a buffer asked for by several at once is made once (split over the cores), the others waiting for it.
final class SharedFrameBuffers: @unchecked Sendable {
    struct Key: Hashable {
        let address: UInt
        let count: Int
    }

    struct Entry {
        /// The cache's bytes, kept so that `Key.address` stays theirs.
        let source: Data
        let buffer: ByteBuffer
    }

    let maxEntries: Int
    let maxBytes: Int
    private let lock = NSCondition()
    private var entries: [Key: Entry] = [:]
    private var order: [Key] = []
    private var heldBytes = 0
    private var copyCount = 0
    /// Keys whose buffer is being made now, by the caller that missed first.
    private var inFlight: Set<Key> = []

    init(maxEntries: Int = 256, maxBytes: Int = 1 << 30) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(0, maxBytes)
    }

    /// Buffers made (each one copy of its `Data`) so far; a frame that finds its arrays here makes none.
    var copies: Int { lock.withLock { copyCount } }

    /// A buffer holding `data`'s bytes: the kept one for this `Data`, or a new copy, kept for next time. Arrays
    /// below `TensorFrames.minSharedBytes` are copied each time (the cache does not hold them either).
    func buffer(for data: Data) -> ByteBuffer {
        guard data.count >= TensorFrames.minSharedBytes else { return ByteBuffer(data: data) }
        let key = data.withUnsafeBytes { Key(address: UInt(bitPattern: $0.baseAddress), count: $0.count) }
        lock.lock()
        while true {
            if let hit = entries[key]?.buffer {
                lock.unlock()
                return hit
            }
            guard inFlight.contains(key) else { break }
            lock.wait()
        }
        inFlight.insert(key)
        lock.unlock()
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        data.withUnsafeBytes { source in
            _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: source.count) { RowParallel.copy(source, to: $0); return source.count }
        }
        defer { lock.broadcast() }
        lock.withLock {
            inFlight.remove(key)
            copyCount += 1
            guard entries[key] == nil, data.count <= maxBytes else { return }
            entries[key] = Entry(source: data, buffer: buffer)
            order.append(key)
            heldBytes += data.count
            while order.count > maxEntries || heldBytes > maxBytes {
                let old = order.removeFirst()
                heldBytes -= entries.removeValue(forKey: old)?.source.count ?? 0
            }
        }
        return buffer
    }
}
