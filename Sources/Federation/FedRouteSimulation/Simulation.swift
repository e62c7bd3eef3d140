import FedRouteData
import FedRouteEmbedding
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// Everything one simulation run needs; every number of the paper's protocol is here.
public struct SimulationConfiguration: Sendable, Codable, Equatable {
    public var partition = PartitionConfiguration()
    public var encoder = SimulationEncoder.hashed(HashedTFIDFEncoder.Configuration())
    public var families = RouterFamily.federated
    public var mlp = FederatedMLPConfiguration()
    /// The MF-Router's federation (its rounds, sampling and local epochs follow `mlp`'s in the CLI).
    public var mf = FederatedMLPConfiguration.matrixFactorization
    public var kmeans = FederatedKMeansConfiguration()
    /// Epochs of the centralized and client-local MLP baselines; nil = rounds × local epochs
    /// (the same number of passes over each client's data as federated training).
    public var baselineEpochs: Int?
    /// Local epochs of fine-tune-from-global personalisation (MLP).
    public var fineTuneEpochs = 1
    /// Pseudo-observations of the global cell mean in K-Means fine-tuning.
    public var kmeansPriorStrength = 1.0
    /// How the adaptive mixture measures the local router's error (the paper: in sample).
    public var mixtureErrors = MixtureErrorEstimate.inSample
    public var lambdas = FrontierMetrics.geomspace(1e-2, 1e7, count: 100)
    public var clientPolicy = ClientPolicy()
    /// Share of each client's training rows held out for validation (issue 16, item 2): the MLP and
    /// MF pick their best round, K-Means its cluster count, and the safe federated router calibrates
    /// its gate on them; the centralized and client-local baselines get the same rows for the same
    /// selections. 0 turns all of it off (the paper's protocol as first reproduced).
    public var validationFraction = 0.15
    /// The kNN baselines' neighbour count, and the counts to choose from on held-out rows.
    public var knnNeighbors = 25
    public var knnCandidates = [5, 10, 25, 50, 100]
    /// How many clients' local routers are also scored on the global test set (the "best / mean /
    /// worst client-local" rows): every client up to this count, a seeded sample of this many beyond
    /// it (nil: every client). Each such score predicts the whole global test set, so at thousands of
    /// clients it would dominate the run; every client is still evaluated on its own test set.
    public var localGlobalClients: Int? = Self.defaultLocalGlobalClients
    public static let defaultLocalGlobalClients = 200
    /// How many clients keep their own test set's frontier curves in the results (and get a report
    /// folder): all up to this count, a seeded sample beyond it (nil: all). Every client keeps its
    /// figures; at 1,000 clients the curves alone made result.json 0.3 GB.
    public var clientCurves: Int? = Self.defaultClientCurves
    public static let defaultClientCurves = 100
    /// The λ bands of the safe federated router's gate.
    public var safetyLambdas = SafetyGate.defaultLambdas()
    /// How many standard errors above 0 the gate's estimate must be for the router to keep a band
    /// (nil: `SafetyGate.automaticStandardErrors`, 2 under sparse grades).
    public var safetyStandardErrors: Double?
    public private(set) var seed: UInt64 = 0

    public init() {
        mlp.selectBestRound = true
        mf.selectBestRound = true
        kmeans.clusterCandidates = [3, 6, 12, 24, 48]
    }

    /// Sets the master seed; partition, model initialisation, sampling and k-means seeds derive from it.
    public mutating func setSeed(_ seed: UInt64) {
        self.seed = seed
        let root = SeededRandom(seed: seed)
        partition.seed = root.derivedSeed(1)
        mlp.seed = root.derivedSeed(2)
        kmeans.seed = root.derivedSeed(3)
        mf.seed = root.derivedSeed(4)
    }

    public var effectiveBaselineEpochs: Int { baselineEpochs ?? mlp.rounds * mlp.local.epochs }
}

/// The query encoder of a simulated federation.
public enum SimulationEncoder: Sendable, Codable, Equatable {
    /// Hashed TF-IDF whose IDF is fitted federatedly from summed document counts.
    case hashed(HashedTFIDFEncoder.Configuration)
    /// The pretrained MiniLM from `directory` (every client uses the same weights).
    case minilm(directory: String, maxTokens: Int, truncation: WordPieceTokenizer.Truncation)
}

