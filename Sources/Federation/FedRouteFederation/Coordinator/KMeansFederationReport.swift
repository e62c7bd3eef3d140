/// What happened in federated k-means.
public struct KMeansFederationReport: Sendable, Codable, Equatable {
    public var localCentroids: [String: Int]
    public var withheldClusters: Int
    public var globalClusters: Int
    public var inertia: Double
    public var rejected: [String: String]
    /// With cluster-count selection: each candidate count's validation Brier score.
    public var validationBrier: [String: Double]?
}
