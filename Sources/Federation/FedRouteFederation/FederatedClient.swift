import FedRouteData
import Foundation
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters

/// One participant of a federation, as the coordinator sees it: an id and a request handler.
///
/// In the simulation this is an `InProcessClient`; a network transport implements the same
/// protocol with a stub that forwards the `Codable` request and decodes the reply.
public protocol FederatedClient: Sendable {
    var id: String { get }
    func handle(_ request: FederatedRequest) async throws -> FederatedReply
}

/// What a client is willing to share.
public struct ClientPolicy: Sendable, Codable, Equatable {
    /// Smallest number of local rows behind any shared aggregate: a local k-means cluster with
    /// fewer points is not sent, and a client with fewer training texts sends no document counts.
    public var minimumGroupSize = 3
    /// Seed of the client's differential-privacy noise. Nil (the default, and the only private
    /// choice) draws it from the system's secure generator; a seed makes simulations reproducible.
    public var noiseSeed: UInt64?
    /// The secure-aggregation mask generators this client declares with its keys. Nil (the default):
    /// `MaskGenerator.preferredHere`. A pair uses AES-256-CTR only when both declared it.
    public var maskGenerators: [MaskGenerator]?
    /// Whether the client starts a secure round's training on a task sent with its key request, before the
    /// participant list is known (nil, the default: yes). With false it says so in its description and is
    /// sent `trainMLP` after the keys, as clients were before.
    public var trainsWithKey: Bool?
    /// Whether the client declares the 32-bit ring with its secure-aggregation keys (`SecureWords32`; nil, the
    /// default: yes). With false every secure round it is listed in stays in the 64-bit ring.
    public var ring32: Bool?

    public init(minimumGroupSize: Int = 3, noiseSeed: UInt64? = nil, maskGenerators: [MaskGenerator]? = nil, trainsWithKey: Bool? = nil,
                ring32: Bool? = nil) {
        self.trainsWithKey = trainsWithKey
        self.ring32 = ring32
        self.minimumGroupSize = minimumGroupSize
        self.noiseSeed = noiseSeed
        self.maskGenerators = maskGenerators
    }
}

