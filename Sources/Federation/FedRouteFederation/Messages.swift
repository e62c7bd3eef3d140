import Foundation
import FedRouteEmbedding
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters

// The whole vocabulary between a federation's coordinator and its clients. Every reply carries
// model parameters or statistics summed over many rows — never a query text, a feature vector or a
// per-query label. The network transport (FedRouteFederationHTTP) serialises these `Codable` values unchanged.

/// What the coordinator asks a client to do.
public enum FederatedRequest: Sendable, Codable, Equatable {
    /// Basic facts: local train size, models, feature dimension once an encoder is set.
    case describe
    /// Per-bucket document counts of the local training texts under a hashed encoder.
    case documentFrequencies(HashedTFIDFEncoder.Configuration)
    /// Adopt the federation's encoder and featurise the local data with it.
    case useEncoder(EncoderSpec)
    /// Additive log-cost moments per model (for the shared cost normaliser).
    case costMoments
    /// The same moments over the training and the held-out rows: best-single@λ as an evaluation
    /// on all training rows picks it, the safety gate's fallback.
    case costMomentsWithHeldOut
    /// Train the MLP-Router locally from the given global parameters and return the delta.
    case trainMLP(MLPRoundTask)
    /// Pass 1 of federated k-means: local centres and their sizes.
    case localCentroids(LocalClusteringTask)
    /// Pass 2 of federated k-means: per (cluster, model) sums and counts on the global centres.
    case clusterStatistics(ClusterStatisticsTask)
    /// Score a candidate router on the client's held-out validation rows (sums only).
    case validate(ValidationTask)
    /// Secure aggregation, step 1: a fresh X25519 public key for this round. With `train` (only to clients whose
    /// description says `trainsWithKey`), the round's task without its participant list: the client starts
    /// training at once, answers with its key, and masks the update when `maskUpdate` brings the list, so the
    /// key exchange runs while the clients train instead of before.
    case secureAggregationKey(round: Int, train: MLPRoundTask? = nil)
    /// Secure aggregation, step 2 for a client that started training with its key: the update of the task sent
    /// with the key, masked for these participants (answered with `maskedUpdate`, as `trainMLP` would be), in the
    /// 32-bit ring when `words32` says how (see `MLPRoundTask.secureWords32`).
    case maskUpdate(round: Int, participants: [SecureAggregationParticipant], words32: SecureWords32? = nil)
    /// Secure aggregation, step 3: the pair keys shared with these listed clients that sent no update.
    case revealPairKeys(round: Int, dropped: [String])

    /// The case name, for logs and error messages.
    public var kind: String {
        switch self {
        case .describe: return "describe"
        case .documentFrequencies: return "documentFrequencies"
        case .useEncoder: return "useEncoder"
        case .costMoments: return "costMoments"
        case .costMomentsWithHeldOut: return "costMomentsWithHeldOut"
        case .trainMLP: return "trainMLP"
        case .localCentroids: return "localCentroids"
        case .clusterStatistics: return "clusterStatistics"
        case .validate: return "validate"
        case .secureAggregationKey: return "secureAggregationKey"
        case .maskUpdate: return "maskUpdate"
        case .revealPairKeys: return "revealPairKeys"
        }
    }

    /// The MLP round this request belongs to, if any.
    public var round: Int? {
        switch self {
        case .trainMLP(let t): return t.round
        case .secureAggregationKey(let r, _), .maskUpdate(let r, _, _), .revealPairKeys(let r, _): return r
        default: return nil
        }
    }
}

