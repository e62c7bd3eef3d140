import FedRouteData
import FedRouteNumerics

/// Per-model standardisation of log-cost: c̃ = clamp((log1p(cost) − μ_m)/σ_m, −3, 3).
public struct CostNormalizer: Sendable, Codable, Equatable {
    public var mean: [Double]
    public var std: [Double]
    public static let clampLimit = 3.0

    public init(mean: [Double], std: [Double]) {
        self.mean = mean
        self.std = std
    }

    /// Fits μ_m and σ_m on the observed cells of `table`; a model with fewer than two observations
    /// uses the statistics pooled over all models.
    public init(fitting table: EvaluationTable) {
        var pooled: [Double] = []
        var perModel = Array(repeating: [Double](), count: table.modelCount)
        for r in 0..<table.queryCount {
            for m in 0..<table.modelCount where table.isObserved(r, m) {
                let v = Scalar.log1p(table.costs[table.index(r, m)])
                perModel[m].append(v)
                pooled.append(v)
            }
        }
        func stats(_ xs: [Double]) -> (Double, Double) {
            let mu = xs.reduce(0, +) / Double(max(1, xs.count))
            let variance = xs.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(max(1, xs.count))
            return (mu, max(variance.squareRoot(), 1e-12))
        }
        let global = stats(pooled)
        let s = perModel.map { $0.count >= 2 ? stats($0) : global }
        mean = s.map(\.0)
        std = s.map(\.1)
    }

    public func normalized(cost: Double, model m: Int) -> Float {
        Float(min(Self.clampLimit, max(-Self.clampLimit, (Scalar.log1p(cost) - mean[m]) / std[m])))
    }

    public func cost(normalized value: Float, model m: Int) -> Double {
        let v = min(Self.clampLimit, max(-Self.clampLimit, Double(value)))
        return max(0, Scalar.expm1(v * std[m] + mean[m]))
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
        guard network.architecture.modelCount == models.count, costNormalizer.mean.count == models.count, costNormalizer.std.count == models.count else {
            throw RouterError.invalidConfiguration("MLP-Router for \(models.count) models has \(network.architecture.modelCount) heads and \(costNormalizer.mean.count) cost statistics")
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
        return RouterPredictions(models: models, rows: features.rows, score: score.data.map(Double.init), cost: c,
                                 available: Array(repeating: true, count: c.count))
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
        guard c.epochs >= 0, c.batchSize >= 1, c.hiddenDimension >= 1, c.trunkLayers >= 1, (0..<1).contains(c.dropout) else {
            throw RouterError.invalidConfiguration("epochs ≥ 0, batch size ≥ 1, hidden ≥ 1, layers ≥ 1 and dropout in [0, 1) required")
        }
        let normalizer = CostNormalizer(fitting: table)
        let data = try MLPTrainingSet(features: features, table: table, normalizer: normalizer)
        guard !data.trainableRows.isEmpty else { throw RouterError.noTrainingData("no observed (query, model) cells") }
        let architecture = MLPArchitecture(inputDimension: features.cols, hiddenDimension: c.hiddenDimension, trunkLayers: c.trunkLayers,
                                           modelCount: table.modelCount, dropout: c.dropout)
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
                                batchSize: Int, gradientClip: Float, rng: inout SeededRandom) throws -> Double {
        var order = rows
        rng.shuffle(&order)
        var total = 0.0
        var batches = 0
        var start = 0
        while start < order.count {
            let batchRows = Array(order[start..<min(order.count, start + batchSize)])
            start += batchSize
            let (x, t) = data.batch(batchRows)
            var (loss, grads) = network.lossAndGradients(x, t, training: true, rng: &rng)
            guard loss.isFinite else { throw RouterError.diverged("loss became \(loss) after \(batches) batches") }
            if gradientClip > 0 { GradientClipping.clipGlobalNorm(&grads, maxNorm: gradientClip) }
            optimizer.update(&network.parameters, gradients: grads)
            total += loss
            batches += 1
        }
        return batches == 0 ? 0 : total / Double(batches)
    }
}
