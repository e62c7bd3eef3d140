import FedRouteData
import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging

/// fedroute's federation with Flower as the engine, run by `fedroute flower-bridge` for the Python
/// ServerApp: the setup passes (federated IDF, descriptions, cost moments) and the two-pass
/// k-means go to the nodes as `query.fedroute` messages through the ServerApp, by the same
/// `FederationCoordinator` code as every other transport; MLP and MF rounds are handed to the
/// ServerApp, which runs them with a Flower strategy (FedAvg, FedProx, FedAdam, optionally under
/// Flower's DP wrapper). The router files are the same format `fedroute route/eval/gateway` load.
public struct FlowerServerJob: Sendable {
    public let configuration: FederationJobConfiguration
    public let clients: [String]
    public let channel: FlowerBridgeChannel
    /// Initial and final arrays are exchanged with the ServerApp as `.npy` files here.
    public let workDirectory: String
    let logger: Logger

    public init(configuration: FederationJobConfiguration, clients: [String], channel: FlowerBridgeChannel, workDirectory: String, logger: Logger) {
        self.configuration = configuration
        self.clients = clients
        self.channel = channel
        self.workDirectory = workDirectory
        self.logger = logger
    }

    public struct Summary: Sendable, Codable {
        public var federation: String
        public var engine = "flower"
        public var validationAUC: [String: Double]
        /// Per family (mlp, mf): the strategy's rounds.
        public var rounds: [String: [FlowerRoundReport]]
        public var kmeans: KMeansFederationReport?
        public var routerFiles: [String: String]
        public var setupSeconds: Double
    }

    public func run() async throws -> Summary {
        let c = configuration
        try c.validate(clients: clients.count)
        let fm = FileManager.default
        try fm.createDirectory(atPath: c.outputDirectory, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        var wait = BridgeRequest(op: "wait-for-clients")
        wait.clients = clients
        wait.timeout = c.joinTimeoutSeconds
        let nodes = try await channel.call(wait).nodes ?? [:]
        logger.info("every client is online", metadata: ["nodes": .string(nodes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))])

        let clock = ContinuousClock()
        let setupStart = clock.now
        let encoderBox = EncoderBox()
        let relayed: [any FederatedClient] = clients.map { RelayedClient(id: $0, channel: channel, encoder: encoderBox) }
        let coordinator = try FederationCoordinator(clients: relayed, maxConcurrentRequests: max(1, clients.count))
        let setup = try await coordinator.setup(c.encoder)
        let (spec, descriptions, normalizer) = (setup.encoder, setup.descriptions, setup.normalizer)
        let setupSeconds = (clock.now - setupStart).seconds
        logger.info("setup done", metadata: ["models": .stringConvertible(descriptions[0].models.count), "dimension": .stringConvertible(spec.dimension),
                                             "seconds": .string(String(format: "%.2f", setupSeconds))])
        let encoder = try spec.makeEncoder()
        let models = descriptions[0].models
        let validation = try c.validation.map { try FederationJob.validationSet(try FederationJob.loadValidation($0), encoder: encoder, models: models) }

        var summary = Summary(federation: c.federation, validationAUC: [:], rounds: [:], kmeans: nil, routerFiles: [:], setupSeconds: setupSeconds)
        // The safety gate's fallback is best-single@λ over every training row, held-out ones included:
        // asked of every client once a family has trained (after a restart, they have re-joined by then).
        var gateNormalizer: CostNormalizer?
        for family in c.families {
            let file = (c.outputDirectory as NSString).appendingPathComponent("\(family.rawValue).router.safetensors")
            let router: AnyRouter
            var gateCandidate: AnyRouter?
            switch family {
            case .mlp, .mf:
                let settings = family == .mf ? c.effectiveMF : c.mlp
                let (trained, rounds) = try await strategyRounds(family, settings: settings, models: models, spec: spec, normalizer: normalizer)
                summary.rounds[family.rawValue] = rounds
                router = family == .mf ? AnyRouter(try MFRouter(trained)) : AnyRouter(trained)
            case .kmeans:
                let trained = try await coordinator.trainKMeans(c.kmeans, descriptions: descriptions, forGate: c.safety != nil)
                summary.kmeans = trained.report
                router = AnyRouter(trained.router)
                gateCandidate = AnyRouter(trained.gateCandidate)
            case .knn:
                throw FederationError.invalidConfiguration("the kNN-Router has no federated training")
            }
            let gate = try await c.safety?.gate(for: gateCandidate ?? router, family: family, coordinator: coordinator,
                                                descriptions: descriptions, normalizer: &gateNormalizer, logger: logger)
            try RouterFile.save(try RoutingPipeline(encoder: encoder, router: router, safety: gate), to: file,
                                extraMetadata: ["trained_by": "fedroute on Flower (federated, \(c.federation))"])
            summary.routerFiles[family.rawValue] = file
            if let validation {
                summary.validationAUC[family.rawValue] = try FederationJob.auc(of: router, on: validation)
                if let gate { summary.validationAUC["\(family.rawValue) (safe)"] = try FederationJob.auc(of: router, on: validation, safety: gate) }
            }
            logger.info("family done", metadata: ["family": .string(family.rawValue),
                                                  "validation_auc": .string(summary.validationAUC[family.rawValue].map { String(format: "%.4f", $0) } ?? "-")])
        }
        let summaryPath = (c.outputDirectory as NSString).appendingPathComponent("summary.json")
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(summary).write(to: URL(fileURLWithPath: summaryPath), options: .atomic)
        var routers: [String: Data] = [:]
        for (family, file) in summary.routerFiles { routers[family] = try Data(contentsOf: URL(fileURLWithPath: file)) }
        var finish = BridgeRequest(op: "finish")
        finish.outcome = try JSONEncoder().encode(FlowerRunOutcome(routers: routers, fineTuning: c.mlp.local,
                                                                   mfFineTuning: c.families.contains(.mf) ? c.effectiveMF.local : nil)).base64EncodedString()
        finish.summary = summaryPath
        _ = try await channel.call(finish)
        return summary
    }

