import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging

/// The coordinator's training job over any `FederationTransport`: setup (federated IDF, client
/// descriptions, cost moments) → each family → router files and summary.json, checkpointed after
/// setup, every MLP round and every family, so a restarted coordinator resumes where it stopped.
public struct FederationJob: Sendable {
    public let configuration: FederationJobConfiguration
    public let transport: any FederationTransport
    public let store: CheckpointStore
    let logger: Logger
    let progress: ProgressHandler?
    /// Work to run before each MLP (or MF) round's clock starts, once its clients are online, with the round's
    /// number; nothing it does is in the round's `RoundTraffic.seconds`. The network benchmark runs the same
    /// round in process there, so that each network round is timed next to its peer on a noisy machine.
    public var beforeRoundClock: (@Sendable (Int) async throws -> Void)?

    public init(configuration: FederationJobConfiguration, transport: any FederationTransport, store: CheckpointStore,
                logger: Logger, progress: ProgressHandler? = nil) {
        self.configuration = configuration
        self.transport = transport
        self.store = store
        self.logger = logger
        self.progress = progress
    }

    public struct Result: Sendable, Codable {
        public var federation: String
        public var validationAUC: [String: Double]
        public var rounds: [RoundReport]
        public var traffic: [RoundTraffic]
        /// The MF-Router's rounds and their traffic, when the job trained one.
        public var mfRounds: [RoundReport]?
        public var mfTraffic: [RoundTraffic]?
        public var kmeans: KMeansFederationReport?
        public var restarts: Int
        public var routerFiles: [String: String]
        /// With `safety`: per family, the λ bands in which its gate falls back to best-single@λ, out
        /// of the gate's bands (absent: no gate; a family without held-out evidence is missing).
        public var safetyFallbackBands: [String: Int]?
    }

    /// Runs (or resumes from `initialState`) the job to the end, writes the routers and summary.json,
    /// and hands the routers to the clients through the transport.
    public func run(initialState: FederationJobState?) async throws -> Result {
        let c = configuration
        try c.validate(clients: transport.clientIDs.count)
        var state = initialState ?? FederationJobState()
        do { try state.validate() } catch { throw FederationError.checkpoint("the checkpoint \(store.path) is not usable: \(error); move it away to start over") }
        let coordinator = try FederationCoordinator(clients: transport.clients(deadline: c.roundDeadline),
                                                    maxConcurrentRequests: transport.maxConcurrentRequests)
        let validation = try c.validation.map { try Self.loadValidation($0) }
        try FileManager.default.createDirectory(atPath: c.outputDirectory, withIntermediateDirectories: true)

        let setup = try await self.setup(coordinator, state: &state)
        let encoder = try setup.encoder.makeEncoder()
        let models = setup.descriptions[0].models
        let validationSet = try validation.map { try Self.validationSet($0, encoder: encoder, models: models) }
        // A resumed job's clients lost their sessions with the old process: the first training step
        // gives them a moment to re-join, so a sampled client is not failed for being a second late.
        let rejoin = RejoinGrace(pending: initialState != nil, transport: transport, grace: c.rejoinGrace, logger: logger)
        var files: [String: String] = [:]
        var kmeansReport: KMeansFederationReport?
        // The safety gate's fallback is best-single@λ over every training row, held-out ones included:
        // asked of every client once a family has trained (after a restart, they have re-joined by then).
        var gateNormalizer: CostNormalizer?
        for family in c.families {
            let file = (c.outputDirectory as NSString).appendingPathComponent("\(family.rawValue).router.safetensors")
            files[family.rawValue] = file
            if state.finishedFamilies.contains(family.rawValue) { continue }
            let router: AnyRouter
            // The router the gate is calibrated on: K-Means' before the held-out rows join its statistics.
            var gateCandidate: AnyRouter?
            switch family {
            case .mlp, .mf:
                do {
                    let trained = try await trainParametric(family, coordinator, setup: setup, validation: validationSet, rejoin: rejoin, state: &state)
                    router = family == .mf ? AnyRouter(try MFRouter(trained)) : AnyRouter(trained)
                } catch FederationError.checkpoint(let why) {
                    throw FederationError.checkpoint("the checkpoint \(store.path) is not usable: \(why); move it away to start over")
                }
            case .kmeans:
                try await rejoin.wait()
                try await transport.waitForClients(c.minimumOnline, timeout: c.joinTimeout)
                let trained = try await coordinator.trainKMeans(c.kmeans, descriptions: setup.descriptions, forGate: c.safety != nil, progress: progress)
                kmeansReport = trained.report
                router = AnyRouter(trained.router)
                gateCandidate = AnyRouter(trained.gateCandidate)
            case .knn:
                throw FederationError.invalidConfiguration("the kNN-Router has no federated training")
            }
            let gate = try await c.safety?.gate(for: gateCandidate ?? router, family: family, coordinator: coordinator,
                                                descriptions: setup.descriptions, normalizer: &gateNormalizer, logger: logger)
            if let gate { state.safetyFallbackBands = (state.safetyFallbackBands ?? [:]).merging([family.rawValue: gate.fallbackBands]) { $1 } }
            try RouterFile.save(try RoutingPipeline(encoder: encoder, router: router, safety: gate), to: file,
                                extraMetadata: ["trained_by": "fedroute coordinator (federated, \(c.federation))"])
            if let v = validationSet {
                state.validationAUC[family.rawValue] = try Self.auc(of: router, on: v)
                // The router as deployed, gate included (raw above).
                if let gate { state.validationAUC["\(family.rawValue) (safe)"] = try Self.auc(of: router, on: v, safety: gate) }
            }
            state.finishedFamilies.append(family.rawValue)
            try store.save(state)
            var meta: Logger.Metadata = ["family": .string(family.rawValue),
                                         "validation_auc": .string(state.validationAUC[family.rawValue].map { String(format: "%.4f", $0) } ?? "-")]
            if let gate {
                meta["safety_fallback_bands"] = .string("\(gate.fallbackBands)/\(gate.lambdas.count)")
            }
            if family == .kmeans, let report = kmeansReport {
                meta["clusters"] = .string((report.clusterCounts ?? [report.globalClusters]).map(String.init).joined(separator: ","))
                meta["rejected"] = .stringConvertible(report.rejected.count)
            }
            logger.info("family done", metadata: meta)
        }
        let result = Result(federation: c.federation, validationAUC: state.validationAUC, rounds: state.mlp?.reports ?? [],
                            traffic: state.roundTraffic, mfRounds: state.mf?.reports, mfTraffic: state.mfRoundTraffic,
                            kmeans: kmeansReport, restarts: state.restarts, routerFiles: files,
                            safetyFallbackBands: c.safety == nil ? nil : state.safetyFallbackBands ?? [:])
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try e.encode(result).write(to: URL(fileURLWithPath: (c.outputDirectory as NSString).appendingPathComponent("summary.json")), options: .atomic)
        var routerBytes: [String: Data] = [:]
        for (family, file) in files { routerBytes[family] = try Data(contentsOf: URL(fileURLWithPath: file)) }
        await transport.finish(FederationOutcome(routers: routerBytes, fineTuning: c.mlp.local,
                                                 mfFineTuning: c.families.contains(.mf) ? c.effectiveMF.local : nil))
        return result
    }