/// A client's answer to a `FederatedRequest`, case for case.
public enum FederatedReply: Sendable, Codable, Equatable {
    case description(ClientDescription)
    case documentFrequencies(DocumentFrequencies)
    case encoderReady(featureDimension: Int)
    case costMoments(CostMoments)
    case mlpUpdate(MLPUpdate)
    case localCentroids(LocalCentroids)
    case clusterStatistics(ClusterStatisticsReply)
    case validation(ValidationStatistics)
    /// A fresh X25519 public key, and the mask generators the client can expand (`MaskGenerator`
    /// names; nil from clients that predate the declaration, which use ChaCha20). `training`: whether the
    /// client started training on the task sent with the key request (nil from clients that predate it), so
    /// that it expects `maskUpdate` rather than `trainMLP`. `ring32`: the client can mask in the 32-bit ring
    /// (`SecureWords32`; nil from clients that predate it, which a round then keeps in the 64-bit ring).
    case secureAggregationKey(round: Int, publicKey: Data, masks: [String]? = nil, training: Bool? = nil, ring32: Bool? = nil)
    /// A secure-aggregation round's masked update (instead of `mlpUpdate`).
    case maskedUpdate(MaskedUpdate)
    /// Dropped client id → the pair key shared with it.
    case pairKeys(round: Int, keys: [String: Data])

    /// The case name, for error messages.
    public var kind: String {
        switch self {
        case .description: return "description"
        case .documentFrequencies: return "documentFrequencies"
        case .encoderReady: return "encoderReady"
        case .costMoments: return "costMoments"
        case .mlpUpdate: return "mlpUpdate"
        case .localCentroids: return "localCentroids"
        case .clusterStatistics: return "clusterStatistics"
        case .validation: return "validation"
        case .secureAggregationKey: return "secureAggregationKey"
        case .maskedUpdate: return "maskedUpdate"
        case .pairKeys: return "pairKeys"
        }
    }
}

/// The query encoder every participant uses (fitted state included).
public enum EncoderSpec: Sendable, Codable, Equatable {
    case hashedTFIDF(configuration: HashedTFIDFEncoder.Configuration, idf: [Float])
    /// The pretrained MiniLM: each client loads the weights itself; the fingerprint must match.
    case minilm(maxTokens: Int, truncation: WordPieceTokenizer.Truncation, fingerprint: String)

    /// The spec of an encoder the coordinator holds.
    public init(_ encoder: TextEncoder) {
        switch encoder {
        case .hashed(let e): self = .hashedTFIDF(configuration: e.configuration, idf: e.idf)
        case .minilm(let e): self = .minilm(maxTokens: e.maxTokens, truncation: e.truncation, fingerprint: e.fingerprint)
        }
    }

    /// Builds the encoder; MiniLM weights come from `minilmDirectory`.
    public func makeEncoder(minilmDirectory: String = MiniLMEncoder.configuredDirectory) throws -> TextEncoder {
        switch self {
        case .hashedTFIDF(let configuration, let idf): return .hashed(try HashedTFIDFEncoder(configuration: configuration, idf: idf))
        case .minilm(let maxTokens, let truncation, let fingerprint):
            let e = try MiniLMEncoder(directory: minilmDirectory, maxTokens: maxTokens, truncation: truncation)
            guard e.fingerprint == fingerprint else {
                throw EmbeddingError.invalidModel("the federation uses MiniLM weights \(fingerprint), \(minilmDirectory) holds \(e.fingerprint)")
            }
            return .minilm(e)
        }
    }

    /// The fingerprint of the encoder this spec builds.
    public var fingerprint: String {
        switch self {
        case .hashedTFIDF(let configuration, let idf): return (try? HashedTFIDFEncoder(configuration: configuration, idf: idf).fingerprint) ?? "invalid"
        case .minilm(_, _, let fingerprint): return fingerprint
        }
    }

    public var dimension: Int {
        switch self {
        case .hashedTFIDF(let configuration, _): return configuration.dimension
        case .minilm: return 384
        }
    }
}

/// Facts a client shares about itself: counts and names, nothing per query.
public struct ClientDescription: Sendable, Codable, Equatable {
    public var models: [String]
    /// Local training queries.
    public var trainQueries: Int
    /// Local training queries with at least one observed model.
    public var trainableQueries: Int
    /// Observed (query, model) cells in the local training data.
    public var observedCells: Int
    /// Dimension of the local features, nil before `useEncoder`.
    public var featureDimension: Int?
    /// Held-out validation queries (nil from clients built before validation existed: none).
    public var validationQueries: Int?
    /// The client starts a secure round's training on a task sent with the key request
    /// (`FederatedRequest.secureAggregationKey(round:train:)`); nil from clients that predate it.
    public var trainsWithKey: Bool?

