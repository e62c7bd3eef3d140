import FedRouteRouters

/// What a job keeps on disk to resume: written atomically after setup, every round and every family.
public struct FederationJobState: Sendable, Codable {
    public struct Setup: Sendable, Codable {
        public var encoder: EncoderSpec
        public var descriptions: [ClientDescription]
        public var normalizer: CostNormalizer
    }

    public var setup: Setup?
    public var mlp: MLPTrainingState?
    public var finishedFamilies: [String] = []
    /// The transport's replay state (last nonce accepted from each client), so a restart does not reopen replays.
    public var nonces: [String: UInt64] = [:]
    public var restarts = 0
    /// Per completed round: wire bytes in/out and seconds.
    public var roundTraffic: [RoundTraffic] = []
    public var validationAUC: [String: Double] = [:]

    public init() {}
}

/// One completed round's traffic, time and validation AUC.
public struct RoundTraffic: Sendable, Codable, Equatable {
    public var round: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var seconds: Double
    public var validationAUC: Double?
}
