import FedRouteData
import FedRouteNumerics

/// Per-model standardisation of log-cost: c̃ = clamp((log1p(cost) − μ_m)/σ_m, −3, 3).
///
/// It also records how many training cells each model had (`observations`): a model with none
/// was never seen in training, and the MLP-Router marks it unavailable instead of inventing
/// estimates for it (issue 16, item 6).
public struct CostNormalizer: Sendable, Codable, Equatable {
    public var mean: [Double]
    public var std: [Double]
    /// Observed training cells per model; nil in files written before fedroute recorded it (every
    /// model is then taken as observed).
    public var observations: [Double]?
    public static let clampLimit = 3.0

    public init(mean: [Double], std: [Double], observations: [Double]? = nil) {
        self.mean = mean
        self.std = std
        self.observations = observations
    }

    /// Whether model `m` had at least one observed training cell.
    public func isObserved(model m: Int) -> Bool {
        observations.map { $0[m] > 0 } ?? true
    }

    /// Why this normaliser cannot serve `models` models, or nil: one finite mean, positive finite
    /// deviation and (if recorded) finite non-negative observation count per model.
    public func problem(models: Int) -> String? {
        guard mean.count == models, std.count == models, observations.map({ $0.count == models }) ?? true else {
            return "cost statistics for \(mean.count) models (\(observations?.count ?? mean.count) observation counts), expected \(models)"
        }
        guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            return "cost normaliser needs finite means and positive finite deviations"
        }
        guard observations?.allSatisfy({ $0.isFinite && $0 >= 0 }) ?? true else { return "cost normaliser observation counts must be finite and ≥ 0" }
        return nil
    }

    /// Fits μ_m and σ_m on the observed cells of `table`; a model with fewer than two observations
    /// uses the statistics pooled over all models.
    public init(fitting table: EvaluationTable) {
        self.init(moments: CostMoments(table: table))
    }

    /// The normaliser from additive log-cost moments (what a federation pools instead of raw costs);
    /// identical to fitting on the union of the tables the moments came from.
    public init(moments: CostMoments) {
        func stats(_ n: Double, _ s: Double, _ ss: Double) -> (Double, Double) {
            guard n > 0 else { return (0, 1) }
            let mu = s / n
            return (mu, max(max(0, ss / n - mu * mu).squareRoot(), 1e-12))
        }
        let global = stats(moments.count.reduce(0, +), moments.sum.reduce(0, +), moments.sumSquares.reduce(0, +))
        let s = moments.count.indices.map { m in
            moments.count[m] >= 2 ? stats(moments.count[m], moments.sum[m], moments.sumSquares[m]) : global
        }
        mean = s.map(\.0)
        std = s.map(\.1)
        observations = moments.count
    }

    public func normalized(cost: Double, model m: Int) -> Float {
        Float(min(Self.clampLimit, max(-Self.clampLimit, (Scalar.log1p(cost) - mean[m]) / std[m])))
    }

    public func cost(normalized value: Float, model m: Int) -> Double {
        let v = min(Self.clampLimit, max(-Self.clampLimit, Double(value)))
        return max(0, Scalar.expm1(v * std[m] + mean[m]))
    }
}

/// Per-model count, sum and sum of squares of log1p(cost) over observed cells. Additive, so
/// clients can pool them without revealing any single cost.
public struct CostMoments: Sendable, Codable, Equatable {
    public var count: [Double]
    public var sum: [Double]
    public var sumSquares: [Double]

    public init(models: Int) {
        count = Array(repeating: 0, count: models)
        sum = count
        sumSquares = count
    }

    public init(table: EvaluationTable) {
        self.init(models: table.modelCount)
        for r in 0..<table.queryCount {
            for m in 0..<table.modelCount where table.isObserved(r, m) {
                let v = Scalar.log1p(table.costs[table.index(r, m)])
                count[m] += 1
                sum[m] += v
                sumSquares[m] += v * v
            }
        }
    }

    public static func + (a: CostMoments, b: CostMoments) -> CostMoments {
        precondition(a.count.count == b.count.count, "cost moments for different model counts")
        var s = a
        for m in s.count.indices { s.count[m] += b.count[m]; s.sum[m] += b.sum[m]; s.sumSquares[m] += b.sumSquares[m] }
        return s
    }
}

