import FedRouteNumerics

/// One clustering of a K-Means-Router: its centres and the per-(cluster, model) statistics of the
/// training queries nearest to each.
public struct KMeansResolution: Sendable, Equatable, Codable {
    public var centroids: Matrix
    public var statistics: ClusterStatistics

    public init(centroids: Matrix, statistics: ClusterStatistics) {
        self.centroids = centroids
        self.statistics = statistics
    }

    /// The number of clusters.
    public var clusters: Int { centroids.rows }
}

/// What a K-Means-Router does with several candidate cluster counts.
public enum ClusterCountPolicy: String, Sendable, Codable, CaseIterable {
    /// Keep every candidate and average their estimates (the default): no choice to get wrong.
    ///
    /// Which count routes best is hard to tell from held-out rows with one graded model per query:
    /// the Brier score favours fine clusterings (they track query difficulty, which every model
    /// shares and no routing choice depends on), and a utility estimate is too noisy to separate
    /// counts. Averaging coarse and fine clusterings is a shrinkage of its own — a fine cell's
    /// noisy estimate is pulled towards the coarser cells around it — and lowers the router's
    /// variance without picking.
    case average
    /// Keep the one candidate with the lowest Brier score on the held-out rows.
    case select
    /// Keep every candidate; each clustering's cells shrink towards the coarser clusterings'
    /// estimate by as much as the data say they differ from it (`KMeansCombination.nested`), so
    /// coarse counts weigh where fine cells are thin and fall silent where fine cells are full.
    case nested

    /// How the router kept by this policy combines its clusterings.
    public var combination: KMeansCombination { self == .nested ? .nested : .average }
}
