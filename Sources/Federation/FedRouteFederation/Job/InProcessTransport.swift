import Foundation

/// A transport whose clients live in this process: every client is always reachable, nothing is
/// serialised, and requests go one at a time, so a job over it is bit-reproducible.
public actor InProcessTransport: FederationTransport {
    public nonisolated let clientIDs: [String]
    public nonisolated let maxConcurrentRequests = 1
    nonisolated let members: [any FederatedClient]
    /// What `finish` handed out (nil while training runs).
    public private(set) var outcome: FederationOutcome?

    public init(clients: [any FederatedClient]) {
        members = clients
        clientIDs = clients.map(\.id)
    }

    public nonisolated func clients(deadline: Duration) -> [any FederatedClient] { members }
    public func waitForClients(_ count: Int, timeout: Duration) async throws {
        guard count <= members.count else {
            throw FederationError.notEnoughClients("\(members.count) clients are enrolled, \(count) are required")
        }
    }
    public func waitForEveryClient(upTo timeout: Duration) async throws -> Int { members.count }
    public func onlineCount() async -> Int { members.count }
    public func traffic() async -> TransportTraffic { TransportTraffic() }
    /// Tells every client the encoder again (a resumed job skips the setup that did so).
    public func adoptEncoder(_ spec: EncoderSpec) async throws {
        for client in members { _ = try await client.handle(.useEncoder(spec)) }
    }
    public func replayState() async -> [String: UInt64] { [:] }
    public func finish(_ outcome: FederationOutcome) async { self.outcome = outcome }
}
