import FedRouteData
import FedRouteNumerics
import FedRouteRouters

/// Per-model weight of the global router in a client's personalised mixture, separately for the
/// score and the cost prediction (the local router gets 1 − w).
public struct MixtureWeights: Sendable, Codable, Equatable {
    public var score: [Double]
    public var cost: [Double]

    public init(score: [Double], cost: [Double]) {
        self.score = score
        self.cost = cost
    }
}

/// A client's personalised router: per model, w·global + (1 − w)·local for score and for cost.
///
/// Where one router has no estimate (an unobserved K-Means cell) the other one is used alone.
public struct MixtureRouter: Router {
    public let global: any Router
    public let local: any Router
    public let weights: MixtureWeights

    public var models: [String] { global.models }
    public var inputDimension: Int { global.inputDimension }

    public init(global: any Router, local: any Router, weights: MixtureWeights) throws {
        guard global.models == local.models else { throw RouterError.modelMismatch(expected: global.models, got: local.models) }
        guard global.inputDimension == local.inputDimension else {
            throw RouterError.dimensionMismatch(expected: global.inputDimension, got: local.inputDimension)
        }
        guard weights.score.count == global.models.count, weights.cost.count == global.models.count,
              (weights.score + weights.cost).allSatisfy({ (0...1).contains($0) }) else {
            throw RouterError.invalidConfiguration("mixture weights must be \(global.models.count) values in [0, 1] for score and for cost")
        }
        self.global = global
        self.local = local
        self.weights = weights
    }

    public func predict(features: Matrix) throws -> RouterPredictions {
        let g = try global.predict(features: features)
        let l = try local.predict(features: features)
        let m = models.count
        var out = g
        for i in out.score.indices {
            let j = i % m
            switch (g.available[i], l.available[i]) {
            case (true, true):
                out.score[i] = weights.score[j] * g.score[i] + (1 - weights.score[j]) * l.score[i]
                out.cost[i] = weights.cost[j] * g.cost[i] + (1 - weights.cost[j]) * l.cost[i]
            case (false, true):
                out.score[i] = l.score[i]; out.cost[i] = l.cost[i]; out.available[i] = true
            default:
                break
            }
        }
        return out
    }
}

/// Client-side personalisation of a federated router (nothing here leaves the client).
public enum Personalization {
    /// Adaptive weights: per model, w_g = (1/e_g)/((1/e_g)+(1/e_l)) with e the mean absolute error
    /// of each router on the client's observed training cells; 0.5 where the client has no
    /// observation of a model, and all weight on the other router where one has no estimate.
    public static func adaptiveWeights(global: any Router, local: any Router, features: Matrix, table: EvaluationTable) throws -> MixtureWeights {
        weights(global: try global.predict(features: features), local: try local.predict(features: features), table: table)
    }

    /// Adaptive weights where the local router's errors are measured out of fold: it is retrained
    /// with `trainLocal` on the other `folds − 1` folds of the client's data and judged on the held-out
    /// one. In-sample errors flatter a router fitted to these very cells (a K-Means cell mean has no
    /// error on a singleton cluster); cross-fitting removes that bias. A fold whose complement cannot
    /// train a router (no observations) gives no local estimate for its rows.
    public static func crossFittedWeights(global: any Router, features: Matrix, table: EvaluationTable, folds: Int, seed: UInt64,
                                          trainLocal: (Matrix, EvaluationTable) throws -> any Router) throws -> MixtureWeights {
        guard folds >= 2 else { throw RouterError.invalidConfiguration("cross-fitting needs at least 2 folds") }
        let n = table.queryCount
        let m = table.modelCount
        var rng = SeededRandom(seed: seed)
        let order = rng.permutation(n)
        var score = [Double](repeating: 0, count: n * m), cost = score
        var available = [Bool](repeating: false, count: n * m)
        for f in 0..<min(folds, n) {
            let held = order.enumerated().filter { $0.offset % folds == f }.map(\.element).sorted()
            let kept = order.enumerated().filter { $0.offset % folds != f }.map(\.element).sorted()
            let router: any Router
            do { router = try trainLocal(features.gatherRows(kept), table.subset(kept)) } catch RouterError.noTrainingData { continue }
            let p = try router.predict(features: features.gatherRows(held))
            for (i, r) in held.enumerated() {
                for j in 0..<m { score[r * m + j] = p.score[i * m + j]; cost[r * m + j] = p.cost[i * m + j]; available[r * m + j] = p.available[i * m + j] }
            }
        }
        let outOfFold = RouterPredictions(models: table.models, rows: n, score: score, cost: cost, available: available)
        return weights(global: try global.predict(features: features), local: outOfFold, table: table)
    }

