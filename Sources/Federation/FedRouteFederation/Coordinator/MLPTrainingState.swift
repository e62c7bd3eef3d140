import FedRouteNumerics

/// Everything needed to resume federated MLP training after the last completed round.
public struct MLPTrainingState: Sendable, Codable {
    public var completedRounds: Int
    public var parameters: [Tensor]
    public var server: FederatedOptimizerState
    public var reports: [RoundReport]
    public var accountant: PrivacyAccountant?
    /// With best-round selection: the round whose global model had the lowest validation Brier
    /// score so far, that score and its parameters (absent in older checkpoints).
    public var best: BestRound?
}

/// The best global model so far by the clients' summed validation Brier score.
public struct BestRound: Sendable, Codable, Equatable {
    public var round: Int
    public var brier: Double
    public var parameters: [Tensor]
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
        if let best {
            guard (1...max(1, completedRounds)).contains(best.round), best.brier.isFinite, best.brier >= 0,
                  best.parameters.count == expected.count,
                  zip(best.parameters, expected).allSatisfy({ $0.name == $1.name && $0.shape == $1.shape && $0.values.count == $1.values.count }),
                  best.parameters.allSatisfy({ $0.values.allSatisfy(\.isFinite) }) else {
                throw .checkpoint("the checkpoint's best round (\(best.round), Brier \(best.brier)) does not fit its rounds or this architecture")
            }
        }
    }
}
