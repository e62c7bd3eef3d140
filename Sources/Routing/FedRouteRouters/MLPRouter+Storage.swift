import FedRouteData
import FedRouteNumerics

/// The MLP-Router as a registered family. File: metadata `mlp.architecture` and `mlp.cost_normalizer`
/// (JSON), tensors `mlp.<parameter>`.
extension MLPRouter: StorableRouter {
    public static let family = RouterFamily.mlp

    public static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                             seed: UInt64, progress: ProgressHandler?) throws -> MLPRouter {
        var c = configuration.mlp
        c.seed = seed
        return try MLPTrainer.train(features: features, table: table, configuration: c, progress: progress)
    }

    public func store(in contents: inout RouterFileContents) throws {
        try contents.setJSON(network.architecture, for: "mlp.architecture")
        try contents.setJSON(costNormalizer, for: "mlp.cost_normalizer")
        for p in network.parameters { contents.add(Tensor(name: "mlp." + p.name, shape: p.shape, values: p.values)) }
    }

    public static func load(from contents: RouterFileContents, models: [String]) throws -> MLPRouter {
        let architecture = try contents.json("mlp.architecture", as: MLPArchitecture.self)
        let normalizer = try contents.json("mlp.cost_normalizer", as: CostNormalizer.self)
        do { try architecture.validate() } catch { throw contents.failure("metadata 'mlp.architecture': \(error)") }
        let expected = architecture.parameterShapes.map { "mlp." + $0.name }
        // Every mlp.* tensor must be one of this architecture's (a stray one means the file and its
        // architecture disagree, e.g. trunk tensors with trunkLayers 0).
        let stray = contents.tensors.map(\.name).filter { $0.hasPrefix("mlp.") && !expected.contains($0) }
        guard stray.isEmpty else {
            throw contents.failure("tensors \(stray.sorted()) do not belong to the MLP architecture in 'mlp.architecture' (\(architecture.trunkLayers) trunk layers)")
        }
        let params = try expected.map { name -> Tensor in
            let t = try contents.tensor(name)
            return Tensor(name: String(name.dropFirst(4)), shape: t.shape, values: t.values)
        }
        return try MLPRouter(models: models, network: try MLPNetwork(architecture: architecture, parameters: params), costNormalizer: normalizer)
    }
}
