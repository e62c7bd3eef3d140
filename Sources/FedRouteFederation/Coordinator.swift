import FedRouteData
import Foundation
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters

/// How the server turns the averaged client delta into the next global model.
public enum ServerOptimizer: Sendable, Codable, Equatable {
    /// θ ← θ + η·Δ̄ (η = 1 is plain FedAvg).
    case fedAvg(learningRate: Float)
    /// FedAdam (Reddi et al., 2021): Adam on the pseudo-gradient −Δ̄ with adaptivity τ.
    case fedAdam(learningRate: Float, beta1: Float, beta2: Float, tau: Float)

    public static let plain = ServerOptimizer.fedAvg(learningRate: 1)
    public static let adam = ServerOptimizer.fedAdam(learningRate: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3)
}

/// Settings of federated MLP-Router training (FedAvg / FedProx / FedAdam).
public struct FederatedMLPConfiguration: Sendable, Codable, Equatable {
    public var rounds = 5
    /// Fraction of clients sampled per round (at least `minimumClients`).
    public var participation = 0.6
    public var minimumClients = 1
    public var local = LocalTrainingSettings()
    public var server = ServerOptimizer.plain
    public var hiddenDimension = 512
    public var trunkLayers = 2
    public var dropout: Float = 0.1
    public var seed: UInt64 = 0
    /// DP-FedAvg: client-side clipping and Gaussian noise, with an (ε, δ) accountant (nil = off).
    public var privacy: DifferentialPrivacy?
    /// Pairwise-masked secure aggregation of the updates (the coordinator sees only their sum).
    public var secureAggregation = false
    /// Updates (or, under secure aggregation, the mean update) with a larger L2 norm are rejected.
    public var maxUpdateNorm = 1_000.0

    public init() {}

    func validate() throws {
        try privacy?.validate()
        guard maxUpdateNorm > 0 else { throw FederationError.invalidConfiguration("the update norm limit must be > 0") }
        guard rounds >= 0, (0...1).contains(participation), participation > 0, minimumClients >= 1,
              hiddenDimension >= 1, trunkLayers >= 1, (0..<1).contains(dropout), local.epochs >= 0, local.batchSize >= 1
        else { throw FederationError.invalidConfiguration("rounds ≥ 0, participation in (0, 1], minimum clients ≥ 1, hidden ≥ 1, layers ≥ 1, dropout in [0, 1), epochs ≥ 0, batch ≥ 1 required") }
    }
}

/// Settings of the two-pass federated K-Means-Router.
public struct FederatedKMeansConfiguration: Sendable, Codable, Equatable {
    public var localClusters = 15
    public var globalClusters = 20
    public var restarts = 4
    public var maxIterations = 100
    public var initialization = KMeansConfiguration.Initialization.kMeansPlusPlus
    public var seed: UInt64 = 0

    public init() {}

    /// The k-means settings for one run with `clusters` centres.
    public func kmeans(clusters: Int, seed: UInt64) -> KMeansConfiguration {
        var c = KMeansConfiguration(clusters: clusters)
        c.restarts = restarts; c.maxIterations = maxIterations; c.initialization = initialization; c.seed = seed
        return c
    }
}

/// What happened in one FedAvg round.
public struct RoundReport: Sendable, Codable, Equatable {
    public var round: Int
    public var sampled: [String]
    /// Clients whose update entered the average.
    public var aggregated: [String]
    /// Client id → why its reply was dropped (error, invalid update).
    public var rejected: [String: String]
    /// Sample-weighted mean of the clients' local training losses.
    public var meanLoss: Double?
    public var samples: Int
    /// Privacy spent so far, under DP-FedAvg.
    public var privacy: PrivacyReport?
    /// Who took part in secure aggregation, under it.
    public var secureAggregation: SecureAggregationReport?
}

/// The secure-aggregation side of a round.
public struct SecureAggregationReport: Sendable, Codable, Equatable {
    /// Clients that sent a key and were told to mask for each other.
    public var listed: [String]
    /// Listed clients whose masked update never arrived.
    public var dropped: [String]
    /// Survivors that revealed their pair keys with the dropped clients.
    public var revealedBy: [String]
}

