import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

extension FederationCoordinator {
    // MARK: MLP-Router

    /// Trains a federated MLP-Router from scratch: describe → shared cost normaliser → rounds.
    ///
    /// With `resume`, the rounds it records are skipped and training goes on from its parameters;
    /// `beforeRound` is called as each round starts and `checkpoint` after every round with the state to
    /// resume from (between the two is what a round costs, as the network job times it).
    public func trainMLP(_ configuration: FederatedMLPConfiguration, resume: MLPTrainingState? = nil,
                         beforeRound: (@Sendable (Int) async throws -> Void)? = nil,
                         checkpoint: Checkpoint? = nil, progress: ProgressHandler? = nil) async throws -> (router: MLPRouter, rounds: [RoundReport]) {
        try configuration.validate()
        let descriptions = try await describe()
        guard let dim = descriptions[0].featureDimension, descriptions.allSatisfy({ $0.featureDimension == dim }) else {
            throw FederationError.invalidConfiguration("every client must have featurised its data with the same encoder (send useEncoder first)")
        }
        let normalizer = try await costNormalizer(models: descriptions[0].models.count)
        let initial = try Self.initialMLP(configuration, models: descriptions[0].models, featureDimension: dim, normalizer: normalizer)
        return try await continueMLP(initial, configuration, descriptions: descriptions, resume: resume, beforeRound: beforeRound,
                                     checkpoint: checkpoint, progress: progress)
    }

    /// The untrained router `trainMLP` starts from (seeded by `configuration.seed`).
    public static func initialMLP(_ configuration: FederatedMLPConfiguration, models: [String], featureDimension: Int,
                                  normalizer: CostNormalizer) throws -> MLPRouter {
        let architecture = configuration.architecture(inputDimension: featureDimension, modelCount: models.count)
        try architecture.validate()
        var rng = SeededRandom(seed: configuration.seed)
        var network = MLPNetwork(architecture: architecture, seed: rng.next())
        // The score prior comes from the pooled score sums (clients built before them send none).
        network.setScorePriors(normalizer.scoreMean ?? [])
        return try MLPRouter(models: models, network: network, costNormalizer: normalizer)
    }

    /// Called after every MLP round with the state to resume from.
    public typealias Checkpoint = @Sendable (MLPTrainingState) async throws -> Void

