import Foundation
import FedRouteNumerics

/// Compression of the arrays in tensor frames, negotiated per peer.
///
/// A client lists the codecs it reads in `x-fedroute-frame-codecs` on every request; the coordinator
/// compresses a task's arrays only with its configured codec and only for a client that listed it, and
/// names that codec in the same header on its answers, after which the client compresses its replies
/// with it too. Either side may say `none`. Compression is lossless and pays on slow links: on loopback
/// or a LAN the deflate time costs more than the bytes it saves (see the README's performance section).
public enum FrameCompression: String, Sendable, Codable, CaseIterable {
    case none
    /// `ShuffleDeflateCodec`: byte planes, then deflate (Huffman coding only).
    case shuffleDeflate = "shuffle-deflate"

    /// The codec, nil for `none`.
    public var codec: (any TensorFrameCodec)? {
        switch self {
        case .none: return nil
        case .shuffleDeflate: return ShuffleDeflateCodec()
        }
    }

    /// Every codec this version reads.
    public static var readable: [any TensorFrameCodec] { allCases.compactMap(\.codec) }

    /// The codec names listed in a header value (comma separated, spaces ignored).
    public static func names(in header: String?) -> Set<String> {
        Set((header ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }
}
