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
/// waiting for it (as a round starts, every sampled client's poll asks for the same new model): a `ReuseCache`.
public final class TensorFrameCache: Sendable {
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

    /// At most this many arrays are kept.
    public var maxEntries: Int { store.maxEntries }
    /// At most this many encoded bytes are kept.
    public var maxBytes: Int { store.maxBytes }
    private let store: ReuseCache<Key, Entry>

    public init(maxEntries: Int = 256, maxBytes: Int = 1 << 30) {
        store = ReuseCache(maxEntries: maxEntries, maxBytes: maxBytes)
    }

    /// Arrays served from the cache and arrays encoded (and then kept) so far.
    public var counts: (hits: Int, misses: Int) { store.counts }

    /// The kept encoding of `values` under `codec`, or the one `make` produces, kept for next time.
    func blob<T: BitwiseCopyable & Sendable>(for values: [T], codec: UInt8, _ make: () throws -> TensorFrames.Blob) rethrows -> TensorFrames.Blob {
        let key = values.withUnsafeBytes { Key(address: UInt(bitPattern: $0.baseAddress), bytes: $0.count, codec: codec) }
        return try store.value(for: key) {
            let blob = try make()
            return (Entry(source: values, blob: blob), blob.stored.count)
        }.blob
    }
}
