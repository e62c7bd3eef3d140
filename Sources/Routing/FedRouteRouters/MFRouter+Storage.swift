import FedRouteData
import FedRouteNumerics

/// The MF-Router as a registered family. File: metadata `mf.architecture` (with `"trunk": "linear"`)
/// and `mf.cost_normalizer` (JSON), tensors `mf.trunk.0.weight` (W, features × rank),
/// `mf.trunk.0.bias` (w₀), `mf.accuracy_head.weight` / `.bias` (e_m as columns, b_m) and
/// `mf.cost_head.weight` / `.bias` (g_m, c_m).
extension MFRouter: StorableRouter {
    public static let family = RouterFamily.mf

    public static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                             seed: UInt64, validation: ModelSelection.Validation?, progress: ProgressHandler?) throws -> MFRouter {
        var c = settings(configuration.mf)
        c.seed = seed
        return try MFRouter(MLPTrainer.train(features: features, table: table, configuration: c,
                                             validation: configuration.selectBestEpoch == true ? validation : nil, progress: progress))
    }

    public func store(in contents: inout RouterFileContents) throws {
        try factorization.store(in: &contents, prefix: "mf.")
    }

    public static func load(from contents: RouterFileContents, models: [String]) throws -> MFRouter {
        let router = try MLPRouter.load(from: contents, models: models, prefix: "mf.")
        do { return try MFRouter(router) } catch { throw contents.failure("metadata 'mf.architecture': \(error)") }
    }
}