    /// Runs FedAvg rounds starting from `router` (continuing, growing or fine-tuning it).
    ///
    /// `teacher` adds distillation towards a frozen network (with `local.distillationWeight`);
    /// `local.trainModelsFrom` freezes the trunk and the heads of the models before that index.
    public func continueMLP(_ router: MLPRouter, _ configuration: FederatedMLPConfiguration, teacher: MLPNetwork? = nil,
                            descriptions known: [ClientDescription]? = nil, resume: MLPTrainingState? = nil,
                            beforeRound: (@Sendable (Int) async throws -> Void)? = nil,
                            checkpoint: Checkpoint? = nil, progress: ProgressHandler? = nil) async throws -> (router: MLPRouter, rounds: [RoundReport]) {
        try configuration.validate()
        let descriptions: [ClientDescription]
        if let known { descriptions = known } else { descriptions = try await describe() }
        guard descriptions[0].models == router.models else { throw RouterError.modelMismatch(expected: router.models, got: descriptions[0].models) }
        if let teacher, teacher.architecture != router.network.architecture {
            throw FederationError.invalidConfiguration("the distillation teacher's architecture differs from the router's")
        }
        var network = router.network
        var state = MLPTrainingState(completedRounds: 0, parameters: network.parameters,
                                     server: FederatedOptimizerState(configuration.server, shapes: network.parameters.map(\.count)),
                                     reports: [], accountant: configuration.privacy == nil ? nil : PrivacyAccountant())
        if let resume {
            try resume.checkResumable(parameters: state.parameters, configuration: configuration)
            state = resume
            network.parameters = resume.parameters
        }
        let n = clients.count
        for round in stride(from: state.completedRounds + 1, through: configuration.rounds, by: 1) {
            try await beforeRound?(round)
            let (sampled, seeds, perRound) = Self.roundPlan(configuration, clients: n, round: round)
            let parameters = network.parameters
            let task = { (i: Int, participants: [SecureAggregationParticipant]?) in
                MLPRoundTask(round: round, architecture: network.architecture, parameters: parameters, costNormalizer: router.costNormalizer,
                             settings: configuration.local, teacher: teacher?.parameters, seed: seeds[i]!,
                             privacy: configuration.privacy.map { UpdatePrivacy(clipNorm: $0.clipNorm, noiseStd: $0.noiseMultiplier * $0.clipNorm / Double(perRound).squareRoot()) },
                             secureAggregation: participants)
            }
            var outcome = configuration.secureAggregation
                ? try await secureRound(round, sampled: sampled, parameters: parameters, configuration: configuration, perRound: perRound,
                                        descriptions: descriptions, task: task)
                : await plainRound(round, sampled: sampled, parameters: parameters, configuration: configuration, perRound: perRound,
                                   descriptions: descriptions, task: task)
            if let average = outcome.average {
                state.server.apply(average, to: &network.parameters)
                if let dp = configuration.privacy, var accountant = state.accountant {
                    // Only the noise of the clients whose updates arrived is in the sum.
                    let sigma = dp.noiseMultiplier * (Double(outcome.report.aggregated.count) / Double(perRound)).squareRoot()
                    let q = Double(perRound) / Double(n)
                    accountant.addRound(samplingRate: q, noiseMultiplier: sigma)
                    state.accountant = accountant
                    outcome.report.privacy = PrivacyReport(samplingRate: q, effectiveNoiseMultiplier: sigma,
                                                           epsilon: accountant.epsilon(delta: dp.delta), delta: dp.delta)
                }
            }
            if configuration.selectBestRound == true {
                let candidate = ValidationCandidate.network(architecture: network.architecture, parameters: network.parameters,
                                                            costNormalizer: router.costNormalizer)
                let (statistics, _) = await validate(candidate, descriptions: descriptions)
                if let brier = statistics.brier {
                    outcome.report.validationBrier = brier
                    outcome.report.validationCells = statistics.cells
                    if brier < state.best?.brier ?? .infinity { state.best = BestRound(round: round, brier: brier, parameters: network.parameters) }
                }
            }
            state.reports.append(outcome.report)
            state.completedRounds = round
            state.parameters = network.parameters
            try await checkpoint?(state)
            progress?(TrainingProgress(stage: "FedAvg round", step: round, total: configuration.rounds, loss: outcome.report.meanLoss))
        }
        // With selection, the best validated round's model (the last round's when no client held rows out).
        if let best = state.best { network.parameters = best.parameters }
        return (try MLPRouter(models: router.models, network: network, costNormalizer: router.costNormalizer), state.reports)
    }

    /// Which of `clients` clients round `round` samples (sorted indices), each one's training seed,
    /// and the number sampled: a pure function of the configuration's seed, so any engine that runs
    /// the rounds (this coordinator, a Flower strategy) can give every client the same seed.
    public static func roundPlan(_ configuration: FederatedMLPConfiguration, clients n: Int, round: Int) -> (sampled: [Int], seeds: [Int: UInt64], perRound: Int) {
        let perRound = min(n, max(configuration.minimumClients, Int((configuration.participation * Double(n)).rounded())))
        var roundRNG = SeededRandom(seed: configuration.seed).derived(0x5A3_9131).derived(UInt64(round))
        let sampled = roundRNG.permutation(n).prefix(perRound).sorted()
        let seeds = Dictionary(uniqueKeysWithValues: sampled.map { ($0, roundRNG.derivedSeed(UInt64($0) &+ 1)) })
        return (sampled, seeds, perRound)
    }