/// Where the adaptive mixture's local-router errors come from.
public enum MixtureErrorEstimate: Sendable, Codable, Equatable {
    /// On the client's training cells, which the local router was fitted to (the paper's rule).
    case inSample
    /// Out of fold: the local router retrained on the other folds of the client's data.
    case crossFitted(folds: Int)
}

/// Facts about one simulated client (counts only).
public struct ClientSummary: Sendable, Codable, Equatable {
    public var id: String
    public var trainQueries: Int
    /// Training rows held out for validation (not in `trainQueries`).
    public var validationQueries: Int?
    public var observedTrainCells: Int
    public var testQueries: Int
    /// Local test queries with every model evaluated (the ones its report uses).
    public var evaluatedTestQueries: Int
    public var tasks: [String: Int]
    public var observedCellsPerModel: [String: Int]
}

/// One client's evaluation on its own test set.
public struct ClientEvaluation: Sendable, Codable {
    public var client: String
    public var report: EvaluationReport?
    /// Why there is no report (e.g. no fully labelled local test query).
    public var skipped: String?
    /// Adaptive-mixture weights of the global router (score and cost, per model), if any.
    public var mixtureWeights: MixtureWeights?
    /// True when `report` keeps only the figures (AUC, AIQ, …) and not the frontier curves
    /// (`SimulationConfiguration.clientCurves`); no report folder is written for this client.
    public var curvesOmitted: Bool?
}

extension ClientEvaluation {
    /// This evaluation, or (`keep` false) one whose report holds the figures without the curves.
    func keepingCurves(_ keep: Bool) -> ClientEvaluation {
        guard !keep, var r = report else { return self }
        for i in r.entries.indices {
            r.entries[i].points = []
            r.entries[i].hull = []
        }
        r.lambdas = []
        var e = self
        e.report = r
        e.curvesOmitted = true
        return e
    }
}

/// Results of one router family in one run.
public struct FamilyResult: Sendable, Codable {
    public var family: RouterFamily
    /// Federated, centralized and every client-local router on the union of client test sets.
    public var global: EvaluationReport
    public var clients: [ClientEvaluation]
    public var rounds: [RoundReport]?
    public var kmeans: KMeansFederationReport?
    /// Clients without a local router (too little data), with the reason.
    public var missingLocal: [String: String]
    /// When only a sample of the clients' local routers was scored on the global test set, its
    /// size (`SimulationConfiguration.localGlobalClients`); nil when every client's was.
    public var localsScoredGlobally: Int?
    /// The federated router with the federation's encoder (not part of the JSON; saved as a router file).
    public var federatedPipeline: RoutingPipeline?
    /// The safe federated router's gate, calibrated on the clients' held-out rows (nil without them).
    public var safetyGate: SafetyGate?

    enum CodingKeys: String, CodingKey { case family, global, clients, rounds, kmeans, missingLocal, localsScoredGlobally, safetyGate }
}

/// One full simulation run.
public struct SimulationResult: Sendable, Codable {
    public var configuration: SimulationConfiguration
    public var clients: [ClientSummary]
    public var globalTestQueries: Int
    public var centralizedTrainCells: Int
    public var families: [FamilyResult]
    /// The clients' data as the partition dealt it (not part of the JSON; `FederationExport` writes it).
    public var shards: [ClientShard] = []
    /// Per shard, the training rows each client held out for validation (not part of the JSON);
    /// the rest of its training rows are what it trained on.
    public var heldOut: [EvaluationTable] = []

    enum CodingKeys: String, CodingKey { case configuration, clients, globalTestQueries, centralizedTrainCells, families }
}

/// Runs the paper's protocol: partition → federated encoder → federated routers, centralized and
/// client-local baselines, personalisation → evaluation on the global and each client's test set.
public enum Simulation {
    /// Router names used in the reports.
    public enum Name {
        public static let federated = "federated"
        /// The federated router behind its safety gate (calibrated on the clients' held-out rows).
        public static let federatedSafe = "federated (safe)"
        public static let centralized = "centralized"
        public static let local = "local"
        public static let adaptive = "adaptive"
        public static let fineTuned = "fine-tuned"
        public static func local(_ client: String) -> String { "local:\(client)" }
    }

