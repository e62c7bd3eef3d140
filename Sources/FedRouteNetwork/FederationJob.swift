import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging
import Yams

/// Everything `fedroute server` needs (YAML or JSON; every key is required, see
/// docs/FEDERATION.md and `fedroute simulate --export-federation`, which writes one).
public struct FederationServerConfiguration: Sendable, Codable, Equatable {
    public struct TLSFiles: Sendable, Codable, Equatable {
        public var certificate: String
        public var key: String
        public init(certificate: String, key: String) { self.certificate = certificate; self.key = key }
    }

    public struct Client: Sendable, Codable, Equatable {
        public var id: String
        /// Base64 raw Ed25519 public key (`fedroute federation keygen` prints it).
        public var publicKey: String
        public init(id: String, publicKey: String) { self.id = id; self.publicKey = publicKey }
    }

    public var federation: String
    public var host: String
    public var port: Int
    /// Nil serves plaintext HTTP/1.1 (loopback experiments only).
    public var tls: TLSFiles?
    public var clients: [Client]
    /// `mlp`, `kmeans` or both, trained in this order.
    public var families: [String]
    public var encoder: HashedTFIDFEncoder.Configuration
    public var mlp: FederatedMLPConfiguration
    public var kmeans: FederatedKMeansConfiguration
    /// Clients that must be online before each MLP round starts.
    public var minimumOnline: Int
    public var roundDeadlineSeconds: Double
    /// How long setup waits for every client, and a round for `minimumOnline`, before giving up.
    public var joinTimeoutSeconds: Double
    /// After a restart every client's session is gone: the first round of the resumed job waits this
    /// long for all of them to re-join before settling for `minimumOnline` (absent: 10 s).
    public var rejoinGraceSeconds: Double?
    /// Checkpoints (state.json) go here; a restarted server resumes from them.
    public var stateDirectory: String
    /// Router files and summary.json go here.
    public var outputDirectory: String
    /// A fully labelled native JSONL table held by the server: AUC is reported after every round.
    public var validation: String?

    public init(federation: String, host: String, port: Int, tls: TLSFiles?, clients: [Client], families: [String],
                encoder: HashedTFIDFEncoder.Configuration, mlp: FederatedMLPConfiguration, kmeans: FederatedKMeansConfiguration,
                minimumOnline: Int, roundDeadlineSeconds: Double, joinTimeoutSeconds: Double, stateDirectory: String,
                outputDirectory: String, validation: String?, rejoinGraceSeconds: Double? = nil) {
        self.federation = federation
        self.host = host
        self.port = port
        self.tls = tls
        self.clients = clients
        self.families = families
        self.encoder = encoder
        self.mlp = mlp
        self.kmeans = kmeans
        self.minimumOnline = minimumOnline
        self.roundDeadlineSeconds = roundDeadlineSeconds
        self.joinTimeoutSeconds = joinTimeoutSeconds
        self.stateDirectory = stateDirectory
        self.outputDirectory = outputDirectory
        self.validation = validation
        self.rejoinGraceSeconds = rejoinGraceSeconds
    }

    /// The re-join grace in effect.
    public var rejoinGrace: Duration { .milliseconds(Int64((rejoinGraceSeconds ?? 10) * 1000)) }

    public static func load(path: String) throws -> FederationServerConfiguration {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw WireError("cannot read the server configuration \(path): \(error.localizedDescription)") }
        let c: FederationServerConfiguration
        do { c = try YAMLDecoder().decode(FederationServerConfiguration.self, from: text) } catch let e as DecodingError {
            throw WireError("\(path): \(Self.describe(e))")
        } catch { throw WireError("\(path): \(error)") }
        try c.validate(path: path)
        return c
    }

    static func describe(_ e: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String { path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description }
        switch e {
        case .keyNotFound(let k, let ctx): return "\(at(ctx.codingPath + [k])) is missing"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx): return "\(at(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    func validate(path: String) throws {
        let ids = clients.map(\.id)
        guard !ids.isEmpty, Set(ids).count == ids.count else { throw WireError("\(path): clients must be non-empty with unique ids") }
        guard families.allSatisfy({ ["mlp", "kmeans"].contains($0) }), !families.isEmpty else { throw WireError("\(path): families must be mlp and/or kmeans") }
        guard (1...clients.count).contains(minimumOnline) else { throw WireError("\(path): minimumOnline must be in 1…\(clients.count)") }
        guard roundDeadlineSeconds > 0, joinTimeoutSeconds > 0, (0...65535).contains(port) else {
            throw WireError("\(path): deadlines must be > 0 and the port in 0…65535")
        }
        if let g = rejoinGraceSeconds, !(g.isFinite && g >= 0) { throw WireError("\(path): rejoinGraceSeconds must be ≥ 0, not \(g)") }
        if mlp.secureAggregation && clients.count < 2 { throw WireError("\(path): secure aggregation needs ≥ 2 clients") }
    }
}

