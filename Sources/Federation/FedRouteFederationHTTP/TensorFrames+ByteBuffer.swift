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
}
