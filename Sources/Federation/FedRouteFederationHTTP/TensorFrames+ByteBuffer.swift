import FedRouteNumerics
import Foundation
import NIOCore

extension TensorFrames {
    /// `value` as a frame written straight into a network buffer (sized once, the arrays copied from their
    /// values), so that a multi-megabyte request or response is not built in a `Data` and copied again.
    static func encode<T: Encodable>(_ value: T, with encoder: JSONEncoder, options: Options = Options()) throws -> ByteBuffer {
        var out = ByteBuffer()
        try encode(value, with: encoder, options: options, reserve: { out.reserveCapacity($0) }, append: { out.writeBytes($0) })
        return out
    }

    /// `value` as a frame in pieces to be sent in order: the arrays `options.cache` holds as the buffers `shared`
    /// keeps for them (the same storage in every frame that carries them), everything else copied into
    /// buffers between them. The pieces' bytes are `encode`'s.
    static func encodePieces<T: Encodable>(_ value: T, with encoder: JSONEncoder, options: Options, shared: SharedFrameBuffers) throws -> [ByteBuffer] {
        var pieces: [ByteBuffer] = []
        var current = ByteBuffer()
        try encode(value, with: encoder, options: options, reserve: { current.reserveCapacity($0) }, append: { current.writeBytes($0) },
                   appendCached: { data in
                       if current.readableBytes > 0 {
                           pieces.append(current)
                           current = ByteBuffer()
                       }
                       pieces.append(shared.buffer(for: data))
                   })
        if current.readableBytes > 0 || pieces.isEmpty { pieces.append(current) }
        return pieces
    }
}