/// Everything needed to resume federated MLP training after the last completed round.
public struct MLPTrainingState: Sendable, Codable {
    public var completedRounds: Int
    public var parameters: [Tensor]
    public var server: ServerState
    public var reports: [RoundReport]
    public var accountant: PrivacyAccountant?
}

/// A round's result: the mean delta to apply (nil = the round is skipped) and its report.
struct RoundOutcome {
    var average: [[Float]]?
    var report: RoundReport
}

/// What happened in federated k-means.
public struct KMeansFederationReport: Sendable, Codable, Equatable {
    public var localCentroids: [String: Int]
    public var withheldClusters: Int
    public var globalClusters: Int
    public var inertia: Double
    public var rejected: [String: String]
}

/// The server side of every federated algorithm, written only against `FederatedClient`.
///
/// Clients are asked one at a time by default (`maxConcurrentRequests`), which keeps in-process
/// simulations bit-reproducible; a network deployment raises it. Replies are always combined in
/// client order, so results do not depend on arrival order.
public struct FederationCoordinator: Sendable {
    public let clients: [any FederatedClient]
    public var maxConcurrentRequests: Int

    public init(clients: [any FederatedClient], maxConcurrentRequests: Int = 1) throws {
        guard !clients.isEmpty else { throw FederationError.notEnoughClients("a federation needs at least one client") }
        let ids = clients.map(\.id)
        guard Set(ids).count == ids.count else { throw FederationError.invalidConfiguration("client ids must be unique: \(ids)") }
        self.clients = clients
        self.maxConcurrentRequests = max(1, maxConcurrentRequests)
    }

    // MARK: Messaging

    /// Sends `request(i)` to each client index in `indices`; results in the order of `indices`.
    func ask(_ indices: [Int], _ request: @Sendable (Int) -> FederatedRequest) async -> [(index: Int, result: Result<FederatedReply, any Error>)] {
        let requests = indices.map { (index: $0, client: clients[$0], request: request($0)) }
        var results: [Int: Result<FederatedReply, any Error>] = [:]
        await withTaskGroup(of: (Int, Result<FederatedReply, any Error>).self) { group in
            var pending = requests[...]
            var running = 0
            while running < maxConcurrentRequests, let job = pending.popFirst() {
                group.addTask { await Self.call(job.client, job.request, index: job.index) }
                running += 1
            }
            for await (i, r) in group {
                results[i] = r
                if let job = pending.popFirst() {
                    group.addTask { await Self.call(job.client, job.request, index: job.index) }
                }
            }
        }
        return indices.map { ($0, results[$0]!) }
    }

    static func call(_ client: any FederatedClient, _ request: FederatedRequest, index: Int) async -> (Int, Result<FederatedReply, any Error>) {
        do { return (index, .success(try await client.handle(request))) } catch { return (index, .failure(error)) }
    }

    /// Asks every client and requires every one to answer with the expected reply case.
    func askAll<T>(_ request: FederatedRequest, _ extract: (FederatedReply) -> T?) async throws -> [T] {
        try await ask(Array(clients.indices), { _ in request }).map { index, result in
            let id = clients[index].id
            let reply: FederatedReply
            do { reply = try result.get() } catch { throw FederationError.invalidReply(client: id, "\(error)") }
            guard let value = extract(reply) else { throw FederationError.invalidReply(client: id, "unexpected reply \(reply.kind)") }
            return value
        }
    }

    // MARK: Setup

    /// The clients' descriptions; all must hold the same models.
    public func describe() async throws -> [ClientDescription] {
        let d = try await askAll(.describe) { if case .description(let v) = $0 { return v }; return nil }
        for (i, x) in d.enumerated() {
            guard x.models == d[0].models else {
                throw FederationError.invalidReply(client: clients[i].id, "models \(x.models) differ from \(clients[0].id)'s \(d[0].models)")
            }
            guard x.trainQueries >= x.trainableQueries, x.trainableQueries >= 0, x.observedCells >= x.trainableQueries,
                  x.observedCells <= x.trainQueries * x.models.count else {
                throw FederationError.invalidReply(client: clients[i].id, "inconsistent counts: \(x.trainQueries) queries, \(x.trainableQueries) trainable, \(x.observedCells) observed cells")
            }
        }
        return d
    }

