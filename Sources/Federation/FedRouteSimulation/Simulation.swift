import FedRouteData
import FedRouteEmbedding
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters

/// Everything one simulation run needs; every number of the paper's protocol is here.
public struct SimulationConfiguration: Sendable, Codable, Equatable {
    public var partition = PartitionConfiguration()
    public var encoder = SimulationEncoder.hashed(HashedTFIDFEncoder.Configuration())
    public var families = RouterFamily.federated
    public var mlp = FederatedMLPConfiguration()
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
    public private(set) var seed: UInt64 = 0

    public init() {}

    /// Sets the master seed; partition, model initialisation, sampling and k-means seeds derive from it.
    public mutating func setSeed(_ seed: UInt64) {
        self.seed = seed
        let root = SeededRandom(seed: seed)
        partition.seed = root.derivedSeed(1)
        mlp.seed = root.derivedSeed(2)
        kmeans.seed = root.derivedSeed(3)
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
    /// The federated router with the federation's encoder (not part of the JSON; saved as a router file).
    public var federatedPipeline: RoutingPipeline?

    enum CodingKeys: String, CodingKey { case family, global, clients, rounds, kmeans, missingLocal }
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

    enum CodingKeys: String, CodingKey { case configuration, clients, globalTestQueries, centralizedTrainCells, families }
}

/// Runs the paper's protocol: partition → federated encoder → federated routers, centralized and
/// client-local baselines, personalisation → evaluation on the global and each client's test set.
public enum Simulation {
    /// Router names used in the reports.
    public enum Name {
        public static let federated = "federated"
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