/// What the server keeps on disk to resume: written atomically after setup, every round and every family.
public struct FederationJobState: Sendable, Codable {
    public struct Setup: Sendable, Codable {
        public var encoder: EncoderSpec
        public var descriptions: [ClientDescription]
        public var normalizer: CostNormalizer
    }

    public var setup: Setup?
    public var mlp: MLPTrainingState?
    public var finishedFamilies: [String] = []
    /// Last nonce accepted from each client, so a restart does not reopen replays.
    public var nonces: [String: UInt64] = [:]
    public var restarts = 0
    /// Per completed round: wire bytes in/out and seconds.
    public var roundTraffic: [RoundTraffic] = []
    public var validationAUC: [String: Double] = [:]

    public init() {}
}

public struct RoundTraffic: Sendable, Codable, Equatable {
    public var round: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var seconds: Double
    public var validationAUC: Double?
}

/// Reads and writes the job state; every write goes to a temporary file renamed over the old one.
public struct CheckpointStore: Sendable {
    public let path: String

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = (directory as NSString).appendingPathComponent("state.json")
    }

    public func load() throws -> FederationJobState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do { return try Wire.decoder().decode(FederationJobState.self, from: Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw WireError("the checkpoint \(path) cannot be read (\(error)); move it away to start over")
        }
    }

    public func save(_ state: FederationJobState) throws {
        try Wire.encoder().encode(state).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// The server-side training job: setup → MLP rounds → K-Means, checkpointed, over a registry.
public struct FederationJob: Sendable {
    public let configuration: FederationServerConfiguration
    public let registry: ClientRegistry
    public let store: CheckpointStore
    let logger: Logger
    let progress: ProgressHandler?

    public init(configuration: FederationServerConfiguration, registry: ClientRegistry, store: CheckpointStore,
                logger: Logger, progress: ProgressHandler? = nil) {
        self.configuration = configuration
        self.registry = registry
        self.store = store
        self.logger = logger
        self.progress = progress
    }

    public struct Result: Sendable, Codable {
        public var federation: String
        public var validationAUC: [String: Double]
        public var rounds: [RoundReport]
        public var traffic: [RoundTraffic]
        public var kmeans: KMeansFederationReport?
        public var restarts: Int
        public var routerFiles: [String: String]
    }

    /// Runs (or resumes) the job to the end and writes the routers and summary.json.
    public func run(initialState: FederationJobState?) async throws -> Result {
        let c = configuration
        var state = initialState ?? FederationJobState()
        let deadline = Duration.milliseconds(Int64(c.roundDeadlineSeconds * 1000))
        let joinTimeout = Duration.milliseconds(Int64(c.joinTimeoutSeconds * 1000))
        let clients = c.clients.map { RemoteClient(id: $0.id, registry: registry, deadline: deadline) as any FederatedClient }
        let coordinator = try FederationCoordinator(clients: clients, maxConcurrentRequests: clients.count)
        let validation = try c.validation.map { try Self.loadValidation($0) }
        try FileManager.default.createDirectory(atPath: c.outputDirectory, withIntermediateDirectories: true)

        // Setup: every client, once (its results are checkpointed).
        let setup: FederationJobState.Setup
        if let s = state.setup {
            setup = s
            await registry.adoptEncoder(s.encoder)
        } else {
            logger.info("waiting for every client", metadata: ["clients": .stringConvertible(c.clients.count)])
            try await registry.waitForClients(c.clients.count, timeout: joinTimeout)
            let encoder = try await coordinator.fitHashedEncoder(c.encoder)
            let spec = EncoderSpec.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf)
            _ = try await coordinator.useEncoder(spec)
            let descriptions = try await coordinator.describe()
            let normalizer = try await coordinator.costNormalizer(models: descriptions[0].models.count)
            setup = .init(encoder: spec, descriptions: descriptions, normalizer: normalizer)
            state.setup = setup
            try store.save(state)
            logger.info("setup done", metadata: ["models": .stringConvertible(descriptions[0].models.count), "dimension": .stringConvertible(spec.dimension)])
        }
        let encoder = try setup.encoder.makeEncoder()
        let models = setup.descriptions[0].models
        let validationSet = try validation.map { try Self.validationSet($0, encoder: encoder, models: models) }
        var files: [String: String] = [:]
        // A resumed job's clients lost their sessions with the old process: the first training step
        // gives them a moment to re-join, so a sampled client is not failed for being a second late.
        let rejoin = RejoinGrace(pending: initialState != nil, registry: registry, grace: c.rejoinGrace, clients: c.clients.count, logger: logger)

        if c.families.contains("mlp") {
            let file = (c.outputDirectory as NSString).appendingPathComponent("mlp.router.safetensors")
            if !state.finishedFamilies.contains("mlp") {
                let initial = try FederationCoordinator.initialMLP(c.mlp, models: models, featureDimension: setup.encoder.dimension, normalizer: setup.normalizer)
                let box = StateBox(state)
                let roundStart = RoundClock()
                let (router, _) = try await coordinator.continueMLP(
                    initial, c.mlp, descriptions: setup.descriptions, resume: state.mlp,
                    beforeRound: { round in
                        try await rejoin.wait()
                        try await registry.waitForClients(c.minimumOnline, timeout: joinTimeout)
                        await roundStart.start(bytesIn: await registry.bytesIn, bytesOut: await registry.bytesOut)
                        let online = await registry.onlineCount
                        logger.info("round started", metadata: ["round": .stringConvertible(round), "online": .stringConvertible(online)])
                    },
                    checkpoint: { mlp in
                        var s = await box.state
                        s.mlp = mlp
                        let (bytesIn, bytesOut, seconds) = await roundStart.stop(bytesIn: await registry.bytesIn, bytesOut: await registry.bytesOut)
                        var auc: Double?
                        if let v = validationSet {
                            let r = try MLPRouter(models: models, network: MLPNetwork(architecture: initial.network.architecture, parameters: mlp.parameters),
                                                  costNormalizer: setup.normalizer)
                            auc = try Self.auc(of: r, on: v)
                        }
                        let report = mlp.reports.last!
                        s.roundTraffic.append(RoundTraffic(round: mlp.completedRounds, bytesIn: bytesIn, bytesOut: bytesOut, seconds: seconds, validationAUC: auc))
                        s.nonces = await registry.nonces
                        try store.save(s)
                        await box.set(s)
                        var meta: Logger.Metadata = ["round": .stringConvertible(report.round), "aggregated": .stringConvertible(report.aggregated.count),
                                                     "sampled": .stringConvertible(report.sampled.count), "seconds": .string(String(format: "%.2f", seconds)),
                                                     "bytes_in": .stringConvertible(bytesIn), "bytes_out": .stringConvertible(bytesOut)]
                        if let l = report.meanLoss { meta["loss"] = .string(String(format: "%.4f", l)) }
                        if let auc { meta["validation_auc"] = .string(String(format: "%.4f", auc)) }
                        if let p = report.privacy { meta["epsilon"] = .string(String(format: "%.3f", p.epsilon)) }
                        if !report.rejected.isEmpty { meta["rejected"] = .string(report.rejected.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")) }
                        logger.info("checkpoint written", metadata: meta)
                    },
                    progress: progress)
                state = await box.state
                try RouterFile.save(try RoutingPipeline(encoder: encoder, router: .mlp(router)), to: file,
                                    extraMetadata: ["trained_by": "fedroute server (federated, \(c.federation))"])
                if let v = validationSet { state.validationAUC["mlp"] = try Self.auc(of: router, on: v) }
                state.finishedFamilies.append("mlp")
                try store.save(state)
            }
            files["mlp"] = file
        }
        var kmeansReport: KMeansFederationReport?
        if c.families.contains("kmeans") {
            let file = (c.outputDirectory as NSString).appendingPathComponent("kmeans.router.safetensors")
            if !state.finishedFamilies.contains("kmeans") {
                try await rejoin.wait()
                try await registry.waitForClients(c.minimumOnline, timeout: joinTimeout)
                let (router, report) = try await coordinator.trainKMeans(c.kmeans, descriptions: setup.descriptions, progress: progress)
                kmeansReport = report
                try RouterFile.save(try RoutingPipeline(encoder: encoder, router: .kmeans(router)), to: file,
                                    extraMetadata: ["trained_by": "fedroute server (federated, \(c.federation))"])
                if let v = validationSet { state.validationAUC["kmeans"] = try Self.auc(of: router, on: v) }
                state.finishedFamilies.append("kmeans")
                try store.save(state)
                logger.info("k-means done", metadata: ["clusters": .stringConvertible(report.globalClusters),
                                                       "rejected": .stringConvertible(report.rejected.count),
                                                       "validation_auc": .string(state.validationAUC["kmeans"].map { String(format: "%.4f", $0) } ?? "-")])
            }
            files["kmeans"] = file
        }
        let result = Result(federation: c.federation, validationAUC: state.validationAUC, rounds: state.mlp?.reports ?? [],
                            traffic: state.roundTraffic, kmeans: kmeansReport, restarts: state.restarts, routerFiles: files)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try e.encode(result).write(to: URL(fileURLWithPath: (c.outputDirectory as NSString).appendingPathComponent("summary.json")), options: .atomic)
        var routerBytes: [String: Data] = [:]
        for (family, file) in files { routerBytes[family] = try Data(contentsOf: URL(fileURLWithPath: file)) }
        await registry.finish(routers: routerBytes)
        return result
    }

    // MARK: Validation

    static func loadValidation(_ path: String) throws -> EvaluationTable {
        try DatasetLoader.load(path: path, format: .native).table
    }

    struct ValidationSet: Sendable {
        let evaluator: Evaluator
        let features: Matrix
    }

    static func validationSet(_ table: EvaluationTable, encoder: TextEncoder, models: [String]) throws -> ValidationSet {
        guard table.models == models else { throw RouterError.modelMismatch(expected: models, got: table.models) }
        let rows = (0..<table.queryCount).filter { table.isFullyObserved(row: $0) }
        let evaluator = try Evaluator(train: table, test: table, lambdas: FrontierMetrics.geomspace(1e-2, 1e7, count: 100))
        return ValidationSet(evaluator: evaluator, features: encoder.encode(rows.map { table.queries[$0].text }))
    }

    static func auc(of router: any Router, on v: ValidationSet) throws -> Double {
        let report = try v.evaluator.evaluate([("federated", try router.predict(features: v.features))])
        return report.entries.first { $0.name == "federated" }!.auc
    }
}

actor StateBox {
    var state: FederationJobState
    init(_ s: FederationJobState) { state = s }
    func set(_ s: FederationJobState) { state = s }
}

/// The one-time wait for every client after a restart (`FederationServerConfiguration.rejoinGraceSeconds`).
actor RejoinGrace {
    private var pending: Bool
    let registry: ClientRegistry
    let grace: Duration
    let clients: Int
    let logger: Logger

    init(pending: Bool, registry: ClientRegistry, grace: Duration, clients: Int, logger: Logger) {
        self.pending = pending
        self.registry = registry
        self.grace = grace
        self.clients = clients
        self.logger = logger
    }

    /// Waits (once, and only after a restart) up to the grace for every client to be online.
    func wait() async throws {
        guard pending else { return }
        pending = false
        let online = try await registry.waitForEveryClient(upTo: grace)
        logger.info("re-join grace over", metadata: ["online": .stringConvertible(online), "clients": .stringConvertible(clients)])
    }
}

actor RoundClock {
    var started = ContinuousClock.now
    var bytesIn = 0
    var bytesOut = 0

    func start(bytesIn: Int, bytesOut: Int) {
        started = .now
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }

    func stop(bytesIn: Int, bytesOut: Int) -> (Int, Int, Double) {
        let d = ContinuousClock.now - started
        return (bytesIn - self.bytesIn, bytesOut - self.bytesOut, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
}