    /// Setup, once (its results are checkpointed): every client must be reachable.
    func setup(_ coordinator: FederationCoordinator, state: inout FederationJobState) async throws -> FederationJobState.Setup {
        if let s = state.setup {
            try await transport.adoptEncoder(s.encoder)
            return s
        }
        logger.info("waiting for every client", metadata: ["clients": .stringConvertible(transport.clientIDs.count)])
        try await transport.waitForClients(transport.clientIDs.count, timeout: configuration.joinTimeout)
        let setup = try await coordinator.setup(configuration.encoder)
        state.setup = setup
        try store.save(state)
        logger.info("setup done", metadata: ["models": .stringConvertible(setup.descriptions[0].models.count), "dimension": .stringConvertible(setup.encoder.dimension)])
        return setup
    }

    /// Federated rounds of the MLP-Router (or of the MF-Router's bilinear network) from the checkpoint
    /// on, each round checkpointed with its traffic and validation AUC.
    func trainParametric(_ family: RouterFamily, _ coordinator: FederationCoordinator, setup: FederationJobState.Setup, validation: ValidationSet?,
                         rejoin: RejoinGrace, state: inout FederationJobState) async throws -> MLPRouter {
        let c = configuration
        let isMF = family == .mf
        let settings = isMF ? c.effectiveMF : c.mlp
        let models = setup.descriptions[0].models
        let initial = try FederationCoordinator.initialMLP(settings, models: models, featureDimension: setup.encoder.dimension, normalizer: setup.normalizer)
        let box = StateBox(state)
        let roundStart = RoundClock()
        let (transport, store, logger, beforeRoundClock) = (self.transport, self.store, self.logger, self.beforeRoundClock)
        let (router, _) = try await coordinator.continueMLP(
            initial, settings, descriptions: setup.descriptions, resume: isMF ? state.mf : state.mlp,
            beforeRound: { round in
                try await rejoin.wait()
                try await transport.waitForClients(c.minimumOnline, timeout: c.joinTimeout)
                try await beforeRoundClock?(round)
                await roundStart.start(await transport.traffic())
                let online = await transport.onlineCount()
                logger.info("round started", metadata: ["round": .stringConvertible(round), "online": .stringConvertible(online)])
            },
            checkpoint: { mlp in
                var s = await box.state
                if isMF { s.mf = mlp } else { s.mlp = mlp }
                let (traffic, seconds, cpuSeconds) = await roundStart.stop(await transport.traffic())
                var auc: Double?
                if let v = validation {
                    let r = try MLPRouter(models: models, network: MLPNetwork(architecture: initial.network.architecture, parameters: mlp.parameters),
                                          costNormalizer: setup.normalizer)
                    auc = try Self.auc(of: r, on: v)
                }
                let report = mlp.reports.last!
                let record = RoundTraffic(round: mlp.completedRounds, bytesIn: traffic.bytesIn, bytesOut: traffic.bytesOut, seconds: seconds,
                                          cpuSeconds: cpuSeconds, validationAUC: auc)
                if isMF { s.mfRoundTraffic = (s.mfRoundTraffic ?? []) + [record] } else { s.roundTraffic.append(record) }
                s.nonces = await transport.replayState()
                try store.save(s)
                await box.set(s)
                var meta: Logger.Metadata = ["family": .string(family.rawValue), "round": .stringConvertible(report.round), "aggregated": .stringConvertible(report.aggregated.count),
                                             "sampled": .stringConvertible(report.sampled.count), "seconds": .string(String(format: "%.2f", seconds)),
                                             "cpu_seconds": .string(cpuSeconds.map { String(format: "%.2f", $0) } ?? "-"),
                                             "bytes_in": .stringConvertible(traffic.bytesIn), "bytes_out": .stringConvertible(traffic.bytesOut)]
                if let l = report.meanLoss { meta["loss"] = .string(String(format: "%.4f", l)) }
                if let auc { meta["validation_auc"] = .string(String(format: "%.4f", auc)) }
                if let p = report.privacy { meta["epsilon"] = .string(String(format: "%.3f", p.epsilon)) }
                if !report.rejected.isEmpty { meta["rejected"] = .string(report.rejected.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")) }
                logger.info("checkpoint written", metadata: meta)
            },
            progress: progress)
        state = await box.state
        return router
    }

    // MARK: Validation

    /// The coordinator's validation table (native JSONL).
    public static func loadValidation(_ path: String) throws -> EvaluationTable {
        try DatasetLoader.load(path: path, format: .native).table
    }

    /// A validation table's fully observed rows, featurised, with their evaluator.
    public struct ValidationSet: Sendable {
        let evaluator: Evaluator
        let features: Matrix
    }

    /// The table's model columns may come in any order (a JSONL file's loader sorts them); other
    /// models are an error.
    public static func validationSet(_ table: EvaluationTable, encoder: TextEncoder, models: [String]) throws -> ValidationSet {
        guard let table = table.reorderingModels(models) else { throw RouterError.modelMismatch(expected: models, got: table.models) }
        let rows = (0..<table.queryCount).filter { table.isFullyObserved(row: $0) }
        let evaluator = try Evaluator(train: table, test: table, lambdas: FrontierMetrics.geomspace(1e-2, 1e7, count: 100))
        return ValidationSet(evaluator: evaluator, features: encoder.encode(rows.map { table.queries[$0].text }))
    }

    /// The router's AUC on the validation set.
    public static func auc(of router: any Router, on v: ValidationSet, safety: SafetyGate? = nil) throws -> Double {
        var predictions = try router.predict(features: v.features)
        predictions.safety = safety
        let report = try v.evaluator.evaluate([("federated", predictions)])
        return report.entries.first { $0.name == "federated" }!.auc
    }
}

/// The job state shared between the round callbacks.
actor StateBox {
    var state: FederationJobState
    init(_ s: FederationJobState) { state = s }
    func set(_ s: FederationJobState) { state = s }
}

/// The one-time wait for every client after a restart (`FederationJobConfiguration.rejoinGraceSeconds`).
actor RejoinGrace {
    private var pending: Bool
    let transport: any FederationTransport
    let grace: Duration
    let logger: Logger

    init(pending: Bool, transport: any FederationTransport, grace: Duration, logger: Logger) {
        self.pending = pending
        self.transport = transport
        self.grace = grace
        self.logger = logger
    }

    /// Waits (once, and only after a restart) up to the grace for every client to be online.
    func wait() async throws {
        guard pending else { return }
        pending = false
        let online = try await transport.waitForEveryClient(upTo: grace)
        logger.info("re-join grace over", metadata: ["online": .stringConvertible(online), "clients": .stringConvertible(transport.clientIDs.count)])
    }
}

/// Time and traffic of the round in progress.
actor RoundClock {
    var started = ContinuousClock.now
    var startedCPU: Double?
    var traffic = TransportTraffic()

    func start(_ traffic: TransportTraffic) {
        started = .now
        startedCPU = ProcessCPUTime.now()
        self.traffic = traffic
    }

    /// The round's traffic, wall seconds and the process's CPU seconds (nil where the clock cannot be read).
    func stop(_ now: TransportTraffic) -> (TransportTraffic, Double, Double?) {
        let d = ContinuousClock.now - started
        let cpu = ProcessCPUTime.now().flatMap { end in startedCPU.map { end - $0 } }
        return (TransportTraffic(bytesIn: now.bytesIn - traffic.bytesIn, bytesOut: now.bytesOut - traffic.bytesOut),
                Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18, cpu)
    }
}
