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

    public init() {}

    /// Trains a router of `family`.
    public func train(_ family: RouterFamily, features: Matrix, table: EvaluationTable, seed: UInt64,
                      progress: ProgressHandler? = nil) throws -> AnyRouter {
        try AnyRouter(family.implementation.train(features: features, table: table, configuration: self, seed: seed, progress: progress))
    }
}
