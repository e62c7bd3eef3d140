import FedRouteData
import FedRouteNumerics

/// The K-Means-Router as a registered family. File: tensors `kmeans.centroids`, and per cluster and
/// model `kmeans.count`, `kmeans.score_mean`, `kmeans.cost_mean` (float32; sums are kept as
/// means × count to bound rounding), metadata `kmeans.shrinkage` (absent in older files: `none`).
/// A router of several clusterings (`resolutions`) stores clustering i > 0 as `kmeans.r<i>.*` and
/// their number as metadata `kmeans.resolutions` (absent: one), and how they combine as
/// `kmeans.combination` (absent: `average`, as every file before `nested`).
extension KMeansRouter: StorableRouter {
    public static let family = RouterFamily.kmeans

    public static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                             seed: UInt64, validation: ModelSelection.Validation?, progress: ProgressHandler?) throws -> KMeansRouter {
        var c = configuration.kmeans
        c.seed = seed
        guard let candidates = configuration.kmeansCandidates, !candidates.isEmpty else { return try train(features: features, table: table, configuration: c) }
        return try ModelSelection.kmeans(features: features, table: table, configuration: c, candidates: candidates,
                                         policy: configuration.kmeansPolicy ?? .average, validation: validation,
                                         poolValidation: configuration.poolHeldOutRows ?? true).router
    }

    public func store(in contents: inout RouterFileContents) throws {
        contents.metadata["kmeans.shrinkage"] = shrinkage.rawValue
        if resolutions.count > 1 { contents.metadata["kmeans.resolutions"] = String(resolutions.count) }
        if combination != .average { contents.metadata["kmeans.combination"] = combination.rawValue }
        for (i, r) in resolutions.enumerated() {
            let s = r.statistics
            let prefix = Self.tensorPrefix(i)
            contents.add(Tensor(name: prefix + "centroids", shape: [r.centroids.rows, r.centroids.cols], values: r.centroids.data))
            contents.add(Tensor(name: prefix + "count", shape: [s.clusters, s.models], values: s.count.map(Float.init)))
            contents.add(Tensor(name: prefix + "score_mean", shape: [s.clusters, s.models], values: zip(s.scoreSum, s.count).map { Float($1 > 0 ? $0 / $1 : 0) }))
            contents.add(Tensor(name: prefix + "cost_mean", shape: [s.clusters, s.models], values: zip(s.costSum, s.count).map { Float($1 > 0 ? $0 / $1 : 0) }))
        }
    }

    /// Clustering 0's tensors are `kmeans.*` (as in files of one clustering); clustering i's `kmeans.r<i>.*`.
    static func tensorPrefix(_ i: Int) -> String { i == 0 ? "kmeans." : "kmeans.r\(i)." }

    public static func load(from contents: RouterFileContents, models: [String]) throws -> KMeansRouter {
        var count = 1
        if let raw = contents.metadata["kmeans.resolutions"] {
            guard let n = Int(raw), (1...maxResolutions).contains(n) else {
                throw contents.failure("metadata 'kmeans.resolutions' is '\(raw)', not a count from 1 to \(maxResolutions)")
            }
            count = n
        }
        let resolutions = try (0..<count).map { i in
            let prefix = tensorPrefix(i)
            let centroids = try contents.matrix(prefix + "centroids")
            let k = centroids.rows
            let count = try contents.tensor(prefix + "count", shape: [k, models.count]).values.map(Double.init)
            let scoreMean = try contents.tensor(prefix + "score_mean", shape: [k, models.count]).values.map(Double.init)
            let costMean = try contents.tensor(prefix + "cost_mean", shape: [k, models.count]).values.map(Double.init)
            var stats = ClusterStatistics(clusters: k, models: models.count)
            stats.count = count
            stats.scoreSum = zip(scoreMean, count).map(*)
            stats.costSum = zip(costMean, count).map(*)
            return KMeansResolution(centroids: centroids, statistics: stats)
        }
        let shrinkage = try contents.metadata["kmeans.shrinkage"].map { raw in
            guard let s = ScoreShrinkage(rawValue: raw) else { throw contents.failure("metadata 'kmeans.shrinkage' is '\(raw)', not one of \(ScoreShrinkage.allCases.map(\.rawValue))") }
            return s
        } ?? ScoreShrinkage.none
        let combination = try contents.metadata["kmeans.combination"].map { raw in
            guard let c = KMeansCombination(rawValue: raw) else { throw contents.failure("metadata 'kmeans.combination' is '\(raw)', not one of \(KMeansCombination.allCases.map(\.rawValue))") }
            return c
        } ?? KMeansCombination.average
        do {
            return try KMeansRouter(models: models, resolutions: resolutions, shrinkage: shrinkage, combination: combination)
        } catch let error as RouterError {
            throw contents.failure("\(error)")
        }
    }
}
