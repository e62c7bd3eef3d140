/// Errors of federated training, naming the client involved.
public enum FederationError: Error, CustomStringConvertible, Equatable {
    /// A client's reply does not fit the request (wrong case, shape, round, non-finite values…).
    case invalidReply(client: String, String)
    /// A request a client cannot serve.
    case protocolViolation(client: String, String)
    /// Too few clients answered for the step to go on.
    case notEnoughClients(String)
    case invalidConfiguration(String)
    /// A checkpoint that cannot be read or does not fit the job.
    case checkpoint(String)

    public var description: String {
        switch self {
        case .invalidReply(let c, let why): return "client \(c) sent an invalid reply: \(why)"
        case .protocolViolation(let c, let why): return "client \(c) cannot serve the request: \(why)"
        case .notEnoughClients(let why): return "not enough clients: \(why)"
        case .invalidConfiguration(let why): return "invalid federation configuration: \(why)"
        case .checkpoint(let why): return why
        }
    }
}
