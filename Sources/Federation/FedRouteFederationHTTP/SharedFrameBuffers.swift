import FedRouteNumerics
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat

/// Network buffers of the arrays a `TensorFrameCache` holds, one buffer an array, so that a frame sent to many
/// peers (the round's global model, in every sampled client's task) takes its arrays from one buffer instead of
/// a copy for each peer: a `ByteBuffer` shares its storage, so every response sends the same bytes.
///
/// An entry is found by the identity of the cache's `Data` (its address and size) and keeps that `Data` alive,
/// so the address cannot be reused for other bytes while the entry lives (the same rule as `TensorFrameCache`).
/// At most `maxEntries` buffers and `maxBytes` bytes are kept; the oldest go first. Safe to use from several
/// threads.
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

    struct State {
        var entries: [Key: Entry] = [:]
        var order: [Key] = []
        var heldBytes = 0
        var copies = 0
    }

    let maxEntries: Int
    let maxBytes: Int
    private let state = NIOLockedValueBox(State())

    init(maxEntries: Int = 256, maxBytes: Int = 1 << 30) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(0, maxBytes)
    }

    /// Buffers made (each one copy of its `Data`) so far; a frame that finds its arrays here makes none.
    var copies: Int { state.withLockedValue { $0.copies } }

    /// A buffer holding `data`'s bytes: the kept one for this `Data`, or a new copy, kept for next time. Arrays
    /// below `TensorFrames.minSharedBytes` are copied each time (the cache does not hold them either).
    func buffer(for data: Data) -> ByteBuffer {
        guard data.count >= TensorFrames.minSharedBytes else { return ByteBuffer(data: data) }
        let key = data.withUnsafeBytes { Key(address: UInt(bitPattern: $0.baseAddress), count: $0.count) }
        if let hit = state.withLockedValue({ $0.entries[key]?.buffer }) { return hit }
        let buffer = ByteBuffer(data: data)
        state.withLockedValue { s in
            s.copies += 1
            guard s.entries[key] == nil, data.count <= maxBytes else { return }
            s.entries[key] = Entry(source: data, buffer: buffer)
            s.order.append(key)
            s.heldBytes += data.count
            while s.order.count > maxEntries || s.heldBytes > maxBytes {
                let old = s.order.removeFirst()
                s.heldBytes -= s.entries.removeValue(forKey: old)?.source.count ?? 0
            }
        }
        return buffer
    }
}
