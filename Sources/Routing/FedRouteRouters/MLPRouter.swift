import FedRouteData
import FedRouteNumerics

/// The parametric MLP-Router: a network predicting per-model success probability and cost.
public struct MLPRouter: Router, Equatable {
    public let models: [String]
    public var network: MLPNetwork
    public let costNormalizer: CostNormalizer

    public var inputDimension: Int { network.architecture.inputDimension }

    public init(models: [String], network: MLPNetwork, costNormalizer: CostNormalizer) throws {
        guard network.architecture.modelCount == models.count else {
            throw RouterError.invalidConfiguration("MLP-Router for \(models.count) models has \(network.architecture.modelCount) heads")
        }
        if let problem = costNormalizer.problem(models: models.count) {
            throw RouterError.invalidConfiguration("MLP-Router: \(problem)")
        }
        self.models = models
        self.network = network
        self.costNormalizer = costNormalizer
    }

    public func predict(features: Matrix) throws -> RouterPredictions {
        try validate(features)
        let (score, cost) = network.predict(features)
        let m = models.count
        var c = [Double](repeating: 0, count: score.data.count)
        for i in c.indices { c[i] = costNormalizer.cost(normalized: cost.data[i], model: i % m) }
        // A model without a single training observation has only an untrained head: unavailable.
        let observed = (0..<m).map { costNormalizer.isObserved(model: $0) }
        return RouterPredictions(models: models, rows: features.rows, score: score.data.map(Double.init), cost: c,
                                 available: c.indices.map { observed[$0 % m] })
    }
}

extension MLPRouter {
    /// This router with new models appended: fresh head columns, the trunk and the existing heads
    /// unchanged. `costNormalizer` covers all models (old ones keep their statistics).
    public func addingModels(_ names: [String], costNormalizer: CostNormalizer, seed: UInt64) throws -> MLPRouter {
        let clash = names.filter { models.contains($0) }
        guard clash.isEmpty, Set(names).count == names.count else {
            throw RouterError.invalidConfiguration("models \(clash.isEmpty ? names : clash) are already known or repeated")
        }
        guard costNormalizer.mean.count == models.count + names.count,
              Array(costNormalizer.mean.prefix(models.count)) == self.costNormalizer.mean,
              Array(costNormalizer.std.prefix(models.count)) == self.costNormalizer.std else {
            throw RouterError.invalidConfiguration("the cost normaliser must keep the \(models.count) existing models' statistics and add \(names.count)")
        }
        return try MLPRouter(models: models + names, network: network.addingModels(names.count, seed: seed), costNormalizer: costNormalizer)
    }
}
