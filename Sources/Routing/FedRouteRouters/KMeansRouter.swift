import FedRouteData
import FedRouteNumerics

/// Additive per-(cluster, model) statistics: count, sum of observed scores and of raw costs.
///
/// Additive so clients can pool them (the federated K-Means-Router sums them across clients).
public struct ClusterStatistics: Sendable, Equatable, Codable {
    public let clusters: Int
    public let models: Int
    public var count: [Double]
    public var scoreSum: [Double]
    public var costSum: [Double]

    public init(clusters: Int, models: Int) {
        self.clusters = clusters
        self.models = models
        count = Array(repeating: 0, count: clusters * models)
        scoreSum = count
        costSum = count
    }

    /// Accumulates the observed cells of `table`, row `r` belonging to cluster `assignments[r]`.
    public mutating func accumulate(table: EvaluationTable, assignments: [Int]) {
        precondition(assignments.count == table.queryCount && table.modelCount == models, "statistics shape mismatch")
        for r in 0..<table.queryCount {
            for m in 0..<models where table.isObserved(r, m) {
                let i = assignments[r] * models + m
                count[i] += 1
                scoreSum[i] += table.scores[table.index(r, m)]
                costSum[i] += table.costs[table.index(r, m)]
            }
        }
    }

    /// Statistics of `table`'s observed cells, each row assigned to its nearest centre.
    public init(centroids: Matrix, features: Matrix, table: EvaluationTable) throws {
        guard features.rows == table.queryCount else {
            throw RouterError.invalidConfiguration("\(features.rows) feature rows for \(table.queryCount) queries")
        }
        guard features.cols == centroids.cols else { throw RouterError.dimensionMismatch(expected: centroids.cols, got: features.cols) }
        guard features.isFinite else { throw RouterError.nonFiniteInput }
        self.init(clusters: centroids.rows, models: table.modelCount)
        if features.rows > 0 { accumulate(table: table, assignments: KMeans.assign(points: features, centroids: centroids).assignments) }
    }

    /// The same statistics with `count` more models (no observations yet).
    public func addingModels(_ count: Int) -> ClusterStatistics {
        var s = ClusterStatistics(clusters: clusters, models: models + count)
        for k in 0..<clusters {
            for m in 0..<models {
                let i = k * models + m, j = k * s.models + m
                s.count[j] = self.count[i]; s.scoreSum[j] = scoreSum[i]; s.costSum[j] = costSum[i]
            }
        }
        return s
    }

    /// True when the arrays match the declared shape and hold finite, non-negative counts.
    public var isValid: Bool {
        let n = clusters * models
        return clusters >= 0 && models >= 0 && count.count == n && scoreSum.count == n && costSum.count == n
            && count.allSatisfy { $0 >= 0 && $0.isFinite } && scoreSum.allSatisfy(\.isFinite) && costSum.allSatisfy(\.isFinite)
    }

    public static func + (a: ClusterStatistics, b: ClusterStatistics) -> ClusterStatistics {
        precondition(a.clusters == b.clusters && a.models == b.models, "statistics shape mismatch")
        var s = a
        for i in s.count.indices { s.count[i] += b.count[i]; s.scoreSum[i] += b.scoreSum[i]; s.costSum[i] += b.costSum[i] }
        return s
    }
}

/// The nonparametric K-Means-Router: nearest cluster centre → per-model mean observed score and cost.
///
/// Scores are shrunk towards each model's global mean (`ScoreShrinkage.empiricalBayes`, the
/// default): a (cluster, model) cell with few observations says little beyond the model's overall
/// quality. With `.none` (routers written before shrinkage) cells hold raw means. Either way a
/// (cluster, model) cell with no observation is unavailable and never chosen, and a cluster with
/// no observation at all falls back to the per-model means over all clusters.
public struct KMeansRouter: Router, Equatable {
    public let models: [String]
    public let centroids: Matrix
    public let statistics: ClusterStatistics
    public let shrinkage: ScoreShrinkage

