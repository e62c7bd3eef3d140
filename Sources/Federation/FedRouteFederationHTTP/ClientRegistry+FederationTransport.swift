import FedRouteFederation

/// The registry is the HTTP transport of a `FederationJob`: its clients are `RemoteClient`s whose
/// requests wait in the mailboxes until the client processes poll for them.
extension ClientRegistry: FederationTransport {
    /// Every client may have a request in flight: they train in parallel in their own processes.
    public nonisolated var maxConcurrentRequests: Int { clientIDs.count }

    public nonisolated func clients(deadline: Duration) -> [any FederatedClient] {
        clientIDs.map { RemoteClient(id: $0, registry: self, deadline: deadline) }
    }

    public func waitForClients(_ count: Int, timeout: Duration) async throws {
        try await waitForClients(count, ids: nil, timeout: timeout)
    }

    public func onlineCount() async -> Int { online }

    public func traffic() async -> TransportTraffic { TransportTraffic(bytesIn: bytesIn, bytesOut: bytesOut) }

    public func replayState() async -> [String: UInt64] { nonces }
}
