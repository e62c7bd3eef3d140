import FedRouteData
import FedRouteNumerics

/// The K-Means-Router as a registered family. File: tensors `kmeans.centroids`, and per cluster and
/// model `kmeans.count`, `kmeans.score_mean`, `kmeans.cost_mean` (float32; sums are kept as
/// means × count to bound rounding), metadata `kmeans.shrinkage` (absent in older files: `none`).
extension KMeansRouter: StorableRouter {
    public static let family = RouterFamily.kmeans

    public static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                             seed: UInt64, validation: ModelSelection.Validation?, progress: ProgressHandler?) throws -> KMeansRouter {
        var c = configuration.kmeans
        c.seed = seed
        guard let candidates = configuration.kmeansCandidates, let validation else { return try train(features: features, table: table, configuration: c) }
        return try ModelSelection.kmeans(features: features, table: table, configuration: c, candidates: candidates, validation: validation).router
    }

    public func store(in contents: inout RouterFileContents) throws {
        let s = statistics
        contents.metadata["kmeans.shrinkage"] = shrinkage.rawValue
        contents.add(Tensor(name: "kmeans.centroids", shape: [centroids.rows, centroids.cols], values: centroids.data))
        contents.add(Tensor(name: "kmeans.count", shape: [s.clusters, s.models], values: s.count.map(Float.init)))
        contents.add(Tensor(name: "kmeans.score_mean", shape: [s.clusters, s.models], values: zip(s.scoreSum, s.count).map { Float($1 > 0 ? $0 / $1 : 0) }))
        contents.add(Tensor(name: "kmeans.cost_mean", shape: [s.clusters, s.models], values: zip(s.costSum, s.count).map { Float($1 > 0 ? $0 / $1 : 0) }))
    }

    public static func load(from contents: RouterFileContents, models: [String]) throws -> KMeansRouter {
        let centroids = try contents.matrix("kmeans.centroids")
        let k = centroids.rows
        let count = try contents.tensor("kmeans.count", shape: [k, models.count]).values.map(Double.init)
        let scoreMean = try contents.tensor("kmeans.score_mean", shape: [k, models.count]).values.map(Double.init)
        let costMean = try contents.tensor("kmeans.cost_mean", shape: [k, models.count]).values.map(Double.init)
        var stats = ClusterStatistics(clusters: k, models: models.count)
        stats.count = count
        stats.scoreSum = zip(scoreMean, count).map(*)
        stats.costSum = zip(costMean, count).map(*)
        let shrinkage = try contents.metadata["kmeans.shrinkage"].map { raw in
            guard let s = ScoreShrinkage(rawValue: raw) else { throw contents.failure("metadata 'kmeans.shrinkage' is '\(raw)', not one of \(ScoreShrinkage.allCases.map(\.rawValue))") }
            return s
        } ?? ScoreShrinkage.none
        return try KMeansRouter(models: models, centroids: centroids, statistics: stats, shrinkage: shrinkage)
    }
}
