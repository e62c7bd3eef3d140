import FedRouteData
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

    public init(minimumGroupSize: Int = 3) { self.minimumGroupSize = minimumGroupSize }
}

/// A client holding its own evaluation data in this process.
///
/// The data never leaves the actor through `handle`; `localData()` is the client's own access
/// (for local baselines and personalisation, which run on the client).
public actor InProcessClient: FederatedClient {
    public nonisolated let id: String
    let train: EvaluationTable
    let policy: ClientPolicy
    let featurize: Featurizer
    var features: Matrix?

    /// Turns the client's training queries into features under an encoder spec.
    public typealias Featurizer = @Sendable (EncoderSpec, [Query]) throws -> Matrix

    /// Builds the encoder from the spec and encodes the query texts.
    public static let encodeLocally: Featurizer = { spec, queries in try spec.makeEncoder().encode(queries.map(\.text)) }

    /// `featurize` defaults to encoding locally; a simulation may hand in features it computed
    /// once for all clients with the same encoder.
    public init(id: String, train: EvaluationTable, policy: ClientPolicy = ClientPolicy(), featurize: @escaping Featurizer = InProcessClient.encodeLocally) {
        self.id = id
        self.train = train
        self.policy = policy
        self.featurize = featurize
    }

    /// The client's own training table and features (after `useEncoder`). Local use only.
    public func localData() throws -> (features: Matrix, table: EvaluationTable) {
        guard let features else { throw FederationError.protocolViolation(client: id, "no encoder set yet") }
        return (features, train)
    }

    public func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        switch request {
        case .describe:
            let trainable = (0..<train.queryCount).filter { train.observedCount(row: $0) > 0 }.count
            return .description(ClientDescription(models: train.models, trainQueries: train.queryCount, trainableQueries: trainable,
                                                  observedCells: train.observed.lazy.filter { $0 }.count,
                                                  featureDimension: features?.cols))
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
            features = f
            return .encoderReady(featureDimension: f.cols)
        case .costMoments:
            return .costMoments(CostMoments(table: train))
        case .trainMLP(let task):
            return .mlpUpdate(try trainRound(task))
        case .localCentroids(let task):
            return .localCentroids(try localCentroids(task))
        case .clusterStatistics(let task):
            let (x, table) = try localData()
            return .clusterStatistics(ClusterStatisticsReply(statistics: try ClusterStatistics(centroids: task.centroids, features: x, table: table)))
        }
    }

    func checkModels(_ count: Int) throws {
        guard count == train.modelCount else {
            throw FederationError.protocolViolation(client: id, "the task is for \(count) models, this client's data has \(train.modelCount)")
        }
    }

    func trainRound(_ task: MLPRoundTask) throws -> MLPUpdate {
        let (x, table) = try localData()
        try checkModels(task.architecture.modelCount)
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
        if !data.trainableRows.isEmpty {
            for _ in 0..<s.epochs {
                loss = try MLPTrainer.runEpoch(network: &network, optimizer: &optimizer, data: data, rows: data.trainableRows,
                                               batchSize: s.batchSize, gradientClip: s.gradientClip, rng: &rng, options: options)
            }
        }
        let delta = zip(network.parameters, global.parameters).map { local, g in
            Tensor(name: g.name, shape: g.shape, values: zip(local.values, g.values).map { $0 - $1 })
        }
        return MLPUpdate(round: task.round, delta: delta, sampleCount: data.trainableRows.count, meanLoss: loss)
    }

    func localCentroids(_ task: LocalClusteringTask) throws -> LocalCentroids {
        let (x, _) = try localData()
        var c = task.configuration
        c.clusters = min(c.clusters, x.rows)
        guard c.clusters >= 1 else { return LocalCentroids(centroids: Matrix(rows: 0, cols: x.cols), sizes: [], withheldClusters: 0) }
        let result = try KMeans.fit(points: x, configuration: c)
        var sizes = [Double](repeating: 0, count: c.clusters)
        for a in result.assignments { sizes[a] += 1 }
        let kept = sizes.indices.filter { sizes[$0] >= Double(policy.minimumGroupSize) }
        return LocalCentroids(centroids: result.centroids.gatherRows(kept), sizes: kept.map { sizes[$0] },
                              withheldClusters: sizes.indices.filter { sizes[$0] > 0 }.count - kept.count)
    }
}

/// Errors of federated training, naming the client involved.
public enum FederationError: Error, CustomStringConvertible, Equatable {
    /// A client's reply does not fit the request (wrong case, shape, round, non-finite values…).
    case invalidReply(client: String, String)
    /// A request a client cannot serve.
    case protocolViolation(client: String, String)
    /// Too few clients answered for the step to go on.
    case notEnoughClients(String)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .invalidReply(let c, let why): return "client \(c) sent an invalid reply: \(why)"
        case .protocolViolation(let c, let why): return "client \(c) cannot serve the request: \(why)"
        case .notEnoughClients(let why): return "not enough clients: \(why)"
        case .invalidConfiguration(let why): return "invalid federation configuration: \(why)"
        }
    }
}