/// A client holding its own evaluation data in this process.
///
/// The data never leaves the actor through `handle`; `localData()` is the client's own access
/// (for local baselines and personalisation, which run on the client).
public actor InProcessClient: FederatedClient {
    public nonisolated let id: String
    let train: EvaluationTable
    /// Held-out rows (never trained on) for model selection and the safety gate; may be empty.
    let validation: EvaluationTable
    let policy: ClientPolicy
    let featurize: Featurizer
    var features: Matrix?
    var validationFeatures: Matrix?
    /// Secure-aggregation key pairs by round, and the participant list each round was masked for.
    var secureSessions: [Int: SecureAggregationSession] = [:]
    var maskedFor: [Int: [SecureAggregationParticipant]] = [:]
    /// Secure rounds whose training started with the key request: the task and the training, by round.
    var trainingWithKey: [Int: (task: MLPRoundTask, update: Task<MLPUpdate, any Error>)] = [:]
    /// Trainings started with a key request and not yet finished (at most one: a coordinator cannot make the
    /// client train for many rounds at once by sending keys requests that return at once).
    var keyTrainingsRunning = 0

    /// Turns the client's training queries into features under an encoder spec.
    public typealias Featurizer = @Sendable (EncoderSpec, [Query]) throws -> Matrix

    /// Builds the encoder from the spec and encodes the query texts.
    public static let encodeLocally: Featurizer = { spec, queries in try spec.makeEncoder().encode(queries.map(\.text)) }

    /// `featurize` defaults to encoding locally; a simulation may hand in features it computed
    /// once for all clients with the same encoder. `validation` rows (same models) are held out:
    /// nothing trains on them; `validate` requests score candidate routers on them.
    public init(id: String, train: EvaluationTable, validation: EvaluationTable? = nil, policy: ClientPolicy = ClientPolicy(),
                featurize: @escaping Featurizer = InProcessClient.encodeLocally) {
        self.id = id
        self.train = train
        self.validation = validation ?? EvaluationTable(models: train.models)
        self.policy = policy
        self.featurize = featurize
    }

    /// The client's own training table and features (after `useEncoder`). Local use only.
    public func localData() throws -> (features: Matrix, table: EvaluationTable) {
        guard let features else { throw FederationError.protocolViolation(client: id, "no encoder set yet") }
        return (features, train)
    }

    /// The client's held-out validation table and features (after `useEncoder`). Local use only.
    public func localValidation() throws -> (features: Matrix, table: EvaluationTable) {
        guard let validationFeatures else { throw FederationError.protocolViolation(client: id, "no encoder set yet") }
        return (validationFeatures, validation)
    }

    public func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        switch request {
        case .describe:
            let trainable = (0..<train.queryCount).filter { train.observedCount(row: $0) > 0 }.count
            return .description(ClientDescription(models: train.models, trainQueries: train.queryCount, trainableQueries: trainable,
                                                  observedCells: train.observed.lazy.filter { $0 }.count,
                                                  featureDimension: features?.cols, validationQueries: validation.queryCount,
                                                  trainsWithKey: policy.trainsWithKey ?? true))
        case .documentFrequencies(let configuration):
            let encoder = HashedTFIDFEncoder(configuration: configuration)
            guard train.queryCount >= policy.minimumGroupSize else {
                return .documentFrequencies(DocumentFrequencies(documents: 0, counts: Array(repeating: 0, count: configuration.dimension)))
            }
            return .documentFrequencies(encoder.documentFrequencies(train.queries.map(\.text)))
        case .useEncoder(let spec):
            let f = try featurize(spec, train.queries)
            guard f.rows == train.queryCount, f.cols == spec.dimension, f.isFinite else {
                throw FederationError.protocolViolation(client: id, "featurising gave \(f.rows)×\(f.cols) features (finite: \(f.isFinite)) for \(train.queryCount) queries of dimension \(spec.dimension)")
            }
            let v = validation.queryCount == 0 ? Matrix(rows: 0, cols: f.cols) : try featurize(spec, validation.queries)
            guard v.rows == validation.queryCount, v.cols == f.cols, v.isFinite else {
                throw FederationError.protocolViolation(client: id, "featurising gave \(v.rows)×\(v.cols) validation features for \(validation.queryCount) queries")
            }
            features = f
            validationFeatures = v
            return .encoderReady(featureDimension: f.cols)
        case .costMoments:
            return .costMoments(CostMoments(table: train))
        case .costMomentsWithHeldOut:
            return .costMoments(CostMoments(table: try EvaluationTable.concatenate([train, validation])))
        case .trainMLP(let task):
            return try finishRound(try trainRound(task), task: task)
        case .secureAggregationKey(let round, let train):
            let session = SecureAggregationSession(round: round, clientID: id)
            secureSessions = secureSessions.filter { $0.key > round - 3 }
            secureSessions[round] = session
            trainingWithKey = trainingWithKey.filter { $0.key > round - 3 }
            var training = false
            // Training starts off the actor, so the key goes back now; the task is checked as `trainMLP` checks it.
            if let task = train, task.round == round, task.secureAggregation == nil, let x = features, keyTrainingsRunning == 0,
               policy.trainsWithKey != false {
                let (table, id) = (self.train, self.id)
                keyTrainingsRunning += 1
                trainingWithKey[round] = (task, Task.detached {
                    let update = Result { try Self.trainRound(task, features: x, table: table, client: id) }
                    await self.keyTrainingEnded()
                    return try update.get()
                })
                training = true
            }
            return .secureAggregationKey(round: round, publicKey: session.publicKey, masks: (policy.maskGenerators ?? MaskGenerator.preferredHere).map(\.rawValue),
                                         training: training, ring32: policy.ring32 != false)
        case .maskUpdate(let round, let participants, let words32):
            // Once per round: a second list would make this client send the same update masked twice.
            guard let started = trainingWithKey.removeValue(forKey: round) else {
                throw FederationError.protocolViolation(client: id, "no training started with the key of round \(round) (or its update was already masked)")
            }
            var task = started.task
            task.secureAggregation = participants
            task.secureWords32 = words32
            return try finishRound(try await started.update.value, task: task)
        case .revealPairKeys(let round, let dropped):
            return .pairKeys(round: round, keys: try revealPairKeys(round: round, dropped: dropped))
        case .localCentroids(let task):
            return .localCentroids(try localCentroids(task))
        case .validate(let task):
            return .validation(try validate(task))
        case .clusterStatistics(let task):
            let (x, table) = try localData()
            var statistics = try ClusterStatistics(centroids: task.centroids, features: x, table: table)
            if task.includeHeldOut == true {
                let (vx, vt) = try localValidation()
                statistics = statistics + (try ClusterStatistics(centroids: task.centroids, features: vx, table: vt))
            }
            return .clusterStatistics(ClusterStatisticsReply(statistics: statistics))
        }
    }

    /// The update as one fixed-point vector [w·Δ, w, w·loss] in the 64-bit ring, or [r·Δ, r, r·loss] in the 32-bit
    /// ring when `words32` says how (r = w / W), masked for the round's participants.
    func maskedUpdate(_ u: MLPUpdate, participants: [SecureAggregationParticipant], uniformWeight: Bool,
                      words32: SecureWords32? = nil) throws -> MaskedUpdate {
        guard let session = secureSessions[u.round] else {
            throw FederationError.protocolViolation(client: id, "no secure-aggregation key for round \(u.round) (was the client restarted?)")
        }
        let ids = participants.map(\.id)
        guard Set(ids).count == ids.count, ids.count >= 2 else {
            throw FederationError.protocolViolation(client: id, "secure aggregation needs ≥ 2 distinct participants, got \(ids)")
        }
        // Under DP every client counts once (the server divides by the number sampled).
        let w = uniformWeight ? (u.sampleCount > 0 ? 1.0 : 0.0) : Double(u.sampleCount)
        if let words32 {
            guard !uniformWeight else { throw FederationError.protocolViolation(client: id, "a round with differential privacy is not encoded in 32-bit words") }
            var words = try encode32(u, weight: w, words32)
            try session.mask(&words, participants: participants)
            remember(participants, round: u.round)
            return MaskedUpdate(round: u.round, values32: words)
        }
        let loss = u.meanLoss.isFinite ? u.meanLoss : 0
        var words = try Self.ringWords(u.delta, tail: [FixedPoint.encode(w), FixedPoint.encode(w * loss)],
                                       encode: { FixedPoint.encode($0, weight: w, into: $1) },
                                       refused: { v, at, name in "update value \(w * Double(v)) at \(at) in \(name) is outside the fixed-point range" },
                                       client: id)
        try session.mask(&words, participants: participants)
        remember(participants, round: u.round)
        return MaskedUpdate(round: u.round, values: words)
    }

    /// The list this client masked a round's update for (the only clients it may later reveal pair keys with).
    func remember(_ participants: [SecureAggregationParticipant], round: Int) {
        maskedFor = maskedFor.filter { $0.key > round - 3 }
        maskedFor[round] = participants
    }

    /// [r·Δ, r, r·loss] in the 32-bit ring, r = `weight` / W. Declines (throws, naming the value) when the
    /// encoding's parameters could wrap the sum, the weight is more than W, or a coordinate of the update or the
    /// loss is not under the round's bound: the coordinator then counts this client as dropped.
    func encode32(_ u: MLPUpdate, weight w: Double, _ e: SecureWords32) throws -> [UInt32] {
        if let problem = e.problem { throw FederationError.protocolViolation(client: id, "32-bit secure words refused: \(problem)") }
        guard w <= e.totalWeight else {
            throw FederationError.protocolViolation(client: id, "trained on \(Int(w)) samples, more than the round's total weight \(e.totalWeight)")
        }
        let r = w / e.totalWeight
        let loss = u.meanLoss.isFinite ? u.meanLoss : 0
        guard abs(loss) < e.bound else {
            throw FederationError.protocolViolation(client: id, "loss \(loss) is not under the 32-bit round's bound \(e.bound); declining the round")
        }
        // |r·Δ| < r·bound is |Δ| < bound; a client with no samples sends zeros (any finite Δ).
        let limit = r > 0 ? r * e.bound : .leastNonzeroMagnitude
        return try Self.ringWords(u.delta, tail: [e.encode(r), e.encode(r * loss)],
                                  encode: { FixedPointKernel.encode($0, weight: r, scale: e.scale, limit: limit, into: $1) },
                                  refused: { v, at, name in "update value \(v) at \(at) in \(name) is not under the 32-bit round's bound \(e.bound); declining the round" },
                                  client: id)
    }

    /// `delta`'s tensors flattened into ring words by `encode` (which writes a tensor's words and returns how many of
    /// its values it took: fewer stops at one it refused, which `refused` describes from the value, its index and its
    /// tensor's name), then `tail`.
    static func ringWords<W: RingWord>(_ delta: [Tensor], tail: [W], encode: (UnsafeBufferPointer<Float>, UnsafeMutablePointer<W>) -> Int,
                                       refused: (Float, Int, String) -> String, client id: String) throws -> [W] {
        let count = delta.reduce(tail.count) { $0 + $1.count }
        return try [W](unsafeUninitializedCapacity: count) { out, initialized in
            var k = 0
            for t in delta {
                try t.values.withUnsafeBufferPointer { values in
                    let done = encode(values, out.baseAddress! + k)
                    guard done == values.count else {
                        throw FederationError.protocolViolation(client: id, refused(values[done], done, t.name))
                    }
                    k &+= values.count
                }
            }
            for word in tail {
                out[k] = word
                k &+= 1
            }
            initialized = count
        }
    }

    /// Pair keys with dropped participants of a round this client masked for. Refuses when the
    /// reveal would leave no other unrevealed participant (that would unmask this client itself).
    func revealPairKeys(round: Int, dropped: [String]) throws -> [String: Data] {
        guard let session = secureSessions[round], let participants = maskedFor[round] else {
            throw FederationError.protocolViolation(client: id, "sent no masked update in round \(round)")
        }
        let ids = participants.map(\.id)
        let set = Set(dropped)
        guard !set.contains(id), set.isSubset(of: Set(ids)) else {
            throw FederationError.protocolViolation(client: id, "asked to reveal keys for \(dropped.sorted()), not other participants of round \(round)")
        }
        guard ids.count - 1 - set.count >= 1 else {
            throw FederationError.protocolViolation(client: id, "revealing \(set.count) of \(ids.count - 1) pair keys would expose this client's update")
        }
        var keys: [String: Data] = [:]
        for p in participants where set.contains(p.id) { keys[p.id] = try session.pairKey(with: p) }
        return keys
    }

    func checkModels(_ count: Int) throws { try Self.checkModels(count, table: train, client: id) }

    /// A task for `count` models fits only a table of as many.
    static func checkModels(_ count: Int, table: EvaluationTable, client id: String) throws {
        guard count == table.modelCount else {
            throw FederationError.protocolViolation(client: id, "the task is for \(count) models, this client's data has \(table.modelCount)")
        }
    }

    func keyTrainingEnded() { keyTrainingsRunning -= 1 }

    /// The reply to a round's task once its update is trained: the update with this client's share of DP noise
    /// when the task asks for it, masked when the task lists secure-aggregation participants.
    func finishRound(_ trained: MLPUpdate, task: MLPRoundTask) throws -> FederatedReply {
        var update = trained
        if let privacy = task.privacy {
            if let seed = policy.noiseSeed {
                var g = SeededRandom(seed: seed).derived(UInt64(task.round))
                privacy.apply(to: &update.delta, using: &g)
            } else {
                var g = SystemRandomNumberGenerator()
                privacy.apply(to: &update.delta, using: &g)
            }
        }
        guard let participants = task.secureAggregation else { return .mlpUpdate(update) }
        return .maskedUpdate(try maskedUpdate(update, participants: participants, uniformWeight: task.privacy != nil, words32: task.secureWords32))
    }

    func trainRound(_ task: MLPRoundTask) throws -> MLPUpdate {
        let (x, table) = try localData()
        return try Self.trainRound(task, features: x, table: table, client: id)
    }

    /// Local training of one round's task on `features` and `table` (the client's own), off the actor.
    static func trainRound(_ task: MLPRoundTask, features x: Matrix, table: EvaluationTable, client id: String) throws -> MLPUpdate {
        try checkModels(task.architecture.modelCount, table: table, client: id)
        guard task.architecture.inputDimension == x.cols else {
            throw FederationError.protocolViolation(client: id, "the model expects \(task.architecture.inputDimension) features, local features have \(x.cols)")
        }
        let s = task.settings
        guard s.epochs >= 0, s.batchSize >= 1 else { throw FederationError.protocolViolation(client: id, "epochs ≥ 0 and batch size ≥ 1 required") }
        let global = try MLPNetwork(architecture: task.architecture, parameters: task.parameters)
        var network = global
        let data = try MLPTrainingSet(features: x, table: table, normalizer: task.costNormalizer)
        var options = LocalTrainingOptions(proximalMu: s.proximalMu, proximalAnchor: s.proximalMu > 0 ? task.parameters : nil)
        if let first = s.trainModelsFrom { options.frozen = network.freezeAllButModels(from: first) }
        if let teacher = task.teacher, s.distillationWeight > 0 {
            options.teacher = try MLPNetwork(architecture: task.architecture, parameters: teacher)
            options.distillationWeight = s.distillationWeight
        }
        var optimizer = AdamW(configuration: s.optimizer, shapes: network.parameters.map(\.count), decayMask: network.decayMask)
        var rng = SeededRandom(seed: task.seed)
        var loss = 0.0
        var gradients: [[Float]] = []
        if !data.trainableRows.isEmpty {
            for _ in 0..<s.epochs {
                loss = try MLPTrainer.runEpoch(network: &network, optimizer: &optimizer, data: data, rows: data.trainableRows,
                                               batchSize: s.batchSize, gradientClip: s.gradientClip, rng: &rng, options: options,
                                               gradients: &gradients)
            }
        }
        let delta = zip(network.parameters, global.parameters).map { local, g in
            var d = local.values
            g.values.withUnsafeBufferPointer { gv in
                d.withUnsafeMutableBufferPointer { for j in 0..<$0.count { $0[j] -= gv[j] } }
            }
            return Tensor(name: g.name, shape: g.shape, values: d)
        }
        return MLPUpdate(round: task.round, delta: delta, sampleCount: data.trainableRows.count, meanLoss: loss)
    }

    /// Sums over the held-out rows. A client whose validation rows are fewer than its privacy floor
    /// sends empty sums (as it withholds small clusters).
    func validate(_ task: ValidationTask) throws -> ValidationStatistics {
        let (x, table) = try localValidation()
        let bands = task.bands?.lambdas.count ?? 0
        guard table.queryCount >= max(1, policy.minimumGroupSize) else { return ValidationStatistics(bands: bands) }
        let router = try task.candidate.router(models: train.models)
        guard router.inputDimension == x.cols else {
            throw FederationError.protocolViolation(client: id, "the candidate expects \(router.inputDimension) features, local features have \(x.cols)")
        }
        // Propensities (for the gate's bands only) from every local row: the share of queries on
        // which each model was graded; the doubly-robust baseline from the training rows alone.
        let propensity = try task.bands.map { _ in ValidationStatistics.propensity(of: try EvaluationTable.concatenate([train, table])) }
        return try ValidationStatistics(predictions: router.predict(features: x), table: table, bands: task.bands, propensity: propensity,
                                        baseline: task.bands.map { _ in UtilityBaseline(table: train) })
    }

    func localCentroids(_ task: LocalClusteringTask) throws -> LocalCentroids {
        let (x, _) = try localData()
        var c = task.configuration
        // A small client fits fewer, larger clusters: only clusters of at least the privacy floor are
        // shared, so more clusters than rows / floor would mostly be withheld (all of them at 1 row each).
        c.clusters = min(c.clusters, x.rows / max(1, policy.minimumGroupSize))
        guard c.clusters >= 1 else { return LocalCentroids(centroids: Matrix(rows: 0, cols: x.cols), sizes: [], withheldClusters: 0) }
        let result = try KMeans.fit(points: x, configuration: c)
        var sizes = [Double](repeating: 0, count: c.clusters)
        for a in result.assignments { sizes[a] += 1 }
        let kept = sizes.indices.filter { sizes[$0] >= Double(policy.minimumGroupSize) }
        return LocalCentroids(centroids: result.centroids.gatherRows(kept), sizes: kept.map { sizes[$0] },
                              withheldClusters: sizes.indices.filter { sizes[$0] > 0 }.count - kept.count)
    }
}