    /// A hashed TF-IDF encoder whose IDF is fitted on the union of all clients' training texts,
    /// from summed document counts only.
    public func fitHashedEncoder(_ configuration: HashedTFIDFEncoder.Configuration) async throws -> HashedTFIDFEncoder {
        let parts = try await askAll(.documentFrequencies(configuration)) { if case .documentFrequencies(let v) = $0 { return v }; return nil }
        var total = DocumentFrequencies(documents: 0, counts: Array(repeating: 0, count: configuration.dimension))
        for (i, p) in parts.enumerated() {
            guard p.counts.count == configuration.dimension, p.documents >= 0, p.counts.allSatisfy({ $0 >= 0 && $0 <= p.documents }) else {
                throw FederationError.invalidReply(client: clients[i].id, "document counts of dimension \(p.counts.count) for \(p.documents) documents")
            }
            total = total + p
        }
        return try HashedTFIDFEncoder(configuration: configuration, documentFrequencies: total)
    }

    /// Tells every client which encoder to use; returns the feature dimension.
    public func useEncoder(_ spec: EncoderSpec) async throws -> Int {
        let dims = try await askAll(.useEncoder(spec)) { if case .encoderReady(let d) = $0 { return d }; return nil }
        let expected = spec.dimension
        if let bad = dims.firstIndex(where: { $0 != expected }) {
            throw FederationError.invalidReply(client: clients[bad].id, "features of dimension \(dims[bad]), expected \(expected)")
        }
        return expected
    }

    /// The shared cost normaliser, from summed log-cost moments.
    public func costNormalizer(models: Int) async throws -> CostNormalizer {
        let parts = try await askAll(.costMoments) { if case .costMoments(let v) = $0 { return v }; return nil }
        var total = CostMoments(models: models)
        for (i, p) in parts.enumerated() {
            let arrays = [p.count, p.sum, p.sumSquares]
            guard arrays.allSatisfy({ $0.count == models && $0.allSatisfy(\.isFinite) }), p.count.allSatisfy({ $0 >= 0 }) else {
                throw FederationError.invalidReply(client: clients[i].id, "cost moments are not \(models) finite values each")
            }
            total = total + p
        }
        return CostNormalizer(moments: total)
    }

    // MARK: MLP-Router

    /// Trains a federated MLP-Router from scratch: describe → shared cost normaliser → rounds.
    ///
    /// With `resume`, the rounds it records are skipped and training goes on from its parameters;
    /// `checkpoint` is called after every round with the state to resume from.
    public func trainMLP(_ configuration: FederatedMLPConfiguration, resume: MLPTrainingState? = nil,
                         checkpoint: Checkpoint? = nil, progress: ProgressHandler? = nil) async throws -> (router: MLPRouter, rounds: [RoundReport]) {
        try configuration.validate()
        let descriptions = try await describe()
        guard let dim = descriptions[0].featureDimension, descriptions.allSatisfy({ $0.featureDimension == dim }) else {
            throw FederationError.invalidConfiguration("every client must have featurised its data with the same encoder (send useEncoder first)")
        }
        let normalizer = try await costNormalizer(models: descriptions[0].models.count)
        let initial = try Self.initialMLP(configuration, models: descriptions[0].models, featureDimension: dim, normalizer: normalizer)
        return try await continueMLP(initial, configuration, descriptions: descriptions, resume: resume, checkpoint: checkpoint, progress: progress)
    }

