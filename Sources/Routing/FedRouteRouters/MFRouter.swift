import FedRouteData
import FedRouteNumerics

/// The matrix-factorisation router (the EmbedLLM / RouteLLM "mf" family):
///
///     score(x, m) = σ(⟨W x + w₀, e_m⟩ + b_m)        normalised cost(x, m) = ⟨W x + w₀, g_m⟩ + c_m
///
/// `W` (rank × features) embeds a query, `e_m` and `g_m` embed model m, `b_m` starts at the model's
/// prior (its mean training score, `MLPNetwork.setScorePriors`). Every observed (query, model) cell
/// trains the shared projection `W`, so one label per query still teaches every model's embedding
/// something about the query space — the reason this family suits sparse logs. Weight decay pulls
/// `W`, `e` and `g` towards zero, that is, every prediction towards the per-model prior.
///
/// The network is an `MLPNetwork` with one `TrunkKind.linear` trunk layer of width `rank`: the
/// bilinear form above is exactly that network, so the MF-Router trains, federates (FedAvg over W,
/// e, b, g, c, with FedProx, FedAdam, DP-FedAvg and secure aggregation), checkpoints and
/// personalises through the same code as the MLP-Router.
public struct MFRouter: Router, Equatable {
    /// The bilinear network with its cost normaliser and models.
    public let factorization: MLPRouter

    public init(_ factorization: MLPRouter) throws {
        let a = factorization.network.architecture
        guard a.trunk == .linear, a.trunkLayers == 1 else {
            throw RouterError.invalidConfiguration("an MF-Router has one linear projection layer, not \(a.trunkLayers) \(a.trunk.rawValue) trunk layers")
        }
        self.factorization = factorization
    }

    /// The dimension of the query and model embeddings.
    public var rank: Int { factorization.network.architecture.hiddenDimension }
    public var models: [String] { factorization.models }
    public var inputDimension: Int { factorization.inputDimension }

    public func predict(features: Matrix) throws -> RouterPredictions {
        try factorization.predict(features: features)
    }

    /// The training settings of an MF-Router of `rank` from MLP-style settings: one linear layer,
    /// no dropout; the rest (epochs, batch, optimiser, clipping, seed) as given.
    public static func settings(_ base: MLPTrainingConfiguration) -> MLPTrainingConfiguration {
        var c = base
        c.trunk = .linear
        c.trunkLayers = 1
        c.dropout = 0
        return c
    }
}