    static func weights(global g: RouterPredictions, local l: RouterPredictions, table: EvaluationTable) -> MixtureWeights {
        let m = table.modelCount
        var score = [Double](repeating: 0.5, count: m)
        var cost = score
        for j in 0..<m {
            var eg = (s: 0.0, c: 0.0, n: 0.0), el = (s: 0.0, c: 0.0, n: 0.0), observed = 0
            for r in 0..<table.queryCount where table.isObserved(r, j) {
                observed += 1
                let i = r * m + j
                let y = table.scores[table.index(r, j)], c = table.costs[table.index(r, j)]
                if g.available[i] { eg.s += abs(g.score[i] - y); eg.c += abs(g.cost[i] - c); eg.n += 1 }
                if l.available[i] { el.s += abs(l.score[i] - y); el.c += abs(l.cost[i] - c); el.n += 1 }
            }
            guard observed > 0 else { continue }
            score[j] = weight(eg.n > 0 ? eg.s / eg.n : nil, el.n > 0 ? el.s / el.n : nil)
            cost[j] = weight(eg.n > 0 ? eg.c / eg.n : nil, el.n > 0 ? el.c / el.n : nil)
        }
        return MixtureWeights(score: score, cost: cost)
    }

    /// Inverse-error weight of the global router; `nil` errors mean "no estimate".
    static func weight(_ eg: Double?, _ el: Double?) -> Double {
        switch (eg, el) {
        case (nil, nil): return 0.5
        case (nil, _): return 0
        case (_, nil): return 1
        case let (g?, l?):
            if g == 0 && l == 0 { return 0.5 }
            return l / (g + l)   // = (1/g) / ((1/g) + (1/l)), finite when one error is 0
        }
    }

    /// The adaptive mixture of `global` and `local` for this client.
    public static func adaptiveMixture(global: any Router, local: any Router, features: Matrix, table: EvaluationTable) throws -> MixtureRouter {
        try MixtureRouter(global: global, local: local, weights: adaptiveWeights(global: global, local: local, features: features, table: table))
    }

    /// Fine-tune-from-global: further local epochs of the global MLP on the client's data, keeping
    /// the federation's cost normaliser.
    public static func fineTune(_ router: MLPRouter, features: Matrix, table: EvaluationTable, settings: LocalTrainingSettings,
                                seed: UInt64) throws -> MLPRouter {
        guard table.models == router.models else { throw RouterError.modelMismatch(expected: router.models, got: table.models) }
        var network = router.network
        let data = try MLPTrainingSet(features: features, table: table, normalizer: router.costNormalizer)
        var optimizer = AdamW(configuration: settings.optimizer, shapes: network.parameters.map(\.count), decayMask: network.decayMask)
        var rng = SeededRandom(seed: seed)
        var gradients: [[Float]] = []
        if !data.trainableRows.isEmpty {
            for _ in 0..<settings.epochs {
                _ = try MLPTrainer.runEpoch(network: &network, optimizer: &optimizer, data: data, rows: data.trainableRows,
                                            batchSize: settings.batchSize, gradientClip: settings.gradientClip, rng: &rng, gradients: &gradients)
            }
        }
        return try MLPRouter(models: router.models, network: network, costNormalizer: router.costNormalizer)
    }

    /// Fine-tune for the K-Means-Router: the global centres, and per cell (of every clustering) the
    /// client's own observations shrunk towards the global cell mean with `priorStrength`
    /// pseudo-observations.
    public static func fineTune(_ router: KMeansRouter, features: Matrix, table: EvaluationTable, priorStrength: Double) throws -> KMeansRouter {
        guard table.models == router.models else { throw RouterError.modelMismatch(expected: router.models, got: table.models) }
        guard priorStrength >= 0, priorStrength.isFinite else { throw RouterError.invalidConfiguration("prior strength must be finite and ≥ 0") }
        let personal = try router.resolutions.map { resolution in
            var s = try ClusterStatistics(centroids: resolution.centroids, features: features, table: table)
            let g = resolution.statistics
            for i in s.count.indices where g.count[i] > 0 && priorStrength > 0 {
                s.count[i] += priorStrength
                s.scoreSum[i] += priorStrength * g.scoreSum[i] / g.count[i]
                s.costSum[i] += priorStrength * g.costSum[i] / g.count[i]
            }
            return s
        }
        return try router.replacingStatistics(personal)
    }
}