    /// The untrained router `trainMLP` starts from (seeded by `configuration.seed`).
    public static func initialMLP(_ configuration: FederatedMLPConfiguration, models: [String], featureDimension: Int,
                                  normalizer: CostNormalizer) throws -> MLPRouter {
        let architecture = MLPArchitecture(inputDimension: featureDimension, hiddenDimension: configuration.hiddenDimension,
                                           trunkLayers: configuration.trunkLayers, modelCount: models.count, dropout: configuration.dropout)
        var rng = SeededRandom(seed: configuration.seed)
        return try MLPRouter(models: models, network: MLPNetwork(architecture: architecture, seed: rng.next()), costNormalizer: normalizer)
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
                                     server: ServerState(configuration.server, shapes: network.parameters.map(\.count)),
                                     reports: [], accountant: configuration.privacy == nil ? nil : PrivacyAccountant())
        if let resume {
            guard resume.parameters.count == state.parameters.count,
                  zip(resume.parameters, state.parameters).allSatisfy({ $0.name == $1.name && $0.shape == $1.shape }),
                  resume.server.optimizer == configuration.server, resume.completedRounds <= configuration.rounds,
                  (resume.accountant == nil) == (configuration.privacy == nil) else {
                throw FederationError.invalidConfiguration("the checkpoint does not fit this model and configuration")
            }
            state = resume
            network.parameters = resume.parameters
        }
        let n = clients.count
        let perRound = min(n, max(configuration.minimumClients, Int((configuration.participation * Double(n)).rounded())))
        let sampler = SeededRandom(seed: configuration.seed).derived(0x5A3_9131)
        for round in stride(from: state.completedRounds + 1, through: configuration.rounds, by: 1) {
            try await beforeRound?(round)
            var roundRNG = sampler.derived(UInt64(round))
            let sampled = roundRNG.permutation(n).prefix(perRound).sorted()
            let seeds = Dictionary(uniqueKeysWithValues: sampled.map { ($0, roundRNG.derivedSeed(UInt64($0) &+ 1)) })
            let parameters = network.parameters
            let task = { (i: Int, participants: [SecureAggregationParticipant]?) in
                MLPRoundTask(round: round, architecture: network.architecture, parameters: parameters, costNormalizer: router.costNormalizer,
                             settings: configuration.local, teacher: teacher?.parameters, seed: seeds[i]!,
                             privacy: configuration.privacy.map { UpdatePrivacy(clipNorm: $0.clipNorm, noiseStd: $0.noiseMultiplier * $0.clipNorm / Double(perRound).squareRoot()) },
                             secureAggregation: participants)
            }
            var outcome = configuration.secureAggregation
                ? try await secureRound(round, sampled: sampled, parameters: parameters, configuration: configuration, perRound: perRound, task: task)
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
            state.reports.append(outcome.report)
            state.completedRounds = round
            state.parameters = network.parameters
            try await checkpoint?(state)
            progress?(TrainingProgress(stage: "FedAvg round", step: round, total: configuration.rounds, loss: outcome.report.meanLoss))
        }
        return (try MLPRouter(models: router.models, network: network, costNormalizer: router.costNormalizer), state.reports)
    }

    /// A round whose updates arrive in the clear: each is checked, then averaged by sample count
    /// (or, under DP, summed and divided by the number of sampled clients).
    func plainRound(_ round: Int, sampled: [Int], parameters: [Tensor], configuration: FederatedMLPConfiguration, perRound: Int,
                    descriptions: [ClientDescription], task: (Int, [SecureAggregationParticipant]?) -> MLPRoundTask) async -> RoundOutcome {
        let tasks = Dictionary(uniqueKeysWithValues: sampled.map { ($0, task($0, nil)) })
        let replies = await ask(sampled) { .trainMLP(tasks[$0]!) }
        var rejected: [String: String] = [:]
        var accepted: [(id: String, weight: Double, update: MLPUpdate)] = []
        for (i, result) in replies {
            let id = clients[i].id
            switch result {
            case .failure(let error): rejected[id] = "\(error)"
            case .success(let reply):
                guard case .mlpUpdate(let u) = reply else { rejected[id] = "unexpected reply \(reply.kind)"; continue }
                if let why = Self.problem(with: u, round: round, parameters: parameters, maxSamples: descriptions[i].trainableQueries,
                                          maxNorm: configuration.maxUpdateNorm) {
                    rejected[id] = why
                } else if u.sampleCount > 0 {
                    accepted.append((id, configuration.privacy == nil ? Double(u.sampleCount) : 1, u))
                }
            }
        }
        let total = accepted.reduce(0) { $0 + $1.weight }
        var report = RoundReport(round: round, sampled: sampled.map { clients[$0].id }, aggregated: [], rejected: rejected, meanLoss: nil, samples: 0)
        guard accepted.count >= configuration.minimumClients, total > 0 else { return RoundOutcome(average: nil, report: report) }
        // DP-FedAvg divides by the fixed number sampled, so one client's influence stays ≤ C/k.
        let denominator = configuration.privacy == nil ? total : Double(perRound)
        var average = parameters.map { [Float](repeating: 0, count: $0.count) }
        for (_, w, u) in accepted {
            let f = Float(w / denominator)
            for t in average.indices { for j in average[t].indices { average[t][j] += f * u.delta[t].values[j] } }
        }
        report.aggregated = accepted.map(\.id)
        report.meanLoss = accepted.reduce(0) { $0 + $1.weight * $1.update.meanLoss } / total
        report.samples = accepted.reduce(0) { $0 + $1.update.sampleCount }
        return RoundOutcome(average: average, report: report)
    }

    /// A secure-aggregation round: keys → masked updates → pair keys of dropped clients → the sum.
    /// The coordinator never holds one client's update in the clear, only the masked vectors and the total.
    func secureRound(_ round: Int, sampled: [Int], parameters: [Tensor], configuration: FederatedMLPConfiguration, perRound: Int,
                     task: (Int, [SecureAggregationParticipant]?) -> MLPRoundTask) async throws -> RoundOutcome {
        var report = RoundReport(round: round, sampled: sampled.map { clients[$0].id }, aggregated: [], rejected: [:], meanLoss: nil, samples: 0)
        let needed = max(2, configuration.minimumClients)
        // 1. Fresh public keys.
        var listed: [(index: Int, participant: SecureAggregationParticipant)] = []
        for (i, result) in await ask(sampled, { _ in .secureAggregationKey(round: round) }) {
            let id = clients[i].id
            switch result {
            case .success(.secureAggregationKey(let r, let key)) where r == round && key.count == 32:
                listed.append((i, SecureAggregationParticipant(id: id, publicKey: key)))
            case .success(let reply): report.rejected[id] = "expected a 32-byte key for round \(round), got \(reply.kind)"
            case .failure(let error): report.rejected[id] = "\(error)"
            }
        }
        let participants = listed.map(\.participant)
        report.secureAggregation = SecureAggregationReport(listed: participants.map(\.id), dropped: [], revealedBy: [])
        guard listed.count >= needed else {
            report.rejected["(round)"] = "only \(listed.count) clients sent keys, secure aggregation needs \(needed)"
            return RoundOutcome(average: nil, report: report)
        }
        // 2. Masked updates.
        let width = parameters.reduce(2) { $0 + $1.count }
        let tasks = Dictionary(uniqueKeysWithValues: listed.map { ($0.index, task($0.index, participants)) })
        var masked: [(index: Int, id: String, values: [UInt64])] = []
        for (i, result) in await ask(listed.map(\.index), { .trainMLP(tasks[$0]!) }) {
            let id = clients[i].id
            switch result {
            case .success(.maskedUpdate(let u)) where u.round == round && u.values.count == width: masked.append((i, id, u.values))
            case .success(.maskedUpdate(let u)): report.rejected[id] = "masked update for round \(u.round) with \(u.values.count) values, expected round \(round) and \(width)"
            case .success(let reply): report.rejected[id] = "unexpected reply \(reply.kind)"
            case .failure(let error): report.rejected[id] = "\(error)"
            }
        }
        let dropped = participants.map(\.id).filter { id in !masked.contains { $0.id == id } }
        report.secureAggregation?.dropped = dropped
        guard masked.count >= needed else {
            report.rejected["(round)"] = "only \(masked.count) masked updates arrived, secure aggregation needs \(needed)"
            return RoundOutcome(average: nil, report: report)
        }
        // 3. Survivors reveal their pair keys with the dropped clients; nobody else's.
        var revealed: [String: [String: Data]] = [:]
        if !dropped.isEmpty {
            for (i, result) in await ask(masked.map(\.index), { _ in .revealPairKeys(round: round, dropped: dropped) }) {
                let id = clients[i].id
                switch result {
                case .success(.pairKeys(let r, let keys)) where r == round && Set(keys.keys) == Set(dropped) && keys.values.allSatisfy({ $0.count == 32 }):
                    revealed[id] = keys
                case .success(let reply): report.rejected[id] = "expected pair keys for \(dropped), got \(reply.kind)"
                case .failure(let error): report.rejected[id] = "\(error)"
                }
            }
            report.secureAggregation?.revealedBy = revealed.keys.sorted()
            guard revealed.count == masked.count else {
                report.rejected["(round)"] = "a survivor did not reveal its pair keys; the sum cannot be unmasked and the round is dropped"
                return RoundOutcome(average: nil, report: report)
            }
        }
        let sum = try SecureAggregation.unmaskedSum(masked: masked.map { ($0.id, $0.values) }, dropped: dropped, revealed: revealed)
        let totalWeight = FixedPoint.decode(sum[width - 2])
        let lossSum = FixedPoint.decode(sum[width - 1])
        guard totalWeight > 0 else {
            report.rejected["(round)"] = "the aggregate carries no training samples"
            return RoundOutcome(average: nil, report: report)
        }
        let denominator = configuration.privacy == nil ? totalWeight : Double(perRound)
        var average: [[Float]] = []
        var offset = 0
        var squared = 0.0
        for p in parameters {
            average.append((0..<p.count).map { Float(FixedPoint.decode(sum[offset + $0]) / denominator) })
            squared += average.last!.reduce(0.0) { $0 + Double($1) * Double($1) }
            offset += p.count
        }
        // Individual norms are hidden; the mean update is checked instead.
        guard squared.squareRoot() <= configuration.maxUpdateNorm else {
            report.rejected["(round)"] = "the aggregate update has norm \(squared.squareRoot()) > \(configuration.maxUpdateNorm); dropped"
            return RoundOutcome(average: nil, report: report)
        }
        report.aggregated = masked.map(\.id)
        report.meanLoss = lossSum / totalWeight
        report.samples = configuration.privacy == nil ? Int(totalWeight.rounded()) : 0
        return RoundOutcome(average: average, report: report)
    }

    /// Why an update cannot enter the average, or nil if it can.
    static func problem(with u: MLPUpdate, round: Int, parameters: [Tensor], maxSamples: Int, maxNorm: Double = .infinity) -> String? {
        guard u.round == round else { return "update for round \(u.round) in round \(round)" }
        guard u.delta.count == parameters.count else { return "\(u.delta.count) tensors, expected \(parameters.count)" }
        var squared = 0.0
        for (d, p) in zip(u.delta, parameters) {
            guard d.name == p.name, d.shape == p.shape, d.values.count == p.values.count else {
                return "tensor \(d.name) \(d.shape) where \(p.name) \(p.shape) was expected"
            }
            guard d.values.allSatisfy(\.isFinite) else { return "tensor \(d.name) contains NaN or infinity" }
            squared = d.values.reduce(squared) { $0 + Double($1) * Double($1) }
        }
        guard squared.squareRoot() <= maxNorm else { return "update norm \(squared.squareRoot()) exceeds the limit \(maxNorm)" }
        guard u.sampleCount >= 0, u.sampleCount <= maxSamples else { return "claims \(u.sampleCount) samples, the client described \(maxSamples)" }
        guard u.meanLoss.isFinite else { return "loss \(u.meanLoss)" }
        return nil
    }

    // MARK: K-Means-Router

    /// The two-pass federated K-Means-Router.
    ///
    /// `known` descriptions (from an earlier `describe`) spare a round trip to every client, so a
    /// client that is offline does not hold the job up; it just sends nothing.
    public func trainKMeans(_ configuration: FederatedKMeansConfiguration, descriptions known: [ClientDescription]? = nil,
                            progress: ProgressHandler? = nil) async throws -> (router: KMeansRouter, report: KMeansFederationReport) {
        guard configuration.localClusters >= 1, configuration.globalClusters >= 1 else {
            throw FederationError.invalidConfiguration("local and global cluster counts must be ≥ 1")
        }
        let descriptions: [ClientDescription]
        if let known { descriptions = known } else { descriptions = try await describe() }
        guard let dim = descriptions[0].featureDimension, descriptions.allSatisfy({ $0.featureDimension == dim }) else {
            throw FederationError.invalidConfiguration("every client must have featurised its data with the same encoder (send useEncoder first)")
        }
        let models = descriptions[0].models
        progress?(TrainingProgress(stage: "federated k-means", step: 0, total: 2))
        var seeds = SeededRandom(seed: configuration.seed)
        let localSeeds = clients.indices.map { seeds.derivedSeed(UInt64($0) &+ 1) }
        let pass1 = await ask(Array(clients.indices)) { i in
            .localCentroids(LocalClusteringTask(configuration: configuration.kmeans(clusters: configuration.localClusters, seed: localSeeds[i])))
        }
        var rows: [Float] = []
        var weights: [Float] = []
        var counts: [String: Int] = [:]
        var rejected: [String: String] = [:]
        var withheld = 0
        for (i, result) in pass1 {
            let id = clients[i].id
            do {
                guard case .localCentroids(let c) = try result.get() else { rejected[id] = "unexpected reply"; continue }
                guard c.centroids.cols == dim || c.centroids.rows == 0, c.centroids.isFinite, c.sizes.count == c.centroids.rows,
                      c.sizes.allSatisfy({ $0 > 0 && $0.isFinite }), c.sizes.reduce(0, +) <= Double(descriptions[i].trainQueries) else {
                    rejected[id] = "\(c.centroids.rows)×\(c.centroids.cols) centres with sizes summing to \(c.sizes.reduce(0, +)) are not valid for dimension \(dim) and \(descriptions[i].trainQueries) local queries"
                    continue
                }
                rows += c.centroids.data
                weights += c.sizes.map(Float.init)
                counts[id] = c.centroids.rows
                withheld += c.withheldClusters
            } catch { rejected[id] = "\(error)" }
        }
        let pooled = Matrix(rows: weights.count, cols: dim, data: rows)
        guard pooled.rows >= 1 else { throw FederationError.notEnoughClients("no client sent any local centre") }
        let global = try KMeans.fit(points: pooled, weights: weights,
                                    configuration: configuration.kmeans(clusters: min(configuration.globalClusters, pooled.rows), seed: seeds.next()))
        progress?(TrainingProgress(stage: "federated k-means", step: 1, total: 2, loss: global.inertia))
        let (statistics, rejected2) = try await pooledStatistics(centroids: global.centroids, models: models.count)
        rejected.merge(rejected2) { a, _ in a }
        progress?(TrainingProgress(stage: "federated k-means", step: 2, total: 2))
        let router = try KMeansRouter(models: models, centroids: global.centroids, statistics: statistics)
        return (router, KMeansFederationReport(localCentroids: counts, withheldClusters: withheld, globalClusters: global.centroids.rows,
                                               inertia: global.inertia, rejected: rejected))
    }

    /// Pass 2: the sum of the clients' per-(cluster, model) statistics on `centroids`.
    public func pooledStatistics(centroids: Matrix, models: Int) async throws -> (ClusterStatistics, rejected: [String: String]) {
        let replies = await ask(Array(clients.indices)) { _ in .clusterStatistics(ClusterStatisticsTask(centroids: centroids)) }
        var total = ClusterStatistics(clusters: centroids.rows, models: models)
        var rejected: [String: String] = [:]
        for (i, result) in replies {
            let id = clients[i].id
            do {
                guard case .clusterStatistics(let s) = try result.get() else { rejected[id] = "unexpected reply"; continue }
                guard s.statistics.clusters == centroids.rows, s.statistics.models == models, s.statistics.isValid else {
                    rejected[id] = "statistics \(s.statistics.clusters)×\(s.statistics.models) are not valid for \(centroids.rows)×\(models)"
                    continue
                }
                total = total + s.statistics
            } catch { rejected[id] = "\(error)" }
        }
        guard rejected.count < clients.count else { throw FederationError.notEnoughClients("no client sent valid cluster statistics: \(rejected)") }
        return (total, rejected)
    }
}

extension MLPRoundTask {
    var asRequest: FederatedRequest { .trainMLP(self) }
}

/// Server-side optimiser state (FedAdam's moments), part of a training checkpoint.
public struct ServerState: Sendable, Codable {
    public let optimizer: ServerOptimizer
    var m: [[Float]]
    var v: [[Float]]

    init(_ optimizer: ServerOptimizer, shapes: [Int]) {
        self.optimizer = optimizer
        m = shapes.map { Array(repeating: 0, count: $0) }
        v = m
    }

    mutating func apply(_ delta: [[Float]], to parameters: inout [Tensor]) {
        switch optimizer {
        case .fedAvg(let lr):
            for t in parameters.indices { for j in parameters[t].values.indices { parameters[t].values[j] += lr * delta[t][j] } }
        case .fedAdam(let lr, let b1, let b2, let tau):
            for t in parameters.indices {
                for j in parameters[t].values.indices {
                    let d = delta[t][j]
                    m[t][j] = b1 * m[t][j] + (1 - b1) * d
                    v[t][j] = b2 * v[t][j] + (1 - b2) * d * d
                    parameters[t].values[j] += lr * m[t][j] / (v[t][j].squareRoot() + tau)
                }
            }
        }
    }
}