    public static func run(_ table: EvaluationTable, configuration c: SimulationConfiguration,
                           featurize: Featurize = { $0.encode($1) },
                           progress: ProgressHandler? = nil) async throws -> SimulationResult {
        if let problem = RouterFamily.federatedProblem(c.families) { throw FederationError.invalidConfiguration(problem) }
        if c.families.contains(.mlp) { try c.mlp.validate(clients: c.partition.clients) }
        guard c.clientPolicy.minimumGroupSize >= 1 else {
            throw FederationError.invalidConfiguration("the privacy floor (minimum group size) must be ≥ 1, not \(c.clientPolicy.minimumGroupSize)")
        }
        let shards = try FederatedPartition.make(table, configuration: c.partition)
        // The encoder: hashed TF-IDF with IDF from summed per-client document counts, or MiniLM.
        let encoder: TextEncoder
        switch c.encoder {
        case .hashed(let configuration):
            let counting = try FederationCoordinator(clients: shards.map { InProcessClient(id: $0.id, train: $0.train, policy: c.clientPolicy) })
            encoder = .hashed(try await counting.fitHashedEncoder(configuration))
        case .minilm(let directory, let maxTokens, let truncation):
            encoder = .minilm(try MiniLMEncoder(directory: directory, maxTokens: maxTokens, truncation: truncation))
        }
        // Every query is encoded once; a client's features are exactly what it would compute itself
        // from its own texts under this encoder (checked by fingerprint).
        progress?(TrainingProgress(stage: "encoding \(table.queryCount) queries (\(encoder.kind))", step: 0, total: 1))
        let all = featurize(encoder, table.queries.map(\.text))
        let spec = EncoderSpec(encoder)
        let clients = shards.map { shard in
            InProcessClient(id: shard.id, train: shard.train, policy: c.clientPolicy) { requested, _ in
                guard requested.fingerprint == spec.fingerprint else { return try InProcessClient.encodeLocally(requested, shard.train.queries) }
                return all.gatherRows(shard.trainRows)
            }
        }
        let coordinator = try FederationCoordinator(clients: clients)
        _ = try await coordinator.useEncoder(spec)
        // Experimenter's view (not part of the federation): test sets and the pooled train set.
        let globalTest = try EvaluationTable.concatenate(shards.map(\.test))
        let pooledTrain = try EvaluationTable.concatenate(shards.map(\.train))
        // The evaluators keep only fully labelled test rows, in order; features are taken for exactly those.
        func evaluatedRows(_ rows: [Int]) -> [Int] { rows.filter { table.isFullyObserved(row: $0) } }
        let globalEvaluator = try Evaluator(train: pooledTrain, test: globalTest, lambdas: c.lambdas)
        let testFeatures = all.gatherRows(evaluatedRows(shards.flatMap(\.testRows)))
        var clientEvaluators: [Result<(Evaluator, Matrix), any Error>] = []
        for shard in shards {
            do {
                let e = try Evaluator(train: shard.train, test: shard.test, lambdas: c.lambdas)
                clientEvaluators.append(.success((e, all.gatherRows(evaluatedRows(shard.testRows)))))
            } catch { clientEvaluators.append(.failure(error)) }
        }
        let localData = try await clientsData(clients)
        let pooledFeatures = Matrix(rows: pooledTrain.queryCount, cols: encoder.dimension, data: localData.flatMap(\.features.data))
        let summaries = shards.map { summary($0) }

        var families: [FamilyResult] = []
        for family in c.families {
            let trained = try await train(family, c, coordinator: coordinator, localData: localData, pooled: (pooledFeatures, pooledTrain), progress: progress)
            progress?(TrainingProgress(stage: "\(family.rawValue): evaluating", step: 0, total: shards.count + 1))
            // Global test set.
            var routers: [(name: String, predictions: RouterPredictions)] = [
                (Name.federated, try trained.federated.predict(features: testFeatures)),
                (Name.centralized, try trained.centralized.predict(features: testFeatures)),
            ]
            for (i, l) in trained.local.enumerated() {
                if let l { routers.append((Name.local(shards[i].id), try l.predict(features: testFeatures))) }
            }
            let global = try globalEvaluator.evaluate(routers)
            // Each client's own test set.
            var evaluations: [ClientEvaluation] = []
            var missing: [String: String] = [:]
            for (i, shard) in shards.enumerated() {
                let (fx, ft) = localData[i]
                var weights: MixtureWeights?
                var named: [(String, any Router)] = [(Name.federated, trained.federated), (Name.centralized, trained.centralized)]
                if let l = trained.local[i] {
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
                } else {
                    missing[shard.id] = trained.missingReason[i] ?? "no local router"
                }
                if let f = trained.fineTuned[i] { named.append((Name.fineTuned, f)) }
                switch clientEvaluators[i] {
                case .success(let (evaluator, x)):
                    let report = try evaluator.evaluate(named.map { ($0.0, try $0.1.predict(features: x)) })
                    evaluations.append(ClientEvaluation(client: shard.id, report: report, skipped: nil, mixtureWeights: weights))
                case .failure(let error):
                    evaluations.append(ClientEvaluation(client: shard.id, report: nil, skipped: "\(error)", mixtureWeights: weights))
                }
                progress?(TrainingProgress(stage: "\(family.rawValue): evaluating", step: i + 1, total: shards.count + 1))
            }
            families.append(FamilyResult(family: family, global: global, clients: evaluations, rounds: trained.rounds,
                                         kmeans: trained.kmeansReport, missingLocal: missing,
                                         federatedPipeline: try RoutingPipeline(encoder: encoder, router: trained.federatedFile)))
        }
        return SimulationResult(configuration: c, clients: summaries, globalTestQueries: globalTest.queryCount,
                                centralizedTrainCells: pooledTrain.observed.lazy.filter { $0 }.count, families: families, shards: shards)
    }

    static func clientsData(_ clients: [InProcessClient]) async throws -> [(features: Matrix, table: EvaluationTable)] {
        var out: [(features: Matrix, table: EvaluationTable)] = []
        for client in clients { out.append(try await client.localData()) }
        return out
    }

    struct TrainedFamily {
        var federated: any Router { federatedFile }
        var federatedFile: AnyRouter
        var centralized: any Router
        var local: [(any Router)?]
        var fineTuned: [(any Router)?]
        var missingReason: [Int: String]
        /// Trains client `i`'s local router on given data (for local baselines and cross-fitting).
        var trainLocal: (Matrix, EvaluationTable, Int) throws -> any Router
        var rounds: [RoundReport]?
        var kmeansReport: KMeansFederationReport?
    }

