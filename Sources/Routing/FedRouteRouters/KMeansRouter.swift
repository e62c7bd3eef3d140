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
/// A router holds one clustering or several (`resolutions`, e.g. 3, 6, 12, 24 and 48 clusters):
/// each gives an estimate from the query's nearest centre, and `combination` says how they make
/// one — their mean over the clusterings where the model has one (`.average`), or each finer
/// clustering's cell shrunk towards the coarser ones' estimate (`.nested`).
///
/// Scores are shrunk towards each model's global mean (`ScoreShrinkage.empiricalBayes`, the
/// default): a (cluster, model) cell with few observations says little beyond the model's overall
/// quality. With `.none` (routers written before shrinkage) cells hold raw means. Either way a
/// (cluster, model) cell with no observation is unavailable, and a model is chosen for a query only
/// where some clustering observed it in the query's cluster; a cluster with no observation at all
/// falls back to that clustering's per-model means over all clusters.
public struct KMeansRouter: Router, Equatable {
    public let models: [String]
    /// The clusterings, at least one, all of the same dimension and models.
    public let resolutions: [KMeansResolution]
    public let shrinkage: ScoreShrinkage
    /// How several clusterings combine (one clustering: either gives the same estimate).
    public let combination: KMeansCombination
    /// Each clustering's per-model prior (`ScoreShrinkage.prior`), derived once from its statistics
    /// rather than on every `predict` (the gateway routes one query at a time).
    let priors: [ScoreShrinkage.Prior]
    /// `.nested`: the clusterings' indices from coarse to fine, and per position after the first
    /// the strength κ of its cells' pull towards the coarser estimate, per model (∞: no pull of its
    /// own, the coarser estimate stands). Derived once from the statistics.
    let nestedOrder: [Int]
    let nestedStrength: [[Double]]

    /// Most clusterings one router may hold (a file declaring more is refused).
    public static let maxResolutions = 64

    public var inputDimension: Int { resolutions[0].centroids.cols }

    public init(models: [String], resolutions: [KMeansResolution], shrinkage: ScoreShrinkage = .empiricalBayes,
                combination: KMeansCombination = .average) throws {
        guard !resolutions.isEmpty, resolutions.count <= Self.maxResolutions else {
            throw RouterError.invalidConfiguration("a K-Means-Router holds 1 to \(Self.maxResolutions) clusterings, not \(resolutions.count)")
        }
        let dimension = resolutions[0].centroids.cols
        for (i, r) in resolutions.enumerated() {
            guard r.statistics.clusters == r.centroids.rows, r.statistics.models == models.count else {
                throw RouterError.invalidConfiguration("clustering \(i): statistics are \(r.statistics.clusters)×\(r.statistics.models), expected \(r.centroids.rows)×\(models.count)")
            }
            guard r.centroids.cols == dimension else { throw RouterError.dimensionMismatch(expected: dimension, got: r.centroids.cols) }
            guard r.centroids.isFinite, r.statistics.isValid else { throw RouterError.nonFiniteInput }
        }
        self.models = models
        self.resolutions = resolutions
        self.shrinkage = shrinkage
        self.combination = combination
        let priors = resolutions.map { r in
            ScoreShrinkage.prior(groups: r.statistics.clusters, models: models.count, count: r.statistics.count,
                                 scoreSum: r.statistics.scoreSum, costSum: r.statistics.costSum)
        }
        self.priors = priors
        guard combination == .nested, resolutions.count > 1 else {
            nestedOrder = []
            nestedStrength = []
            return
        }
        let order = resolutions.indices.sorted { (resolutions[$0].clusters, $0) < (resolutions[$1].clusters, $1) }
        var strengths: [[Double]] = [[]]
        for position in 1..<order.count {
            let r = order[position]
            let statistics = resolutions[r].statistics
            let parent = Self.nestedEstimates(features: resolutions[r].centroids, resolutions: resolutions, priors: priors,
                                              order: Array(order[..<position]), strengths: strengths, shrinkage: shrinkage)
            strengths.append(Self.nestedStrengths(statistics: statistics, parent: parent, prior: priors[r], models: models.count))
        }
        nestedOrder = order
        nestedStrength = strengths
    }

