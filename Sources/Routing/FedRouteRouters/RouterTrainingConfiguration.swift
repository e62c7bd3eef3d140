import FedRouteData
import FedRouteNumerics

/// The hyper-parameters of every router family, as `fedroute train` and the demo take them.
/// A family reads its own part in `StorableRouter.train`.
public struct RouterTrainingConfiguration: Sendable, Codable, Equatable {
    public var mlp = MLPTrainingConfiguration()
    /// The number of clusters, restarts, initialisation and iterations (the seed is set per run).
    public var kmeans = KMeansConfiguration(clusters: 20)
    /// Neighbours of the kNN-Router.
    public var knnNeighbors = 25
    /// The MF-Router: `hiddenDimension` is its rank; its trunk is always one linear layer.
    public var mf = MLPTrainingConfiguration.matrixFactorization
    /// With held-out rows (`train --safe`): the MLP and MF return their best epoch by Brier score.
    public var selectBestEpoch: Bool?
    /// K-Means: cluster counts to average (`ClusterCountPolicy.average`, the default) or, with
    /// held-out rows, to choose one from (`.select`). kNN: with held-out rows, the k to choose from.
    public var kmeansCandidates: [Int]?
    /// What K-Means does with `kmeansCandidates` (nil: `.average`; `.nested` keeps them all too).
    public var kmeansPolicy: ClusterCountPolicy?
    /// Whether K-Means and kNN add the held-out rows to their statistics once they selected on them
    /// (nil: true). `trainSafe` turns it off for the router its gate is calibrated on.
    public var poolHeldOutRows: Bool?
    public var knnCandidates: [Int]?

    public init() {}

    /// Trains a router of `family`; with `validation`, selecting on it as the settings above ask.
    public func train(_ family: RouterFamily, features: Matrix, table: EvaluationTable, seed: UInt64,
                      validation: ModelSelection.Validation? = nil, progress: ProgressHandler? = nil) throws -> AnyRouter {
        try AnyRouter(family.implementation.train(features: features, table: table, configuration: self, seed: seed,
                                                  validation: validation, progress: progress))
    }
}