/// Training hyper-parameters of the MLP-Router.
public struct MLPTrainingConfiguration: Sendable, Codable, Equatable {
    public var hiddenDimension = 512
    public var trunkLayers = 2
    public var dropout: Float = 0.1
    /// 10 epochs: on routerbench-3task more epochs overfit (AUC 0.855 at 10, 0.842 at 20, 0.719 at 60).
    public var epochs = 10
    public var batchSize = 128
    public var optimizer = AdamWConfiguration(learningRate: 1e-3, weightDecay: 3e-4)
    /// Global gradient-norm limit (≤ 0 disables clipping).
    public var gradientClip: Float = 1.0
    public var seed: UInt64 = 0

    public init() {}
}

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

/// Mini-batch training data for the MLP: features plus masked, normalised targets.
public struct MLPTrainingSet: Sendable {
    public let features: Matrix
    public let score: [Float]
    public let cost: [Float]
    public let mask: [Float]
    public let modelCount: Int
    /// Rows with at least one observed cell (the only ones that carry gradient).
    public let trainableRows: [Int]

    public init(features: Matrix, table: EvaluationTable, normalizer: CostNormalizer) throws {
        guard features.rows == table.queryCount else {
            throw RouterError.invalidConfiguration("\(features.rows) feature rows for \(table.queryCount) queries")
        }
        guard features.isFinite else { throw RouterError.nonFiniteInput }
        let m = table.modelCount
        var s = [Float](repeating: 0, count: table.queryCount * m)
        var c = s
        var k = s
        for i in 0..<(table.queryCount * m) where table.observed[i] {
            s[i] = Float(table.scores[i])
            c[i] = normalizer.normalized(cost: table.costs[i], model: i % m)
            k[i] = 1
        }
        self.features = features
        score = s
        cost = c
        mask = k
        modelCount = m
        trainableRows = (0..<table.queryCount).filter { r in (0..<m).contains { table.observed[r * m + $0] } }
    }

    public func batch(_ rows: [Int]) -> (Matrix, MLPBatchTargets) {
        let m = modelCount
        var s = [Float](); var c = [Float](); var k = [Float]()
        s.reserveCapacity(rows.count * m); c.reserveCapacity(rows.count * m); k.reserveCapacity(rows.count * m)
        for r in rows {
            s += score[(r * m)..<((r + 1) * m)]
            c += cost[(r * m)..<((r + 1) * m)]
            k += mask[(r * m)..<((r + 1) * m)]
        }
        return (features.gatherRows(rows), MLPBatchTargets(score: s, cost: c, mask: k))
    }
}

/// Trains MLP networks with AdamW; the epoch loop is reusable by federated clients.
public enum MLPTrainer {
    /// Trains an MLP-Router on the observed cells of `table` (features row-aligned with it).
    public static func train(features: Matrix, table: EvaluationTable, configuration c: MLPTrainingConfiguration,
                             progress: ProgressHandler? = nil) throws -> MLPRouter {
        // 0 epochs would return the random initial network as if it were trained.
        guard c.epochs >= 1, c.batchSize >= 1, c.hiddenDimension >= 1, c.trunkLayers >= 1, (0..<1).contains(c.dropout) else {
            throw RouterError.invalidConfiguration("epochs ≥ 1 (0 would be an untrained router), batch size ≥ 1, hidden ≥ 1, layers ≥ 1 and dropout in [0, 1) required; got epochs \(c.epochs), batch \(c.batchSize), hidden \(c.hiddenDimension), layers \(c.trunkLayers), dropout \(c.dropout)")
        }
        if let problem = c.optimizer.problem { throw RouterError.invalidConfiguration(problem) }
        guard c.gradientClip.isFinite else { throw RouterError.invalidConfiguration("the gradient clip must be finite (≤ 0 disables it)") }
        let normalizer = CostNormalizer(fitting: table)
        let data = try MLPTrainingSet(features: features, table: table, normalizer: normalizer)
        guard !data.trainableRows.isEmpty else { throw RouterError.noTrainingData("no observed (query, model) cells") }
        let architecture = MLPArchitecture(inputDimension: features.cols, hiddenDimension: c.hiddenDimension, trunkLayers: c.trunkLayers,
                                           modelCount: table.modelCount, dropout: c.dropout)
        try architecture.validate()
        var rng = SeededRandom(seed: c.seed)
        var network = MLPNetwork(architecture: architecture, seed: rng.next())
        var optimizer = AdamW(configuration: c.optimizer, shapes: network.parameters.map(\.count), decayMask: network.decayMask)
        for epoch in 0..<c.epochs {
            let loss = try runEpoch(network: &network, optimizer: &optimizer, data: data, rows: data.trainableRows,
                                    batchSize: c.batchSize, gradientClip: c.gradientClip, rng: &rng)
            progress?(TrainingProgress(stage: "MLP epoch", step: epoch + 1, total: c.epochs, loss: loss))
        }
        return try MLPRouter(models: table.models, network: network, costNormalizer: normalizer)
    }

