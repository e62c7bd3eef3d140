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
/// threads; a buffer asked for by several at once is made once, the others waiting for it (a `ReuseCache`).
final class SharedFrameBuffers: Sendable {
    struct Key: Hashable {
        let address: UInt
        let count: Int
    }

    struct Entry {
        /// The cache's bytes, kept so that `Key.address` stays theirs.
        let source: Data
        let buffer: ByteBuffer
    }

    private let store: ReuseCache<Key, Entry>

    init(maxEntries: Int = 256, maxBytes: Int = 1 << 30) {
        store = ReuseCache(maxEntries: maxEntries, maxBytes: maxBytes)
    }

    /// Buffers made (each one copy of its `Data`) so far; a frame that finds its arrays here makes none.
    var copies: Int { store.counts.misses }

    /// A buffer holding `data`'s bytes: the kept one for this `Data`, or a new copy (split over the cores), kept for
    /// next time. Arrays below `TensorFrames.minSharedBytes` are copied each time (the cache does not hold them either).
    func buffer(for data: Data) -> ByteBuffer {
        guard data.count >= TensorFrames.minSharedBytes else { return ByteBuffer(data: data) }
        let key = data.withUnsafeBytes { Key(address: UInt(bitPattern: $0.baseAddress), count: $0.count) }
        return store.value(for: key) {
            var buffer = ByteBufferAllocator().buffer(capacity: data.count)
            data.withUnsafeBytes { source in
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: source.count) { RowParallel.copy(source, to: $0); return source.count }
            }
            return (Entry(source: data, buffer: buffer), data.count)
        }.buffer
    }
}
