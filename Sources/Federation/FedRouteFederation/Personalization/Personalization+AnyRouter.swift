import FedRouteData
import FedRouteNumerics
import FedRouteRouters

extension Personalization {
    /// How a client fine-tunes a federated router on its own data.
    public struct FineTuning: Sendable, Codable, Equatable {
        /// MLP and MF: the federation's local training settings, usually with fewer epochs.
        public var mlp: LocalTrainingSettings
        /// MLP and MF: the seed of the fine-tuning batches and dropout.
        public var seed: UInt64
        /// K-Means: pseudo-observations of the global cell mean.
        public var kmeansPriorStrength: Double
        /// MF: its own local settings when the federation sent them (nil: `mlp`'s).
        public var mf: LocalTrainingSettings?

        public init(mlp: LocalTrainingSettings = LocalTrainingSettings(), seed: UInt64 = 0, kmeansPriorStrength: Double = 1,
                    mf: LocalTrainingSettings? = nil) {
            self.mlp = mlp
            self.mf = mf
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
        if let r = router.as(MFRouter.self) {
            return AnyRouter(try MFRouter(fineTune(r.factorization, features: features, table: table, settings: settings.mf ?? settings.mlp, seed: settings.seed)))
        }
        if let r = router.as(KMeansRouter.self) {
            return AnyRouter(try fineTune(r, features: features, table: table, priorStrength: settings.kmeansPriorStrength))
        }
        throw FederationError.invalidConfiguration("a \(router.family.rawValue) router cannot be personalised")
    }
}