    /// A router of one clustering.
    public init(models: [String], centroids: Matrix, statistics: ClusterStatistics, shrinkage: ScoreShrinkage = .empiricalBayes) throws {
        try self.init(models: models, resolutions: [KMeansResolution(centroids: centroids, statistics: statistics)], shrinkage: shrinkage)
    }

    /// The cluster count of each clustering.
    public var clusterCounts: [Int] { resolutions.map(\.clusters) }

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

    /// The same router with other statistics per clustering (same centres), e.g. after more rows
    /// were pooled in.
    public func replacingStatistics(_ statistics: [ClusterStatistics]) throws -> KMeansRouter {
        guard statistics.count == resolutions.count else {
            throw RouterError.invalidConfiguration("statistics for \(statistics.count) clusterings, the router has \(resolutions.count)")
        }
        return try KMeansRouter(models: models,
                                resolutions: zip(resolutions, statistics).map { KMeansResolution(centroids: $0.centroids, statistics: $1) },
                                shrinkage: shrinkage, combination: combination)
    }

    /// Growing the federation: new clients' statistics (one per clustering, on its centres) pooled in.
    public func adding(_ more: [ClusterStatistics]) throws -> KMeansRouter {
        guard more.count == resolutions.count else {
            throw RouterError.invalidConfiguration("statistics for \(more.count) clusterings, the router has \(resolutions.count)")
        }
        for (r, m) in zip(resolutions, more) {
            guard m.clusters == r.statistics.clusters, m.models == r.statistics.models, m.isValid else {
                throw RouterError.invalidConfiguration("statistics are \(m.clusters)×\(m.models), the router's \(r.statistics.clusters)×\(r.statistics.models)")
            }
        }
        return try replacingStatistics(zip(resolutions, more).map { $0.statistics + $1 })
    }

    /// Growing the federation: new models start with no observations (never chosen) until
    /// statistics for them are added.
    public func addingModels(_ names: [String]) throws -> KMeansRouter {
        let clash = names.filter { models.contains($0) }
        guard clash.isEmpty, Set(names).count == names.count, !names.isEmpty else {
            throw RouterError.invalidConfiguration("models \(clash.isEmpty ? names : clash) are already known, repeated or none")
        }
        return try KMeansRouter(models: models + names,
                                resolutions: resolutions.map { KMeansResolution(centroids: $0.centroids, statistics: $0.statistics.addingModels(names.count)) },
                                shrinkage: shrinkage, combination: combination)
    }

    public func predict(features: Matrix) throws -> RouterPredictions {
        try validate(features)
        if combination == .nested, resolutions.count > 1 {
            let e = Self.nestedEstimates(features: features, resolutions: resolutions, priors: priors, order: nestedOrder,
                                         strengths: nestedStrength, shrinkage: shrinkage)
            return RouterPredictions(models: models, rows: features.rows, score: e.score, cost: e.cost, available: e.available)
        }
        let m = models.count
        var score = [Double](repeating: 0, count: features.rows * m)
        var cost = score
        var estimates = score
        for (resolution, prior) in zip(resolutions, priors) {
            let statistics = resolution.statistics
            let (assignments, _) = KMeans.assign(points: features, centroids: resolution.centroids)
            for r in 0..<features.rows {
                let k = assignments[r]
                // A cluster that observed nothing falls back to the global means.
                let clusterEmpty = (0..<m).allSatisfy { statistics.count[k * m + $0] == 0 }
                for j in 0..<m {
                    let (n, s, c) = clusterEmpty
                        ? (prior.count[j], prior.meanScore[j] * prior.count[j], prior.meanCost[j] * prior.count[j])
                        : (statistics.count[k * m + j], statistics.scoreSum[k * m + j], statistics.costSum[k * m + j])
                    if let e = prior.estimate(model: j, n: n, s: s, c: c, shrinkage: shrinkage) {
                        score[r * m + j] += e.score
                        cost[r * m + j] += e.cost
                        estimates[r * m + j] += 1
                    }
                }
            }
        }
        for i in score.indices where estimates[i] > 1 {
            score[i] /= estimates[i]
            cost[i] /= estimates[i]
        }
        return RouterPredictions(models: models, rows: features.rows, score: score, cost: cost, available: estimates.map { $0 > 0 })
    }
}
