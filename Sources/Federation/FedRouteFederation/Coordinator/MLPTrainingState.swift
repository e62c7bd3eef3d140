import FedRouteNumerics

/// Everything needed to resume federated MLP training after the last completed round.
public struct MLPTrainingState: Sendable, Codable {
    public var completedRounds: Int
    public var parameters: [Tensor]
    public var server: FederatedOptimizerState
    public var reports: [RoundReport]
    public var accountant: PrivacyAccountant?
}
