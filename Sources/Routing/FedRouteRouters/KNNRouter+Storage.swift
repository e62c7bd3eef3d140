import FedRouteData
import FedRouteNumerics

/// The kNN-Router as a registered family. File: metadata `knn.k`, tensors `knn.reference`, and per
/// reference query and model `knn.score`, `knn.cost`, `knn.observed` (1 or 0).
extension KNNRouter: StorableRouter {
    public static let family = RouterFamily.knn

    public static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                             seed: UInt64, progress: ProgressHandler?) throws -> KNNRouter {
        try train(features: features, table: table, k: configuration.knnNeighbors)
    }

    public func store(in contents: inout RouterFileContents) throws {
        contents.metadata["knn.k"] = String(k)
        let m = models.count
        contents.add(Tensor(name: "knn.reference", shape: [reference.rows, reference.cols], values: reference.data))
        contents.add(Tensor(name: "knn.score", shape: [reference.rows, m], values: scores.map(Float.init)))
        contents.add(Tensor(name: "knn.cost", shape: [reference.rows, m], values: costs.map(Float.init)))
        contents.add(Tensor(name: "knn.observed", shape: [reference.rows, m], values: observed.map { $0 ? 1 : 0 }))
    }

    public static func load(from contents: RouterFileContents, models: [String]) throws -> KNNRouter {
        let reference = try contents.matrix("knn.reference")
        guard let k = contents.metadata["knn.k"].flatMap(Int.init) else { throw contents.failure("metadata 'knn.k' is missing") }
        let shape = [reference.rows, models.count]
        return try KNNRouter(
            models: models, k: k, reference: reference,
            scores: try contents.tensor("knn.score", shape: shape).values.map(Double.init),
            costs: try contents.tensor("knn.cost", shape: shape).values.map(Double.init),
            observed: try contents.tensor("knn.observed", shape: shape).values.map { $0 != 0 })
    }
}