    /// Most training queries one client may describe (2^40: beyond any real log, and small enough
    /// that every count derived from it stays far from overflow).
    public static let maxTrainQueries = 1 << 40

    public init(models: [String], trainQueries: Int, trainableQueries: Int, observedCells: Int, featureDimension: Int?,
                validationQueries: Int? = nil, trainsWithKey: Bool? = nil) {
        self.validationQueries = validationQueries
        self.trainsWithKey = trainsWithKey
        self.models = models
        self.trainQueries = trainQueries
        self.trainableQueries = trainableQueries
        self.observedCells = observedCells
        self.featureDimension = featureDimension
    }
}

/// Local-training settings the coordinator sends with each MLP round.
public struct LocalTrainingSettings: Sendable, Codable, Equatable {
    public var epochs = 1
    public var batchSize = 128
    public var optimizer = AdamWConfiguration(learningRate: 1e-3, weightDecay: 3e-4)
    public var gradientClip: Float = 1.0
    /// FedProx μ (0 = FedAvg).
    public var proximalMu: Float = 0
    /// Weight of the distillation term towards `MLPRoundTask.teacher` (growing by clients).
    public var distillationWeight: Float = 0
    /// When set, only the head columns of models with index ≥ this train (growing by models).
    public var trainModelsFrom: Int?

    public init() {}
}

/// One client's job in one FedAvg round.
public struct MLPRoundTask: Sendable, Codable, Equatable {
    public var round: Int
    public var architecture: MLPArchitecture
    public var parameters: [Tensor]
    public var costNormalizer: CostNormalizer
    public var settings: LocalTrainingSettings
    /// Frozen teacher parameters (same architecture) for distillation, if any.
    public var teacher: [Tensor]?
    /// Seed for the client's shuffling and dropout in this round.
    public var seed: UInt64
    /// DP-FedAvg: clip and noise the delta before sending it (nil = send it as is).
    public var privacy: UpdatePrivacy?
    /// Secure aggregation: the round's participants and their public keys (nil = send in the clear).
    public var secureAggregation: [SecureAggregationParticipant]?
    /// Secure aggregation in the 32-bit ring: how to weigh and encode the update (nil = the 64-bit ring).
    public var secureWords32: SecureWords32?

    public init(round: Int, architecture: MLPArchitecture, parameters: [Tensor], costNormalizer: CostNormalizer,
                settings: LocalTrainingSettings, teacher: [Tensor]? = nil, seed: UInt64,
                privacy: UpdatePrivacy? = nil, secureAggregation: [SecureAggregationParticipant]? = nil, secureWords32: SecureWords32? = nil) {
        self.round = round
        self.architecture = architecture
        self.parameters = parameters
        self.costNormalizer = costNormalizer
        self.settings = settings
        self.teacher = teacher
        self.seed = seed
        self.privacy = privacy
        self.secureAggregation = secureAggregation
        self.secureWords32 = secureWords32
    }
}

/// A client's answer to a round: parameter delta (local − global), how many rows it trained on, its loss.
public struct MLPUpdate: Sendable, Codable, Equatable {
    public var round: Int
    public var delta: [Tensor]
    public var sampleCount: Int
    public var meanLoss: Double

    public init(round: Int, delta: [Tensor], sampleCount: Int, meanLoss: Double) {
        self.round = round
        self.delta = delta
        self.sampleCount = sampleCount
        self.meanLoss = meanLoss
    }
}

/// Pass 1 of federated k-means.
public struct LocalClusteringTask: Sendable, Codable, Equatable {
    public var configuration: KMeansConfiguration

    public init(configuration: KMeansConfiguration) { self.configuration = configuration }
}

