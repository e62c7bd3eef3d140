import FedRouteRouters

/// Settings of the two-pass federated K-Means-Router.
public struct FederatedKMeansConfiguration: Sendable, Codable, Equatable {
    public var localClusters = 15
    public var globalClusters = 20
    public var restarts = 4
    public var maxIterations = 100
    public var initialization = KMeansConfiguration.Initialization.kMeansPlusPlus
    public var seed: UInt64 = 0
    /// Global cluster counts to average or choose from (nil or empty: `globalClusters` only). Pass 1
    /// runs once; each candidate costs one global k-means on the pooled centres and one pass 2
    /// (and, with validation rows, one validation request).
    public var clusterCandidates: [Int]?
    /// What to do with `clusterCandidates` (nil: `.average`, every count kept and their estimates
    /// averaged; `.nested`: every count kept, finer cells shrunk towards the coarser estimate;
    /// `.select`: the count with the lowest summed validation Brier score, which needs the
    /// clients' validation rows).
    public var clusterPolicy: ClusterCountPolicy?

    public init() {}

    /// The k-means settings for one run with `clusters` centres.
    public func kmeans(clusters: Int, seed: UInt64) -> KMeansConfiguration {
        var c = KMeansConfiguration(clusters: clusters)
        c.restarts = restarts; c.maxIterations = maxIterations; c.initialization = initialization; c.seed = seed
        return c
    }
}