    /// The seed of client `index`'s fine-tuning from the federated MLP (a client process that
    /// personalises with it reproduces the simulation's "fine-tuned" router).
    public static func fineTuneSeed(mlpSeed: UInt64, client index: Int) -> UInt64 {
        SeededRandom(seed: mlpSeed).derivedSeed(0xF1E7 &+ UInt64(index))
    }

    /// Encodes texts with an encoder; the CLI passes one backed by the feature cache.
    public typealias Featurize = @Sendable (TextEncoder, [String]) -> Matrix

    /// Runs the simulation. `parallelClients` clients train and are evaluated at once (default: one per
    /// core); the results are the same for any value, since every client's work is seeded and the
    /// coordinator folds replies in client order.
    public static func run(_ table: EvaluationTable, configuration c: SimulationConfiguration,
                           featurize: Featurize = { $0.encode($1) }, parallelClients: Int = ProcessInfo.processInfo.activeProcessorCount,
                           progress: ProgressHandler? = nil) async throws -> SimulationResult {
        let parallelClients = max(1, parallelClients)
        if let problem = Self.familiesProblem(c.families) { throw FederationError.invalidConfiguration(problem) }
        if c.families.contains(.mlp) { try c.mlp.validate(clients: c.partition.clients) }
        if c.families.contains(.mf) { try c.mf.validate(clients: c.partition.clients) }
        guard c.clientPolicy.minimumGroupSize >= 1 else {
            throw FederationError.invalidConfiguration("the privacy floor (minimum group size) must be ≥ 1, not \(c.clientPolicy.minimumGroupSize)")
        }
        guard (0..<1).contains(c.validationFraction) else {
            throw FederationError.invalidConfiguration("the validation fraction must be in [0, 1), not \(c.validationFraction)")
        }
        let shards = try FederatedPartition.make(table, configuration: c.partition)
        // Each client's held-out validation rows (nothing trains on them).
        let holdOuts = shards.enumerated().map { i, shard in
            let (fit, held) = shard.train.holdOutRows(fraction: c.validationFraction, seed: SeededRandom(seed: c.partition.seed).derivedSeed(0x7A11D &+ UInt64(i)))
            return (fit: shard.train.subset(fit), validation: shard.train.subset(held), fitRows: fit.map { shard.trainRows[$0] }, validationRows: held.map { shard.trainRows[$0] })
        }
        // The encoder: hashed TF-IDF with IDF from summed per-client document counts, or MiniLM.
        let encoder: TextEncoder
        switch c.encoder {
        case .hashed(let configuration):
            let counting = try FederationCoordinator(clients: shards.indices.map { InProcessClient(id: shards[$0].id, train: holdOuts[$0].fit, policy: c.clientPolicy) },
                                                     maxConcurrentRequests: parallelClients)
            encoder = .hashed(try await counting.fitHashedEncoder(configuration))
        case .minilm(let directory, let maxTokens, let truncation):
            encoder = .minilm(try MiniLMEncoder(directory: directory, maxTokens: maxTokens, truncation: truncation))
        }
        // Every query is encoded once; a client's features are exactly what it would compute itself
        // from its own texts under this encoder (checked by fingerprint).
        progress?(TrainingProgress(stage: "encoding \(table.queryCount) queries (\(encoder.kind))", step: 0, total: 1))
        let all = featurize(encoder, table.queries.map(\.text))
        let spec = EncoderSpec(encoder)
        let clients = shards.indices.map { i in
            // A client's queries (fitting or held out) map to their rows of the table by id.
            let rows = Dictionary(zip(holdOuts[i].fit.queries.map(\.id) + holdOuts[i].validation.queries.map(\.id),
                                      holdOuts[i].fitRows + holdOuts[i].validationRows), uniquingKeysWith: { a, _ in a })
            return InProcessClient(id: shards[i].id, train: holdOuts[i].fit, validation: holdOuts[i].validation, policy: c.clientPolicy) { requested, queries in
                let indices = queries.compactMap { rows[$0.id] }
                guard requested.fingerprint == spec.fingerprint, indices.count == queries.count else { return try InProcessClient.encodeLocally(requested, queries) }
                return all.gatherRows(indices)
            }
        }
        let coordinator = try FederationCoordinator(clients: clients, maxConcurrentRequests: parallelClients)
        _ = try await coordinator.useEncoder(spec)
        // Experimenter's view (not part of the federation): test sets and the pooled train set.
        let globalTest = try EvaluationTable.concatenate(shards.map(\.test))
        let pooledTrain = try EvaluationTable.concatenate(holdOuts.map(\.fit))
        // The evaluators keep only fully labelled test rows, in order; features are taken for exactly those.
        func evaluatedRows(_ rows: [Int]) -> [Int] { rows.filter { table.isFullyObserved(row: $0) } }
        // best-single@λ is chosen on every training row, held-out ones included: a user without a
        // router would pick the model with all the data they have.
        let globalEvaluator = try Evaluator(train: try EvaluationTable.concatenate(shards.map(\.train)), test: globalTest, lambdas: c.lambdas)
        let testFeatures = all.gatherRows(evaluatedRows(shards.flatMap(\.testRows)))
        var clientEvaluators: [Result<(Evaluator, Matrix), any Error>] = []
        for shard in shards {
            do {
                let e = try Evaluator(train: shard.train, test: shard.test, lambdas: c.lambdas)
                clientEvaluators.append(.success((e, all.gatherRows(evaluatedRows(shard.testRows)))))
            } catch { clientEvaluators.append(.failure(error)) }
        }
        let localData = try await clientsData(clients, heldOut: false)
        let localValidation = try await clientsData(clients, heldOut: true)
        let pooledFeatures = Matrix(rows: pooledTrain.queryCount, cols: encoder.dimension, data: localData.flatMap(\.features.data))
        let pooledValidation: ModelSelection.Validation? = c.validationFraction > 0
            ? (Matrix(rows: localValidation.reduce(0) { $0 + $1.table.queryCount }, cols: encoder.dimension, data: localValidation.flatMap(\.features.data)),
               try EvaluationTable.concatenate(localValidation.map(\.table)))
            : nil
        let descriptions = try await coordinator.describe()
        // The safety gate falls back to best-single@λ as the evaluation picks it: from every
        // training row, the held-out ones included.
        let pooledNormalizer = try await coordinator.costNormalizer(models: table.modelCount, includingHeldOut: c.validationFraction > 0)
        let summaries = shards.indices.map { summary(shards[$0], validation: holdOuts[$0].validation) }
        let scoredGlobally = clientSample(clients: shards.count, limit: c.localGlobalClients, seed: c.partition.seed, purpose: 0x6C0BA1)
        let withCurves = clientSample(clients: shards.count, limit: c.clientCurves, seed: c.partition.seed, purpose: 0xC0A5E)

        var families: [FamilyResult] = []
        for family in c.families {
            guard family.isFederated else {
                // kNN has no federated training (it would pool every query): its centralized and
                // client-local routers, with the same selection, are the baselines in the table.
                families.append(try baselinesOnly(family, c, shards: shards, localData: localData, localValidation: localValidation,
                                                  pooled: (pooledFeatures, pooledTrain), pooledValidation: pooledValidation,
                                                  globalEvaluator: globalEvaluator, testFeatures: testFeatures, clientEvaluators: clientEvaluators,
                                                  scoredGlobally: scoredGlobally, withCurves: withCurves))
                continue
            }
            let trained = try await train(family, c, coordinator: coordinator, localData: localData,
                                          localValidation: c.validationFraction > 0 ? localValidation : nil,
                                          pooled: (pooledFeatures, pooledTrain), pooledValidation: pooledValidation, progress: progress)
            // The safe federated router: its gate is calibrated on the clients' held-out rows.
            let gate = try await coordinator.calibrateSafetyGate(trained.gateCandidate ?? trained.federatedFile, normalizer: pooledNormalizer, lambdas: c.safetyLambdas,
                                                                 standardErrors: c.safetyStandardErrors, descriptions: descriptions)
            // Global test set.
            let federatedTest = try trained.federated.predict(features: testFeatures)
            var routers: [(name: String, predictions: RouterPredictions)] = [(Name.federated, federatedTest)]
            if gate != nil { routers.append((Name.federatedSafe, safe(federatedTest, gate: gate))) }
            routers.append((Name.centralized, try trained.centralized.predict(features: testFeatures)))
            var global = try globalEvaluator.evaluate(routers)
            // Client by client: its local and fine-tuned routers are trained, scored on the global test set
            // (the local one, as a row of the global report, in client order after the other routers) and on
            // the client's own test set, then dropped. Clients are independent and seeded, so `parallelClients`
            // of them run at once and their outcomes are merged in client order: the same numbers for any count.
            var evaluations: [ClientEvaluation] = []
            var missing: [String: String] = [:]
            let stage = "\(family.rawValue): local, fine-tuned and evaluated"
            let evaluators = clientEvaluators
            let evaluate: @Sendable (Int) throws -> ClientOutcome = { i in
                try clientOutcome(i, shard: shards[i], data: localData[i], trained: trained, c: c, gate: gate, evaluator: evaluators[i],
                                  testFeatures: scoredGlobally.contains(i) ? testFeatures : nil, keepCurves: withCurves.contains(i))
            }
            try await InOrder.forEach(shards.count, parallel: parallelClients, { i in { Result { try evaluate(i) } } }) { i, result in
                let outcome = try result.get()
                progress?(TrainingProgress(stage: stage, step: i, total: shards.count))
                if let p = outcome.localOnGlobalTest {
                    try globalEvaluator.addRouter(name: Name.local(shards[i].id), predictions: p, to: &global)
                }
                if let why = outcome.missingLocal { missing[shards[i].id] = why }
                evaluations.append(outcome.evaluation)
            }
            progress?(TrainingProgress(stage: stage, step: shards.count, total: shards.count))
            families.append(FamilyResult(family: family, global: global, clients: evaluations, rounds: trained.rounds,
                                         kmeans: trained.kmeansReport, missingLocal: missing,
                                         localsScoredGlobally: scoredGlobally.count < shards.count ? scoredGlobally.count : nil,
                                         federatedPipeline: try RoutingPipeline(encoder: encoder, router: trained.federatedFile, safety: gate),
                                         safetyGate: gate))
        }
        return SimulationResult(configuration: c, clients: summaries, globalTestQueries: globalTest.queryCount,
                                centralizedTrainCells: pooledTrain.observed.lazy.filter { $0 }.count, families: families, shards: shards,
                                heldOut: holdOuts.map(\.validation))
    }

