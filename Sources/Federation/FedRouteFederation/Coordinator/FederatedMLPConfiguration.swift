import FedRouteNumerics
import FedRouteRouters

/// Settings of federated MLP-Router training (FedAvg / FedProx / FedAdam); with a `linear` trunk,
/// of the MF-Router (`MFRouter`), whose `hiddenDimension` is its rank.
public struct FederatedMLPConfiguration: Sendable, Codable, Equatable {
    public var rounds = 5
    /// Fraction of clients sampled per round (at least `minimumClients`).
    public var participation = 0.6
    public var minimumClients = 1
    public var local = LocalTrainingSettings()
    public var server = FederatedOptimizer.plain
    public var hiddenDimension = 512
    public var trunkLayers = 2
    public var dropout: Float = 0.1
    /// nil (files written before the MF-Router) or `gelu`: the MLP-Router; `linear`: the MF-Router.
    public var trunk: TrunkKind?
    public var seed: UInt64 = 0
    /// DP-FedAvg: client-side clipping and Gaussian noise, with an (ε, δ) accountant (nil = off).
    public var privacy: DifferentialPrivacy?
    /// Pairwise-masked secure aggregation of the updates (the coordinator sees only their sum).
    public var secureAggregation = false
    /// Updates (or, under secure aggregation, the mean update) with a larger L2 norm are rejected.
    public var maxUpdateNorm = 1_000.0
    /// Secure aggregation in 32-bit words (`SecureWords32`) when every listed client declares them and the round has
    /// no differential privacy (nil or true; false keeps the 64-bit ring).
    public var secureRing32: Bool?
    /// The bound every coordinate of a client's update and its loss must be under in a 32-bit round (nil:
    /// `SecureWords32.defaultBound`; the smaller of it and `maxUpdateNorm` is used). It sets the precision: 2^-28 a
    /// word at the default 8. A client whose update reaches it declines the round and is dropped by name.
    public var secureWordBound: Double?
    /// Best-round selection: after every round the clients score the global model on their
    /// held-out rows, and training returns the round with the lowest summed Brier score (nil or
    /// false: the last round, as before).
    public var selectBestRound: Bool?

    public init() {}

    /// The MF-Router's federated defaults: rank 64, one linear layer, no dropout, the local
    /// optimiser of `MLPTrainingConfiguration.matrixFactorization`.
    public static var matrixFactorization: FederatedMLPConfiguration {
        let central = MLPTrainingConfiguration.matrixFactorization
        return FederatedMLPConfiguration().matrixFactorization(rank: central.hiddenDimension, optimizer: central.optimizer)
    }

    /// An MF-Router federation with these rounds, sampling, local epochs, batch, clipping, FedProx μ,
    /// server optimiser, privacy and seed: one linear layer of width `rank`, no dropout, local AdamW
    /// with `optimizer`.
    public func matrixFactorization(rank: Int, optimizer: AdamWConfiguration) -> FederatedMLPConfiguration {
        var c = self
        c.trunk = .linear
        c.trunkLayers = 1
        c.dropout = 0
        c.hiddenDimension = rank
        c.local.optimizer = optimizer
        return c
    }

    /// The network these settings train.
    public func architecture(inputDimension: Int, modelCount: Int) -> MLPArchitecture {
        MLPArchitecture(inputDimension: inputDimension, hiddenDimension: hiddenDimension, trunkLayers: trunkLayers,
                        modelCount: modelCount, dropout: dropout, trunk: trunk ?? .gelu)
    }

    func validate() throws {
        try privacy?.validate()
        guard maxUpdateNorm > 0 else { throw FederationError.invalidConfiguration("the update norm limit must be > 0") }
        if let b = secureWordBound, SecureWords32(bound: b, totalWeight: 1) == nil {
            throw FederationError.invalidConfiguration("the 32-bit secure word bound must be > 0 and at most 2^18, not \(b)")
        }
        guard rounds >= 0, (0...1).contains(participation), participation > 0, minimumClients >= 1,
              hiddenDimension >= 1, trunkLayers >= 1, (0..<1).contains(dropout), local.epochs >= 0, local.batchSize >= 1
        else { throw FederationError.invalidConfiguration("rounds ≥ 0, participation in (0, 1], minimum clients ≥ 1, hidden ≥ 1, layers ≥ 1, dropout in [0, 1), epochs ≥ 0, batch ≥ 1 required") }
        if let problem = local.optimizer.problem { throw FederationError.invalidConfiguration("local training: \(problem)") }
        guard local.proximalMu.isFinite, local.proximalMu >= 0 else {
            throw FederationError.invalidConfiguration("the FedProx μ must be a finite number ≥ 0, not \(local.proximalMu)")
        }
        guard local.distillationWeight.isFinite, local.distillationWeight >= 0, local.gradientClip.isFinite else {
            throw FederationError.invalidConfiguration("the distillation weight must be ≥ 0 and the gradient clip finite")
        }
    }

    /// `validate()`, and a minimum of valid updates per round that `clients` clients can reach.
    public func validate(clients: Int) throws {
        try validate()
        guard minimumClients <= clients else {
            throw FederationError.invalidConfiguration("the minimum of \(minimumClients) valid updates per round exceeds the \(clients) clients")
        }
    }

    /// The centralized (pooled) MLP training run that matches these settings: the same network,
    /// optimiser, batch size, clipping and seed, for `epochs` epochs. The simulation's centralized
    /// and client-local baselines train with it.
    public func centralizedEquivalent(epochs: Int) -> MLPTrainingConfiguration {
        var c = MLPTrainingConfiguration()
        c.epochs = epochs
        c.batchSize = local.batchSize
        c.hiddenDimension = hiddenDimension
        c.trunkLayers = trunkLayers
        c.dropout = dropout
        c.optimizer = local.optimizer
        c.gradientClip = local.gradientClip
        c.seed = seed
        c.trunk = trunk ?? .gelu
        return c
    }
}