/// Local centres with the number of local points in each (small clusters withheld).
public struct LocalCentroids: Sendable, Codable, Equatable {
    public var centroids: Matrix
    public var sizes: [Double]
    /// Clusters not sent because they held fewer points than the client's privacy floor.
    public var withheldClusters: Int

    public init(centroids: Matrix, sizes: [Double], withheldClusters: Int) {
        self.centroids = centroids
        self.sizes = sizes
        self.withheldClusters = withheldClusters
    }
}

/// Pass 2 of federated k-means: the global centres to assign local points to.
public struct ClusterStatisticsTask: Sendable, Codable, Equatable {
    public var centroids: Matrix
    /// Also sum the held-out validation rows: once the cluster count is chosen on them, the final
    /// statistics use every local row (nil: training rows only).
    public var includeHeldOut: Bool?

    public init(centroids: Matrix, includeHeldOut: Bool? = nil) {
        self.centroids = centroids
        self.includeHeldOut = includeHeldOut
    }
}

public struct ClusterStatisticsReply: Sendable, Codable, Equatable {
    public var statistics: ClusterStatistics

    public init(statistics: ClusterStatistics) { self.statistics = statistics }
}

/// A router for clients to score on their held-out rows, and optionally the safety gate's λ bands.
public struct ValidationTask: Sendable, Codable, Equatable {
    public var candidate: ValidationCandidate
    public var bands: ValidationBands?

    public init(candidate: ValidationCandidate, bands: ValidationBands? = nil) {
        self.candidate = candidate
        self.bands = bands
    }
}

/// A candidate router in the form a client can rebuild and check.
public enum ValidationCandidate: Sendable, Codable, Equatable {
    /// An MLP- or MF-Router: its network and cost normaliser.
    case network(architecture: MLPArchitecture, parameters: [Tensor], costNormalizer: CostNormalizer)
    /// A K-Means-Router of one clustering: centres and pooled per-(cluster, model) statistics.
    case clusters(centroids: Matrix, statistics: ClusterStatistics)
    /// A K-Means-Router of several clusterings (at most `KMeansRouter.maxResolutions`); one
    /// clustering travels as `clusters`, which clients built before this case understand.
    case clusterings([KMeansResolution])
    /// A K-Means-Router of several clusterings combined `KMeansCombination.nested`.
    case nestedClusterings([KMeansResolution])

    /// The candidate for a router of a federated family.
    public init(_ router: AnyRouter) throws {
        if let r = router.as(MLPRouter.self) {
            self = .network(architecture: r.network.architecture, parameters: r.network.parameters, costNormalizer: r.costNormalizer)
        } else if let r = router.as(MFRouter.self) {
            let f = r.factorization
            self = .network(architecture: f.network.architecture, parameters: f.network.parameters, costNormalizer: f.costNormalizer)
        } else if let r = router.as(KMeansRouter.self) {
            self = r.resolutions.count == 1 ? .clusters(centroids: r.resolutions[0].centroids, statistics: r.resolutions[0].statistics)
                 : r.combination == .nested ? .nestedClusterings(r.resolutions) : .clusterings(r.resolutions)
        } else {
            throw FederationError.invalidConfiguration("a \(router.family.rawValue) router cannot be validated federatedly")
        }
    }

    /// The router, rebuilt and checked (shapes, finite values) for `models`.
    public func router(models: [String]) throws -> any Router {
        switch self {
        case .network(let architecture, let parameters, let normalizer):
            guard architecture.modelCount == models.count else {
                throw RouterError.invalidConfiguration("the candidate network is for \(architecture.modelCount) models, the data has \(models.count)")
            }
            return try MLPRouter(models: models, network: MLPNetwork(architecture: architecture, parameters: parameters), costNormalizer: normalizer)
        case .clusters(let centroids, let statistics):
            return try KMeansRouter(models: models, centroids: centroids, statistics: statistics)
        case .clusterings(let resolutions):
            return try KMeansRouter(models: models, resolutions: resolutions)
        case .nestedClusterings(let resolutions):
            return try KMeansRouter(models: models, resolutions: resolutions, combination: .nested)
        }
    }
}