    /// The federated router's predictions behind its safety gate.
    static func safe(_ p: RouterPredictions, gate: SafetyGate?) -> RouterPredictions {
        var q = p
        q.safety = gate
        return q
    }

    /// What one client's evaluation adds to a family's results.
    struct ClientOutcome: Sendable {
        /// The local router's predictions on the global test set (for clients scored there).
        var localOnGlobalTest: RouterPredictions?
        var evaluation: ClientEvaluation
        /// Why the client has no local router, if it has none.
        var missingLocal: String?
    }

    /// Client `i`'s local, fine-tuned and mixture routers, evaluated on its own test set (and the local one
    /// on the global test set when `testFeatures` is given); the routers are dropped on return.
    static func clientOutcome(_ i: Int, shard: ClientShard, data: (features: Matrix, table: EvaluationTable), trained: TrainedFamily,
                              c: SimulationConfiguration, gate: SafetyGate?, evaluator: Result<(Evaluator, Matrix), any Error>,
                              testFeatures: Matrix?, keepCurves: Bool) throws -> ClientOutcome {
        let (fx, ft) = data
        var local: (any Router)?
        var missing: String?
        do {
            local = try trained.trainLocal(fx, ft, i)
        } catch RouterError.noTrainingData(let why) {
            missing = why
        }
        let tuned = try trained.fineTune(data, i)
        var onGlobal: RouterPredictions?
        if let local, let testFeatures { onGlobal = try local.predict(features: testFeatures) }
        var weights: MixtureWeights?
        var named: [(String, any Router)] = [(Name.federated, trained.federated), (Name.centralized, trained.centralized)]
        if let l = local {
            let w: MixtureWeights
            switch c.mixtureErrors {
            case .inSample:
                w = try Personalization.adaptiveWeights(global: trained.federated, local: l, features: fx, table: ft)
            case .crossFitted(let folds):
                w = try Personalization.crossFittedWeights(global: trained.federated, features: fx, table: ft, folds: folds,
                                                           seed: c.partition.seed &+ UInt64(i)) { x, t in try trained.trainLocal(x, t, i) }
            }
            let mixture = try MixtureRouter(global: trained.federated, local: l, weights: w)
            weights = w
            named += [(Name.local, l), (Name.adaptive, mixture)]
        }
        named.append((Name.fineTuned, tuned))
        switch evaluator {
        case .success(let (evaluator, x)):
            var predictions = try named.map { ($0.0, try $0.1.predict(features: x)) }
            if gate != nil { predictions.insert((Name.federatedSafe, safe(predictions[0].1, gate: gate)), at: 1) }
            let report = try evaluator.evaluate(predictions)
            return ClientOutcome(localOnGlobalTest: onGlobal, evaluation: ClientEvaluation(client: shard.id, report: report, skipped: nil, mixtureWeights: weights)
                .keepingCurves(keepCurves), missingLocal: missing)
        case .failure(let error):
            return ClientOutcome(localOnGlobalTest: onGlobal, evaluation: ClientEvaluation(client: shard.id, report: nil, skipped: "\(error)", mixtureWeights: weights),
                                 missingLocal: missing)
        }
    }

