import FedRouteData
import FedRouteNumerics

/// The kNN-Router as a registered family. File: metadata `knn.k`, tensors `knn.reference`, and per
/// reference query and model `knn.score`, `knn.cost`, `knn.observed` (1 or 0); metadata
/// `knn.shrinkage` and `knn.shrinkage_strength` (a JSON list of κ per model as decimal strings,
/// "inf" included; both absent in older files: raw means).
extension KNNRouter: StorableRouter {
    public static let family = RouterFamily.knn

    public static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                             seed: UInt64, validation: ModelSelection.Validation?, progress: ProgressHandler?) throws -> KNNRouter {
        guard let candidates = configuration.knnCandidates, let validation else { return try train(features: features, table: table, k: configuration.knnNeighbors) }
        return try ModelSelection.knn(features: features, table: table, candidates: candidates, validation: validation,
                                      poolValidation: configuration.poolHeldOutRows ?? true).router
    }

    public func store(in contents: inout RouterFileContents) throws {
        contents.metadata["knn.k"] = String(k)
        contents.metadata["knn.shrinkage"] = shrinkage.rawValue
        try contents.setJSON(shrinkageStrength.map { "\($0)" }, for: "knn.shrinkage_strength")
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
        var shrinkage = ScoreShrinkage.none
        var strength: [Double]?
        if let raw = contents.metadata["knn.shrinkage"] {
            guard let s = ScoreShrinkage(rawValue: raw) else {
                throw contents.failure("metadata 'knn.shrinkage' is '\(raw)', not one of \(ScoreShrinkage.allCases.map(\.rawValue))")
            }
            let values = try contents.json("knn.shrinkage_strength", as: [String].self)
            let parsed = values.compactMap(Double.init)
            guard values.count == models.count, parsed.count == values.count, parsed.allSatisfy({ !$0.isNaN && $0 >= 0 }) else {
                throw contents.failure("metadata 'knn.shrinkage_strength' must hold \(models.count) numbers ≥ 0")
            }
            shrinkage = s
            strength = parsed
        }
        return try KNNRouter(
            models: models, k: k, reference: reference,
            scores: try contents.tensor("knn.score", shape: shape).values.map(Double.init),
            costs: try contents.tensor("knn.cost", shape: shape).values.map(Double.init),
            observed: try contents.tensor("knn.observed", shape: shape).values.map { $0 != 0 },
            shrinkage: shrinkage, shrinkageStrength: strength)
    }
}