    public var inputDimension: Int { centroids.cols }

    public init(models: [String], centroids: Matrix, statistics: ClusterStatistics, shrinkage: ScoreShrinkage = .empiricalBayes) throws {
        guard statistics.clusters == centroids.rows, statistics.models == models.count else {
            throw RouterError.invalidConfiguration("statistics are \(statistics.clusters)×\(statistics.models), expected \(centroids.rows)×\(models.count)")
        }
        guard centroids.isFinite, statistics.isValid else { throw RouterError.nonFiniteInput }
        self.models = models
        self.centroids = centroids
        self.statistics = statistics
        self.shrinkage = shrinkage
    }

    /// Clusters the training queries and pools their observed cells per cluster.
    public static func train(features: Matrix, table: EvaluationTable, configuration: KMeansConfiguration,
                             progress: ProgressHandler? = nil) throws -> KMeansRouter {
        guard features.rows == table.queryCount else {
            throw RouterError.invalidConfiguration("\(features.rows) feature rows for \(table.queryCount) queries")
        }
        progress?(TrainingProgress(stage: "k-means", step: 0, total: 1))
        let result = try KMeans.fit(points: features, configuration: configuration)
        var stats = ClusterStatistics(clusters: configuration.clusters, models: table.modelCount)
        stats.accumulate(table: table, assignments: result.assignments)
        progress?(TrainingProgress(stage: "k-means", step: 1, total: 1, loss: result.inertia))
        return try KMeansRouter(models: table.models, centroids: result.centroids, statistics: stats)
    }

    /// Growing the federation: new clients' statistics (on these centres) pooled in.
    public func adding(_ more: ClusterStatistics) throws -> KMeansRouter {
        guard more.clusters == statistics.clusters, more.models == statistics.models, more.isValid else {
            throw RouterError.invalidConfiguration("statistics are \(more.clusters)×\(more.models), the router's \(statistics.clusters)×\(statistics.models)")
        }
        return try KMeansRouter(models: models, centroids: centroids, statistics: statistics + more, shrinkage: shrinkage)
    }

    /// Growing the federation: new models start with no observations (never chosen) until
    /// statistics for them are added.
    public func addingModels(_ names: [String]) throws -> KMeansRouter {
        let clash = names.filter { models.contains($0) }
        guard clash.isEmpty, Set(names).count == names.count, !names.isEmpty else {
            throw RouterError.invalidConfiguration("models \(clash.isEmpty ? names : clash) are already known, repeated or none")
        }
        return try KMeansRouter(models: models + names, centroids: centroids, statistics: statistics.addingModels(names.count), shrinkage: shrinkage)
    }

    public func predict(features: Matrix) throws -> RouterPredictions {
        try validate(features)
        let (assignments, _) = KMeans.assign(points: features, centroids: centroids)
        let m = models.count
        let prior = ScoreShrinkage.prior(groups: statistics.clusters, models: m, count: statistics.count,
                                         scoreSum: statistics.scoreSum, costSum: statistics.costSum)
        var score = [Double](repeating: 0, count: features.rows * m)
        var cost = score
        var available = [Bool](repeating: false, count: score.count)
        for r in 0..<features.rows {
            let k = assignments[r]
            // A cluster that observed nothing falls back to the global means.
            let clusterEmpty = (0..<m).allSatisfy { statistics.count[k * m + $0] == 0 }
            for j in 0..<m {
                let (n, s, c) = clusterEmpty
                    ? (prior.count[j], prior.meanScore[j] * prior.count[j], prior.meanCost[j] * prior.count[j])
                    : (statistics.count[k * m + j], statistics.scoreSum[k * m + j], statistics.costSum[k * m + j])
                if let e = prior.estimate(model: j, n: n, s: s, c: c, shrinkage: shrinkage) {
                    score[r * m + j] = e.score
                    cost[r * m + j] = e.cost
                    available[r * m + j] = true
                }
            }
        }
        return RouterPredictions(models: models, rows: features.rows, score: score, cost: cost, available: available)
    }
}