    /// Clients singled out for costly reporting (local routers scored on the global test set, or
    /// curves kept): all of them up to `limit`, else `limit` drawn without replacement with `seed`
    /// and `purpose` (the same for every family of a run).
    public static func clientSample(clients: Int, limit: Int?, seed: UInt64, purpose: UInt64) -> Set<Int> {
        guard let limit, limit < clients else { return Set(0..<clients) }
        var rng = SeededRandom(seed: SeededRandom(seed: seed).derivedSeed(purpose))
        var order = Array(0..<clients)
        rng.shuffle(&order)
        return Set(order.prefix(max(0, limit)))
    }

    /// Why `families` cannot be simulated (none, a repeat, or no federated family among them), or nil.
    /// A non-federated family (kNN) runs as centralized and client-local baselines only.
    public static func familiesProblem(_ families: [RouterFamily]) -> String? {
        guard !families.isEmpty, Set(families).count == families.count, families.contains(where: \.isFederated) else {
            return "families must be distinct, with at least one of \(RouterFamily.federated.map(\.rawValue).joined(separator: ", ")) (kNN runs as centralized and local baselines only)"
        }
        return nil
    }

    /// A family without federated training: its centralized router (pooled training rows, selection
    /// on the pooled held-out rows) and each client's local one (its own rows), evaluated like the others.
    static func baselinesOnly(_ family: RouterFamily, _ c: SimulationConfiguration, shards: [ClientShard],
                              localData: [(features: Matrix, table: EvaluationTable)], localValidation: [(features: Matrix, table: EvaluationTable)],
                              pooled: (Matrix, EvaluationTable), pooledValidation: ModelSelection.Validation?, globalEvaluator: Evaluator,
                              testFeatures: Matrix, clientEvaluators: [Result<(Evaluator, Matrix), any Error>],
                              scoredGlobally: Set<Int>, withCurves: Set<Int>) throws -> FamilyResult {
        guard family == .knn else { throw FederationError.invalidConfiguration("\(family.rawValue) has no baselines-only simulation") }
        let candidates = c.knnCandidates.isEmpty ? [c.knnNeighbors] : c.knnCandidates
        func train(_ x: Matrix, _ t: EvaluationTable, _ v: ModelSelection.Validation?) throws -> KNNRouter {
            try ModelSelection.knn(features: x, table: t, candidates: v == nil ? [c.knnNeighbors] : candidates, validation: v).router
        }
        let centralized = try train(pooled.0, pooled.1, pooledValidation)
        var global = try globalEvaluator.evaluate([(Name.centralized, try centralized.predict(features: testFeatures))])
        var missing: [String: String] = [:]
        var evaluations: [ClientEvaluation] = []
        // Client by client, as for the federated families: the local router lives only while it is evaluated.
        for (i, shard) in shards.enumerated() {
            let d = localData[i]
            var local: KNNRouter?
            do {
                let l = try train(d.features, d.table, c.validationFraction > 0 ? localValidation[i] : nil)
                local = l
                if scoredGlobally.contains(i) {
                    try globalEvaluator.addRouter(name: Name.local(shard.id), predictions: try l.predict(features: testFeatures), to: &global)
                }
            } catch RouterError.noTrainingData(let why) {
                missing[shard.id] = why
            }
            switch clientEvaluators[i] {
            case .success(let (evaluator, x)):
                var named: [(String, RouterPredictions)] = [(Name.centralized, try centralized.predict(features: x))]
                if let l = local { named.append((Name.local, try l.predict(features: x))) }
                evaluations.append(ClientEvaluation(client: shard.id, report: try evaluator.evaluate(named), skipped: nil, mixtureWeights: nil)
                    .keepingCurves(withCurves.contains(i)))
            case .failure(let error):
                evaluations.append(ClientEvaluation(client: shard.id, report: nil, skipped: "\(error)", mixtureWeights: nil))
            }
        }
        return FamilyResult(family: family, global: global, clients: evaluations, rounds: nil, kmeans: nil,
                            missingLocal: missing, localsScoredGlobally: scoredGlobally.count < shards.count ? scoredGlobally.count : nil,
                            federatedPipeline: nil, safetyGate: nil)
    }

