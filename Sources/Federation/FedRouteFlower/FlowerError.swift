/// What went wrong talking to a Flower SuperLink or reading what it sent; the message names what and where.
public enum FlowerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A `.npy` array that cannot be read (truncated, unsupported dtype, shape and length disagree).
    case array(String)
    /// An object of the content-addressed store that is malformed or whose hash is wrong.
    case object(id: String, String)
    /// A message whose content does not match what its type needs.
    case message(String)
    /// The SuperLink answered an RPC with an error status or an unreadable body.
    case rpc(String, status: Int, String)
    /// A configuration or command-line setting that cannot work.
    case configuration(String)
    /// The ServerApp side of the bridge sent something out of protocol.
    case bridge(String)

    public var description: String {
        switch self {
        case .array(let why): "npy array: \(why)"
        case .object(let id, let why): "Flower object \(id.prefix(16)): \(why)"
        case .message(let why): "Flower message: \(why)"
        case .rpc(let rpc, let status, let why): "Flower Fleet API \(rpc): HTTP \(status): \(why)"
        case .configuration(let why): "Flower configuration: \(why)"
        case .bridge(let why): "Flower bridge: \(why)"
        }
    }
}