    /// One pass over `rows` in shuffled mini-batches; returns the mean batch loss.
    public static func runEpoch(network: inout MLPNetwork, optimizer: inout AdamW, data: MLPTrainingSet, rows: [Int],
                                batchSize: Int, gradientClip: Float, rng: inout SeededRandom,
                                options: LocalTrainingOptions = LocalTrainingOptions()) throws -> Double {
        try options.validate(against: network)
        var order = rows
        rng.shuffle(&order)
        var total = 0.0
        var batches = 0
        var start = 0
        while start < order.count {
            let batchRows = Array(order[start..<min(order.count, start + batchSize)])
            start += batchSize
            var (x, t) = data.batch(batchRows)
            if let teacher = options.teacher, options.distillationWeight > 0 {
                let (score, cost) = teacher.predict(x)
                t.teacher = (score.data, cost.data)
                t.distillationWeight = options.distillationWeight
            }
            var (loss, grads) = network.lossAndGradients(x, t, training: true, rng: &rng)
            guard loss.isFinite else { throw RouterError.diverged("loss became \(loss) after \(batches) batches") }
            if let anchor = options.proximalAnchor, options.proximalMu > 0 {
                // FedProx: ∇ of μ/2·‖θ − θ_global‖².
                for (i, a) in anchor.enumerated() {
                    let p = network.parameters[i].values
                    for j in grads[i].indices { grads[i][j] += options.proximalMu * (p[j] - a.values[j]) }
                }
            }
            if let frozen = options.frozen {
                for i in grads.indices { for j in grads[i].indices where frozen[i][j] { grads[i][j] = 0 } }
            }
            if gradientClip > 0 { GradientClipping.clipGlobalNorm(&grads, maxNorm: gradientClip) }
            let before = options.frozen == nil ? nil : network.parameters
            optimizer.update(&network.parameters, gradients: grads)
            if let frozen = options.frozen, let before {
                // Weight decay would still move frozen values: put them back exactly.
                for i in frozen.indices { for j in frozen[i].indices where frozen[i][j] { network.parameters[i].values[j] = before[i].values[j] } }
            }
            total += loss
            batches += 1
        }
        return batches == 0 ? 0 : total / Double(batches)
    }
}

/// Extras of local training used by federated clients: a FedProx proximal term, frozen
/// parameters (growing the federation) and distillation towards a frozen teacher network.
public struct LocalTrainingOptions: Sendable {
    /// μ of the proximal term μ/2·‖θ − anchor‖² (0 = plain FedAvg).
    public var proximalMu: Float = 0
    public var proximalAnchor: [Tensor]?
    /// Per tensor, per element: true keeps the value fixed.
    public var frozen: [[Bool]]?
    public var teacher: MLPNetwork?
    public var distillationWeight: Float = 0

    public init(proximalMu: Float = 0, proximalAnchor: [Tensor]? = nil, frozen: [[Bool]]? = nil,
                teacher: MLPNetwork? = nil, distillationWeight: Float = 0) {
        self.proximalMu = proximalMu
        self.proximalAnchor = proximalAnchor
        self.frozen = frozen
        self.teacher = teacher
        self.distillationWeight = distillationWeight
    }

    func validate(against network: MLPNetwork) throws {
        let shapes = network.parameters.map(\.count)
        guard proximalMu >= 0, proximalMu.isFinite, distillationWeight >= 0, distillationWeight.isFinite else {
            throw RouterError.invalidConfiguration("proximal μ and distillation weight must be finite and ≥ 0")
        }
        if let a = proximalAnchor, a.map(\.count) != shapes {
            throw RouterError.invalidConfiguration("proximal anchor shapes \(a.map(\.count)) differ from the network's \(shapes)")
        }
        if let f = frozen, f.map(\.count) != shapes {
            throw RouterError.invalidConfiguration("freeze mask shapes \(f.map(\.count)) differ from the network's \(shapes)")
        }
        if let t = teacher, t.architecture.modelCount != network.architecture.modelCount || t.architecture.inputDimension != network.architecture.inputDimension {
            throw RouterError.invalidConfiguration("distillation teacher has \(t.architecture.modelCount) models × \(t.architecture.inputDimension) inputs, the student \(network.architecture.modelCount) × \(network.architecture.inputDimension)")
        }
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