    /// Rounds of an MLP-shaped network run by the ServerApp's Flower strategy.
    func strategyRounds(_ family: RouterFamily, settings: FederatedMLPConfiguration, models: [String], spec: EncoderSpec,
                        normalizer: CostNormalizer) async throws -> (MLPRouter, [FlowerRoundReport]) {
        let initial = try FederationCoordinator.initialMLP(settings, models: models, featureDimension: spec.dimension, normalizer: normalizer)
        let architecture = initial.network.architecture
        let plan = FlowerTrainingPlan(family: family.rawValue, architecture: architecture, settings: settings.local, costNormalizer: normalizer,
                                      encoder: spec, seeds: FlowerTrainingPlan.seeds(clients: clients, configuration: settings))
        let dir = (workDirectory as NSString).appendingPathComponent("\(family.rawValue)-initial")
        try NumpyArray.write(initial.network.parameters, to: dir)
        var request = BridgeRequest(op: "fedavg")
        request.family = family.rawValue
        request.arraysDir = dir
        request.names = initial.network.parameters.map(\.name)
        request.rounds = settings.rounds
        request.participation = settings.participation
        request.plan = try plan.encoded().base64EncodedString()
        let answer = try await channel.call(request)
        guard let finalDir = answer.arraysDir else { throw FlowerError.bridge("the strategy's answer names no final arrays") }
        let parameters = try NumpyArray.read(like: initial.network.parameters, from: finalDir)
        let network = try MLPNetwork(architecture: architecture, parameters: parameters)
        return (try MLPRouter(models: models, network: network, costNormalizer: normalizer), answer.rounds ?? [])
    }
}

extension NumpyArray {
    /// Writes tensors as `0000.npy`, `0001.npy`, … in order (names travel separately).
    static func write(_ tensors: [Tensor], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (i, t) in tensors.enumerated() {
            let path = (directory as NSString).appendingPathComponent(String(format: "%04d.npy", i))
            try NumpyArray(shape: t.shape, values: t.values).encoded().write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }

    /// Reads tensors written like `like` (same count, shapes checked, finite values).
    static func read(like: [Tensor], from directory: String) throws -> [Tensor] {
        try like.enumerated().map { i, t in
            let path = (directory as NSString).appendingPathComponent(String(format: "%04d.npy", i))
            let a = try NumpyArray.decode(try Data(contentsOf: URL(fileURLWithPath: path)))
            guard a.shape == t.shape else { throw FlowerError.array("\(path): shape \(a.shape), expected \(t.shape) for \(t.name)") }
            guard a.values.allSatisfy(\.isFinite) else { throw FlowerError.array("\(path): \(t.name) holds NaN or infinity") }
            return Tensor(name: t.name, shape: t.shape, values: a.values)
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
