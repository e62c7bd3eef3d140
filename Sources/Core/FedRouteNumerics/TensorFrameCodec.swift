import Foundation

/// A lossless transform of one array of a tensor frame (compression), applied when the frame is written and
/// undone when it is read. The frame records the codec's `id`, so a reader knows which codec to ask.
///
/// Implementations live beside the transport that negotiates them (the federation's is a byte-plane shuffle
/// plus deflate, in FedRouteFederationHTTP); this module only defines the seam and the frame layout.
public protocol TensorFrameCodec: Sendable {
    /// The codec's number in a frame's array table (1…255; 0 means the array is stored as it is).
    var id: UInt8 { get }
    /// The codec's name in negotiation headers and logs.
    var name: String { get }
    /// The most bytes one stored byte can decode to (deflate: 1,032); a frame declaring more is refused
    /// before anything is allocated, so a small hostile body cannot claim a large decoded size.
    var maxExpansion: Int { get }
    /// The encoded form of `bytes`, an array of `width`-byte little-endian values; nil when encoding would
    /// not make it smaller (the array is then stored as it is).
    func encode(_ bytes: UnsafeRawBufferPointer, width: Int) throws -> Data?
    /// Exactly `count` bytes decoded from `bytes`; throws when the input is corrupt or does not decode to
    /// exactly `count` bytes (never allocates more than `count` bytes for the output).
    func decode(_ bytes: UnsafeRawBufferPointer, width: Int, count: Int) throws -> Data
}
