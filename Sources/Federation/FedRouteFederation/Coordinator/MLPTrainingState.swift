import FedRouteNumerics

/// Everything needed to resume federated MLP training after the last completed round.
public struct MLPTrainingState: Sendable, Codable {
    public var completedRounds: Int
    public var parameters: [Tensor]
    public var server: FederatedOptimizerState
    public var reports: [RoundReport]
    public var accountant: PrivacyAccountant?
}

extension MLPTrainingState {
    /// Checks that this (checkpointed) state can resume training of a network with `parameters` under
    /// `configuration`: the same tensors by name and shape, finite values, a round count within the
    /// configuration's rounds with one report each, and optimiser and privacy state that fit.
    /// A tampered or damaged checkpoint is refused here with its reason instead of trapping later.
    public func checkResumable(parameters expected: [Tensor], configuration: FederatedMLPConfiguration) throws(FederationError) {
        guard parameters.count == expected.count,
              zip(parameters, expected).allSatisfy({ $0.name == $1.name && $0.shape == $1.shape && $0.values.count == $1.values.count }) else {
            throw .checkpoint("the checkpoint's MLP parameters \(parameters.prefix(8).map { "\($0.name)\($0.shape)" }) do not fit this architecture")
        }
        if let bad = parameters.first(where: { !$0.values.allSatisfy(\.isFinite) }) {
            throw .checkpoint("the checkpoint's MLP parameter \(bad.name) holds NaN or infinity")
        }
        guard (0...max(0, configuration.rounds)).contains(completedRounds), reports.count == completedRounds else {
            throw .checkpoint("the checkpoint records \(completedRounds) completed MLP rounds and \(reports.count) round reports; this configuration runs 0…\(configuration.rounds)")
        }
        guard server.optimizer == configuration.server, server.fits(shapes: expected.map(\.count)) else {
            throw .checkpoint("the checkpoint's server optimiser state does not fit this optimiser (\(configuration.server)) and model")
        }
        guard (accountant == nil) == (configuration.privacy == nil), accountant?.isConsistent ?? true else {
            throw .checkpoint("the checkpoint's privacy accountant does not fit this configuration")
        }
    }
}
