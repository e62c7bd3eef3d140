import FedRouteData
import FedRouteNumerics

/// The MLP-Router as a registered family. File: metadata `mlp.architecture` and `mlp.cost_normalizer`
/// (JSON), tensors `mlp.<parameter>`.
extension MLPRouter: StorableRouter {
    public static let family = RouterFamily.mlp

    public static func train(features: Matrix, table: EvaluationTable, configuration: RouterTrainingConfiguration,
                             seed: UInt64, validation: ModelSelection.Validation?, progress: ProgressHandler?) throws -> MLPRouter {
        var c = configuration.mlp
        c.seed = seed
        return try MLPTrainer.train(features: features, table: table, configuration: c,
                                    validation: configuration.selectBestEpoch == true ? validation : nil, progress: progress)
    }

    public func store(in contents: inout RouterFileContents) throws {
        try store(in: &contents, prefix: "mlp.")
    }

    public static func load(from contents: RouterFileContents, models: [String]) throws -> MLPRouter {
        let router = try load(from: contents, models: models, prefix: "mlp.")
        guard router.network.architecture.trunk == .gelu else {
            throw contents.failure("metadata 'mlp.architecture' has a \(router.network.architecture.trunk.rawValue) trunk; an MLP-Router's is gelu")
        }
        return router
    }

    /// Writes the network under `prefix` (`mlp.` for the MLP-Router, `mf.` for the MF-Router).
    func store(in contents: inout RouterFileContents, prefix: String) throws {
        try contents.setJSON(network.architecture, for: prefix + "architecture")
        try contents.setJSON(costNormalizer, for: prefix + "cost_normalizer")
        for p in network.parameters { contents.add(Tensor(name: prefix + p.name, shape: p.shape, values: p.values)) }
    }

    /// Reads a network stored under `prefix`; the architecture is validated before any tensor is read.
    static func load(from contents: RouterFileContents, models: [String], prefix: String) throws -> MLPRouter {
        let architecture = try contents.json(prefix + "architecture", as: MLPArchitecture.self)
        let normalizer = try contents.json(prefix + "cost_normalizer", as: CostNormalizer.self)
        do { try architecture.validate() } catch { throw contents.failure("metadata '\(prefix)architecture': \(error)") }
        let expected = architecture.parameterShapes.map { prefix + $0.name }
        // Every tensor under the prefix must be one of this architecture's (a stray one means the file
        // and its architecture disagree, e.g. trunk tensors with trunkLayers 0).
        let stray = contents.tensors.map(\.name).filter { $0.hasPrefix(prefix) && !expected.contains($0) }
        guard stray.isEmpty else {
            throw contents.failure("tensors \(stray.sorted()) do not belong to the architecture in '\(prefix)architecture' (\(architecture.trunkLayers) trunk layers)")
        }
        let params = try expected.map { name -> Tensor in
            let t = try contents.tensor(name)
            return Tensor(name: String(name.dropFirst(prefix.count)), shape: t.shape, values: t.values)
        }
        return try MLPRouter(models: models, network: try MLPNetwork(architecture: architecture, parameters: params), costNormalizer: normalizer)
    }
}
