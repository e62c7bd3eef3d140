import FedRouteFederation

/// A client process as the federated algorithms see it: requests go through the registry.
///
/// A client that was restarted since it last featurised its data gets the federation's encoder
/// again before any training request.
public struct RemoteClient: FederatedClient {
    public let id: String
    let registry: ClientRegistry
    let deadline: Duration

    public init(id: String, registry: ClientRegistry, deadline: Duration) {
        self.id = id
        self.registry = registry
        self.deadline = deadline
    }

    public func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        switch request {
        case .trainMLP, .localCentroids, .clusterStatistics, .describe:
            if let spec = await registry.needsEncoder(id) {
                _ = try await registry.dispatch(.useEncoder(spec), to: id, deadline: deadline)
            }
        default: break
        }
        return try await registry.dispatch(request, to: id, deadline: deadline)
    }
}
