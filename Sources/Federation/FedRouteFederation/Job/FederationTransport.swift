import Foundation

/// How a `FederationJob` reaches its clients — the seam a transport implements.
///
/// The federated algorithms speak only `FederatedClient`; a transport hands them one per enrolled
/// client and adds what a long-running job needs around them: who is reachable, the bytes moved,
/// the state that must survive a restart, and the end of training. `InProcessTransport` (beside
/// this file) runs clients in this process; `FedRouteFederationHTTP` implements it over HTTP/2 + TLS.
public protocol FederationTransport: Sendable {
    /// The enrolled clients' ids, in the fixed order in which replies are combined.
    var clientIDs: [String] { get }

    /// At most this many requests are in flight at once (1 keeps in-process runs bit-reproducible).
    var maxConcurrentRequests: Int { get }

    /// One `FederatedClient` per id of `clientIDs`, in that order; a request that gets no reply
    /// within `deadline` fails (and fails only that client's part of the step).
    func clients(deadline: Duration) -> [any FederatedClient]

    /// Waits until at least `count` clients are reachable; throws `FederationError.notEnoughClients`
    /// when `timeout` passes first.
    func waitForClients(_ count: Int, timeout: Duration) async throws

    /// Waits up to `timeout` for every client; returns how many are reachable (not an error when
    /// some are not: the caller settles for whoever came).
    func waitForEveryClient(upTo timeout: Duration) async throws -> Int

    /// Clients reachable now.
    func onlineCount() async -> Int

    /// Body bytes received from and sent to clients so far (0 where nothing is serialised).
    func traffic() async -> TransportTraffic

    /// A resumed job's encoder: clients that come back get it again before any training request.
    func adoptEncoder(_ spec: EncoderSpec) async throws

    /// Transport state a checkpoint keeps (the last accepted nonce per client, where requests are
    /// signed), so that a restart does not reopen replays.
    func replayState() async -> [String: UInt64]

    /// Training is over: hand the clients the routers and the federation's fine-tuning settings.
    func finish(_ outcome: FederationOutcome) async
}

/// Bytes moved by a transport.
public struct TransportTraffic: Sendable, Equatable {
    public var bytesIn: Int
    public var bytesOut: Int

    public init(bytesIn: Int = 0, bytesOut: Int = 0) {
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }
}

/// What every client receives when training is over.
public struct FederationOutcome: Sendable, Codable, Equatable {
    /// Router files (safetensors bytes) by family.
    public var routers: [String: Data]
    /// The federation's local MLP training settings, which client-side fine-tuning starts from.
    public var fineTuning: LocalTrainingSettings
    /// The MF-Router's local settings, for fine-tuning it (nil when the federation trained none).
    public var mfFineTuning: LocalTrainingSettings?

    public init(routers: [String: Data] = [:], fineTuning: LocalTrainingSettings = LocalTrainingSettings(), mfFineTuning: LocalTrainingSettings? = nil) {
        self.mfFineTuning = mfFineTuning
        self.routers = routers
        self.fineTuning = fineTuning
    }
}