    static func train(_ family: RouterFamily, _ c: SimulationConfiguration, coordinator: FederationCoordinator,
                      localData: [(features: Matrix, table: EvaluationTable)], pooled: (Matrix, EvaluationTable),
                      progress: ProgressHandler?) async throws -> TrainedFamily {
        switch family {
        case .mlp:
            let (federated, rounds) = try await coordinator.trainMLP(c.mlp, progress: { p in progress?(TrainingProgress(stage: "mlp: federated round", step: p.step, total: p.total, loss: p.loss)) })
            let base = c.mlp.centralizedEquivalent(epochs: c.effectiveBaselineEpochs)
            progress?(TrainingProgress(stage: "mlp: centralized", step: 0, total: 1))
            let centralized = try MLPTrainer.train(features: pooled.0, table: pooled.1, configuration: base)
            let trainLocal: (Matrix, EvaluationTable, Int) throws -> any Router = { x, t, i in
                var lc = base
                lc.seed = SeededRandom(seed: c.mlp.seed).derivedSeed(0x10CA1 &+ UInt64(i))
                return try MLPTrainer.train(features: x, table: t, configuration: lc)
            }
            var tune = c.mlp.local
            tune.epochs = c.fineTuneEpochs
            let (local, tuned, missing) = try perClient(localData, stage: "mlp", trainLocal: trainLocal, progress: progress) { d, i in
                let seed = fineTuneSeed(mlpSeed: c.mlp.seed, client: i)
                return try Personalization.fineTune(federated, features: d.features, table: d.table, settings: tune, seed: seed)
            }
            return TrainedFamily(federatedFile: AnyRouter(federated), centralized: centralized, local: local, fineTuned: tuned, missingReason: missing,
                                 trainLocal: trainLocal, rounds: rounds)
        case .kmeans:
            progress?(TrainingProgress(stage: "kmeans: federated", step: 0, total: 1))
            let (federated, report) = try await coordinator.trainKMeans(c.kmeans)
            let central = try KMeansRouter.train(features: pooled.0, table: pooled.1,
                                                 configuration: c.kmeans.kmeans(clusters: c.kmeans.globalClusters, seed: c.kmeans.seed))
            // Local K-Means: the global cluster count, capped by the client's number of queries.
            let trainLocal: (Matrix, EvaluationTable, Int) throws -> any Router = { x, t, i in
                let k = min(c.kmeans.globalClusters, x.rows)
                guard k >= 1 else { throw RouterError.noTrainingData("no local training queries") }
                return try KMeansRouter.train(features: x, table: t,
                                              configuration: c.kmeans.kmeans(clusters: k, seed: SeededRandom(seed: c.kmeans.seed).derivedSeed(0x10CA1 &+ UInt64(i))))
            }
            let (local, tuned, missing) = try perClient(localData, stage: "kmeans", trainLocal: trainLocal, progress: progress) { d, _ in
                try Personalization.fineTune(federated, features: d.features, table: d.table, priorStrength: c.kmeansPriorStrength)
            }
            return TrainedFamily(federatedFile: AnyRouter(federated), centralized: central, local: local, fineTuned: tuned, missingReason: missing,
                                 trainLocal: trainLocal, kmeansReport: report)
        case .knn:
            throw FederationError.invalidConfiguration("the kNN-Router has no federated training")
        }
    }

    /// Each client's local router (nil, with the reason, where its data cannot train one) and its
    /// fine-tuned-from-global router.
    static func perClient(_ localData: [(features: Matrix, table: EvaluationTable)], stage: String,
                          trainLocal: (Matrix, EvaluationTable, Int) throws -> any Router, progress: ProgressHandler?,
                          fineTune: ((features: Matrix, table: EvaluationTable), Int) throws -> any Router)
        throws -> (local: [(any Router)?], tuned: [(any Router)?], missing: [Int: String]) {
        var local: [(any Router)?] = []
        var tuned: [(any Router)?] = []
        var missing: [Int: String] = [:]
        for (i, d) in localData.enumerated() {
            progress?(TrainingProgress(stage: "\(stage): local and fine-tuned", step: i, total: localData.count))
            do {
                local.append(try trainLocal(d.features, d.table, i))
            } catch RouterError.noTrainingData(let why) {
                local.append(nil)
                missing[i] = why
            }
            tuned.append(try fineTune(d, i))
        }
        return (local, tuned, missing)
    }

    static func summary(_ s: ClientShard) -> ClientSummary {
        var tasks: [String: Int] = [:]
        for q in s.train.queries + s.test.queries { tasks[q.task, default: 0] += 1 }
        var perModel: [String: Int] = [:]
        for (m, name) in s.train.models.enumerated() {
            perModel[name] = (0..<s.train.queryCount).filter { s.train.isObserved($0, m) }.count
        }
        return ClientSummary(id: s.id, trainQueries: s.train.queryCount, observedTrainCells: s.train.observed.lazy.filter { $0 }.count,
                             testQueries: s.test.queryCount, evaluatedTestQueries: (0..<s.test.queryCount).filter { s.test.isFullyObserved(row: $0) }.count,
                             tasks: tasks, observedCellsPerModel: perModel)
    }
}
