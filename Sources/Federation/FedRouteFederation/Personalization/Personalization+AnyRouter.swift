import FedRouteData
import FedRouteNumerics
import FedRouteRouters

extension Personalization {
    /// How a client fine-tunes a federated router on its own data.
    public struct FineTuning: Sendable, Codable, Equatable {
        /// MLP: the federation's local training settings, usually with fewer epochs.
        public var mlp: LocalTrainingSettings
        /// MLP: the seed of the fine-tuning batches and dropout.
        public var seed: UInt64
        /// K-Means: pseudo-observations of the global cell mean.
        public var kmeansPriorStrength: Double

        public init(mlp: LocalTrainingSettings = LocalTrainingSettings(), seed: UInt64 = 0, kmeansPriorStrength: Double = 1) {
            self.mlp = mlp
            self.seed = seed
            self.kmeansPriorStrength = kmeansPriorStrength
        }
    }

    /// Fine-tunes a router of any federated family on local data: the "fine-tuned" personalisation
    /// of the simulation and of `fedroute client --personalize`.
    public static func fineTune(_ router: AnyRouter, features: Matrix, table: EvaluationTable, settings: FineTuning) throws -> AnyRouter {
        if let r = router.as(MLPRouter.self) {
            return AnyRouter(try fineTune(r, features: features, table: table, settings: settings.mlp, seed: settings.seed))
        }
        if let r = router.as(KMeansRouter.self) {
            return AnyRouter(try fineTune(r, features: features, table: table, priorStrength: settings.kmeansPriorStrength))
        }
        throw FederationError.invalidConfiguration("a \(router.family.rawValue) router cannot be personalised")
    }
}