    /// A round whose updates arrive in the clear: each is checked, then averaged by sample count
    /// (or, under DP, summed and divided by the number of sampled clients).
    func plainRound(_ round: Int, sampled: [Int], parameters: [Tensor], configuration: FederatedMLPConfiguration, perRound: Int,
                    descriptions: [ClientDescription], task: (Int, [SecureAggregationParticipant]?) -> MLPRoundTask) async -> RoundOutcome {
        let tasks = Dictionary(uniqueKeysWithValues: sampled.map { ($0, task($0, nil)) })
        var rejected: [String: String] = [:]
        var accepted: [(id: String, weight: Double, loss: Double, samples: Int)] = []
        // Σ w·Δ, folded in client order as replies come in (in Double), so that only the running sum
        // and not every sampled client's update is held: memory does not grow with the clients sampled.
        var weightedSum: [[Double]] = []
        await ask(sampled, { .trainMLP(tasks[$0]!) }) { i, result in
            let id = clients[i].id
            switch result {
            case .failure(let error): rejected[id] = "\(error)"
            case .success(let reply):
                guard case .mlpUpdate(let u) = reply else { rejected[id] = "unexpected reply \(reply.kind)"; return }
                if let why = Self.problem(with: u, round: round, parameters: parameters, maxSamples: descriptions[i].trainableQueries,
                                          maxNorm: configuration.maxUpdateNorm) {
                    rejected[id] = why
                } else if u.sampleCount > 0 {
                    let w = configuration.privacy == nil ? Double(u.sampleCount) : 1
                    if weightedSum.isEmpty { weightedSum = parameters.map { [Double](repeating: 0, count: $0.count) } }
                    for t in weightedSum.indices { Self.accumulate(u.delta[t].values, weight: w, into: &weightedSum[t]) }
                    accepted.append((id, w, u.meanLoss, u.sampleCount))
                }
            }
        }
        let total = accepted.reduce(0) { $0 + $1.weight }
        var report = RoundReport(round: round, sampled: sampled.map { clients[$0].id }, aggregated: [], rejected: rejected, meanLoss: nil, samples: 0)
        guard accepted.count >= configuration.minimumClients, total > 0 else { return RoundOutcome(average: nil, report: report) }
        // DP-FedAvg divides by the fixed number sampled, so one client's influence stays ≤ C/k.
        let denominator = configuration.privacy == nil ? total : Double(perRound)
        let average = weightedSum.map { Self.divide($0, by: denominator) }
        report.aggregated = accepted.map(\.id)
        report.meanLoss = accepted.reduce(0) { $0 + $1.weight * $1.loss } / total
        report.samples = accepted.reduce(0) { $0 + $1.samples }
        return RoundOutcome(average: average, report: report)
    }

    /// `sum[j] += weight · values[j]` (in Double), over the cores for large tensors (the same operations for
    /// each element whatever the split).
    static func accumulate(_ values: [Float], weight: Double, into sum: inout [Double]) {
        precondition(values.count == sum.count, "screened updates have the parameters' shapes")
        values.withUnsafeBufferPointer { v in
            sum.withUnsafeMutableBufferPointer { s in
                guard let v = v.baseAddress, let s = s.baseAddress else { return }
                let shared = RowParallel.Shared((v, s))
                RowParallel.forEachRange(count: values.count, minimumPerPart: FederatedOptimizerState.minimumPerPart) { range in
                    let (v, s) = shared.value
                    for j in range { s[j] += weight * Double(v[j]) }
                }
            }
        }
    }

    /// `Float(sum[j] / denominator)` for every element, over the cores for large tensors.
    static func divide(_ sum: [Double], by denominator: Double) -> [Float] {
        [Float](unsafeUninitializedCapacity: sum.count) { out, initialized in
            sum.withUnsafeBufferPointer { s in
                guard let s = s.baseAddress, let o = out.baseAddress else { return }
                let shared = RowParallel.Shared((s, o))
                RowParallel.forEachRange(count: sum.count, minimumPerPart: FederatedOptimizerState.minimumPerPart) { range in
                    let (s, o) = shared.value
                    for j in range { o[j] = Float(s[j] / denominator) }
                }
            }
            initialized = sum.count
        }
    }

    /// Why an update cannot enter the average, or nil if it can: its round, tensor names and shapes,
    /// finite values, norm, sample count (at most what the client described) and loss are checked.
    public static func problem(with u: MLPUpdate, round: Int, parameters: [Tensor], maxSamples: Int, maxNorm: Double = .infinity) -> String? {
        guard u.round == round else { return "update for round \(u.round) in round \(round)" }
        guard u.delta.count == parameters.count else { return "\(u.delta.count) tensors, expected \(parameters.count)" }
        var squared = 0.0
        for (d, p) in zip(u.delta, parameters) {
            guard d.name == p.name, d.shape == p.shape, d.values.count == p.values.count else {
                return "tensor \(d.name) \(d.shape) where \(p.name) \(p.shape) was expected"
            }
            // One pass: a NaN or infinity makes the tensor's sum of squares non-finite.
            let s = d.values.withUnsafeBufferPointer(VectorMath.sumOfSquares)
            guard s.isFinite else { return "tensor \(d.name) contains NaN or infinity" }
            squared += s
        }
        guard squared.squareRoot() <= maxNorm else { return "update norm \(squared.squareRoot()) exceeds the limit \(maxNorm)" }
        guard u.sampleCount >= 0, u.sampleCount <= maxSamples else { return "claims \(u.sampleCount) samples, the client described \(maxSamples)" }
        guard u.meanLoss.isFinite else { return "loss \(u.meanLoss)" }
        return nil
    }
}

extension MLPRoundTask {
    var asRequest: FederatedRequest { .trainMLP(self) }
}