    /// Each client's training rows, or its held-out rows, with their features.
    static func clientsData(_ clients: [InProcessClient], heldOut: Bool) async throws -> [(features: Matrix, table: EvaluationTable)] {
        var out: [(features: Matrix, table: EvaluationTable)] = []
        for client in clients { out.append(heldOut ? try await client.localValidation() : try await client.localData()) }
        return out
    }

    /// A family's federated and centralized routers, and how to make a client's own routers: those are
    /// trained when the client is evaluated and dropped after, so memory does not grow with the client count.
    struct TrainedFamily: Sendable {
        var federated: any Router { federatedFile }
        var federatedFile: AnyRouter
        var centralized: any Router
        /// Trains client `i`'s local router on given data (for local baselines and cross-fitting).
        var trainLocal: @Sendable (Matrix, EvaluationTable, Int) throws -> any Router
        /// Client `i`'s router fine-tuned from the federated one on its own data.
        var fineTune: @Sendable ((features: Matrix, table: EvaluationTable), Int) throws -> any Router
        var rounds: [RoundReport]?
        var kmeansReport: KMeansFederationReport?
        /// The federated router before held-out rows joined it, for the safety gate (nil: `federatedFile`).
        var gateCandidate: AnyRouter?
    }

    /// Trains `family` federatedly, centralized and client-locally. With validation rows, the
    /// centralized baselines select on the pooled held-out rows and each local router on its own,
    /// as the federated router does on the clients' summed statistics.
    static func train(_ family: RouterFamily, _ c: SimulationConfiguration, coordinator: FederationCoordinator,
                      localData: [(features: Matrix, table: EvaluationTable)], localValidation: [ModelSelection.Validation]?,
                      pooled: (Matrix, EvaluationTable), pooledValidation: ModelSelection.Validation?,
                      progress: ProgressHandler?) async throws -> TrainedFamily {
        @Sendable func ownValidation(_ i: Int) -> ModelSelection.Validation? { localValidation.map { $0[i] } }
        switch family {
        case .mlp, .mf:
            // The MF-Router is the MLP machinery over a bilinear network (`MFRouter`).
            let settings = family == .mf ? c.mf : c.mlp
            let name = family.rawValue
            let (federated, rounds) = try await coordinator.trainMLP(settings, progress: { p in progress?(TrainingProgress(stage: "\(name): federated round", step: p.step, total: p.total, loss: p.loss)) })
            let base = settings.centralizedEquivalent(epochs: c.effectiveBaselineEpochs)
            progress?(TrainingProgress(stage: "\(name): centralized", step: 0, total: 1))
            let centralized = try MLPTrainer.train(features: pooled.0, table: pooled.1, configuration: base,
                                                   validation: settings.selectBestRound == true ? pooledValidation : nil)
            let trainLocal: @Sendable (Matrix, EvaluationTable, Int) throws -> any Router = { x, t, i in
                var lc = base
                lc.seed = SeededRandom(seed: settings.seed).derivedSeed(0x10CA1 &+ UInt64(i))
                return try MLPTrainer.train(features: x, table: t, configuration: lc, validation: settings.selectBestRound == true ? ownValidation(i) : nil)
            }
            let tune = { var t = settings.local; t.epochs = c.fineTuneEpochs; return t }()
            let fineTune: @Sendable ((features: Matrix, table: EvaluationTable), Int) throws -> any Router = { d, i in
                // One fine-tuning seed per client for both parametric families (what the export hands each client).
                let seed = fineTuneSeed(mlpSeed: c.mlp.seed, client: i)
                return try Personalization.fineTune(federated, features: d.features, table: d.table, settings: tune, seed: seed)
            }
            let file = family == .mf ? AnyRouter(try MFRouter(federated)) : AnyRouter(federated)
            return TrainedFamily(federatedFile: file, centralized: centralized, trainLocal: trainLocal, fineTune: fineTune, rounds: rounds)
        case .kmeans:
            progress?(TrainingProgress(stage: "kmeans: federated", step: 0, total: 1))
            // The gate is calibrated on the router before the held-out rows join its statistics.
            let trained = try await coordinator.trainKMeans(c.kmeans, forGate: localValidation != nil, progress: { p in
                progress?(TrainingProgress(stage: "kmeans: \(p.stage)", step: p.step, total: p.total, loss: p.loss))
            })
            let (federated, report) = (trained.router, trained.report)
            // The same cluster counts to average or choose from as the federation's (selecting without
            // validation rows falls back to `globalClusters`, the configuration's count, inside
            // `ModelSelection.kmeans`).
            let candidates = c.kmeans.clusterCandidates.flatMap { $0.isEmpty ? nil : $0 } ?? [c.kmeans.globalClusters]
            let policy = c.kmeans.clusterPolicy ?? .average
            let central = try ModelSelection.kmeans(features: pooled.0, table: pooled.1,
                                                    configuration: c.kmeans.kmeans(clusters: c.kmeans.globalClusters, seed: c.kmeans.seed),
                                                    candidates: candidates, policy: policy, validation: pooledValidation).router
            // Local K-Means: the cluster counts capped by the client's number of queries.
            let trainLocal: @Sendable (Matrix, EvaluationTable, Int) throws -> any Router = { x, t, i in
                guard x.rows >= 1 else { throw RouterError.noTrainingData("no local training queries") }
                let own = ownValidation(i)
                return try ModelSelection.kmeans(features: x, table: t,
                                                 configuration: c.kmeans.kmeans(clusters: c.kmeans.globalClusters, seed: SeededRandom(seed: c.kmeans.seed).derivedSeed(0x10CA1 &+ UInt64(i))),
                                                 candidates: candidates, policy: policy, validation: own).router
            }
            let fineTune: @Sendable ((features: Matrix, table: EvaluationTable), Int) throws -> any Router = { d, _ in
                try Personalization.fineTune(federated, features: d.features, table: d.table, priorStrength: c.kmeansPriorStrength)
            }
            return TrainedFamily(federatedFile: AnyRouter(federated), centralized: central, trainLocal: trainLocal, fineTune: fineTune, kmeansReport: report,
                                 gateCandidate: AnyRouter(trained.gateCandidate))
        case .knn:
            throw FederationError.invalidConfiguration("the kNN-Router has no federated training")
        }
    }

    static func summary(_ s: ClientShard, validation: EvaluationTable) -> ClientSummary {
        var tasks: [String: Int] = [:]
        for q in s.train.queries + s.test.queries { tasks[q.task, default: 0] += 1 }
        var perModel: [String: Int] = [:]
        for (m, name) in s.train.models.enumerated() {
            // Cells the client trains on: its held-out rows' cells are not among them.
            perModel[name] = (0..<s.train.queryCount).filter { s.train.isObserved($0, m) }.count
                - (0..<validation.queryCount).filter { validation.isObserved($0, m) }.count
        }
        return ClientSummary(id: s.id, trainQueries: s.train.queryCount - validation.queryCount, validationQueries: validation.queryCount,
                             observedTrainCells: s.train.observed.lazy.filter { $0 }.count - validation.observed.lazy.filter { $0 }.count,
                             testQueries: s.test.queryCount, evaluatedTestQueries: (0..<s.test.queryCount).filter { s.test.isFullyObserved(row: $0) }.count,
                             tasks: tasks, observedCellsPerModel: perModel)
    }
}
