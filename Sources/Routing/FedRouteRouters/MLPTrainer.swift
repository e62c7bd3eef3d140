import FedRouteData
import FedRouteNumerics

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
    /// `linear` trains the MF-Router's bilinear network (`MFRouter`).
    public var trunk = TrunkKind.gelu

    public init() {}

    /// The MF-Router's defaults: one linear projection to a rank-64 query embedding, no dropout,
    /// a higher learning rate and stronger weight decay (it pulls scores towards the per-model prior).
    public static var matrixFactorization: MLPTrainingConfiguration {
        var c = MFRouter.settings(MLPTrainingConfiguration())
        c.hiddenDimension = 64
        c.optimizer = AdamWConfiguration(learningRate: 3e-3, weightDecay: 1e-2)
        return c
    }

    enum CodingKeys: String, CodingKey { case hiddenDimension, trunkLayers, dropout, epochs, batchSize, optimizer, gradientClip, seed, trunk }

    public init(from decoder: any Decoder) throws {
        let k = try decoder.container(keyedBy: CodingKeys.self)
        hiddenDimension = try k.decode(Int.self, forKey: .hiddenDimension)
        trunkLayers = try k.decode(Int.self, forKey: .trunkLayers)
        dropout = try k.decode(Float.self, forKey: .dropout)
        epochs = try k.decode(Int.self, forKey: .epochs)
        batchSize = try k.decode(Int.self, forKey: .batchSize)
        optimizer = try k.decode(AdamWConfiguration.self, forKey: .optimizer)
        gradientClip = try k.decode(Float.self, forKey: .gradientClip)
        seed = try k.decode(UInt64.self, forKey: .seed)
        trunk = try k.decodeIfPresent(TrunkKind.self, forKey: .trunk) ?? .gelu
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
    /// Trains an MLP-Router on the observed cells of `table` (features row-aligned with it). With
    /// `validation`, returns the epoch whose network had the lowest Brier score on it (best-epoch
    /// selection, the centralized counterpart of the federation's best-round selection).
    public static func train(features: Matrix, table: EvaluationTable, configuration c: MLPTrainingConfiguration,
                             validation: ModelSelection.Validation? = nil, progress: ProgressHandler? = nil) throws -> MLPRouter {
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
                                           modelCount: table.modelCount, dropout: c.dropout, trunk: c.trunk)
        try architecture.validate()
        var rng = SeededRandom(seed: c.seed)
        var network = MLPNetwork(architecture: architecture, seed: rng.next())
        network.setScorePriors(normalizer.scoreMean ?? [])
        var optimizer = AdamW(configuration: c.optimizer, shapes: network.parameters.map(\.count), decayMask: network.decayMask)
        var best: (brier: Double, parameters: [Tensor])?
        var gradients: [[Float]] = []
        for epoch in 0..<c.epochs {
            let loss = try runEpoch(network: &network, optimizer: &optimizer, data: data, rows: data.trainableRows,
                                    batchSize: c.batchSize, gradientClip: c.gradientClip, rng: &rng, gradients: &gradients)
            if let validation, let brier = try ModelSelection.brier(MLPRouter(models: table.models, network: network, costNormalizer: normalizer), on: validation),
               brier < best?.brier ?? .infinity {
                best = (brier, network.parameters)
            }
            progress?(TrainingProgress(stage: "MLP epoch", step: epoch + 1, total: c.epochs, loss: loss))
        }
        if let best { network.parameters = best.parameters }
        return try MLPRouter(models: table.models, network: network, costNormalizer: normalizer)
    }

    /// One pass over `rows` in shuffled mini-batches; returns the mean batch loss.
    public static func runEpoch(network: inout MLPNetwork, optimizer: inout AdamW, data: MLPTrainingSet, rows: [Int],
                                batchSize: Int, gradientClip: Float, rng: inout SeededRandom,
                                options: LocalTrainingOptions = LocalTrainingOptions()) throws -> Double {
        var gradients: [[Float]] = []
        return try runEpoch(network: &network, optimizer: &optimizer, data: data, rows: rows, batchSize: batchSize,
                            gradientClip: gradientClip, rng: &rng, options: options, gradients: &gradients)
    }

    /// `runEpoch` with the gradient buffer of the caller, reused for every batch and, across calls,
    /// for every epoch: fresh multi-megabyte arrays cost page faults, and a small client's epoch is
    /// a single batch. Its contents on entry do not matter.
    public static func runEpoch(network: inout MLPNetwork, optimizer: inout AdamW, data: MLPTrainingSet, rows: [Int],
                                batchSize: Int, gradientClip: Float, rng: inout SeededRandom,
                                options: LocalTrainingOptions = LocalTrainingOptions(), gradients grads: inout [[Float]]) throws -> Double {
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
            let loss = network.lossAndGradients(x, t, training: true, rng: &rng, into: &grads)
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
