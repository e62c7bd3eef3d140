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
        // The parameter names of this architecture (they depend only on the layer count).
        let names = MLPNetwork(architecture: MLPArchitecture(inputDimension: 1, hiddenDimension: 1, trunkLayers: architecture.trunkLayers, modelCount: 1), seed: 0)
            .parameters.map(\.name)
        let params = try names.map { name -> Tensor in
            let t = try contents.tensor("mlp." + name)
            return Tensor(name: name, shape: t.shape, values: t.values)
        }
        return try MLPRouter(models: models, network: try MLPNetwork(architecture: architecture, parameters: params), costNormalizer: normalizer)
    }
}
