/// What happened in federated k-means.
public struct KMeansFederationReport: Sendable, Codable, Equatable {
    public var localCentroids: [String: Int]
    public var withheldClusters: Int
    /// The cluster count (with several clusterings, the first's; see `clusterCounts`).
    public var globalClusters: Int
    /// Every clustering's cluster count (nil in reports written before routers held several).
    public var clusterCounts: [Int]?
    public var inertia: Double
    public var rejected: [String: String]
    /// With cluster-count candidates and validation rows: each candidate count's validation Brier score.
    public var validationBrier: [String: Double]?
}
