import ArgumentParser
import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteNumerics
import FedRouteRouters
import FedRouteSimulation
import Foundation


/// `fedroute simulate`: the paper's federated protocol, in process, over several seeds.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate a federation of clients (Federate the Router protocol): federated vs centralized vs client-local routers, personalisation, frontiers on the global and every client's test set.",
        discussion: """
            Every query of the data set (its own train/test split is ignored) is dealt to clients per task by \
            Dirichlet(α); each client splits 75/25, keeps k = max(1, ⌊coverage·M⌋) observed models per training \
            query drawn from its own Dirichlet model preference, and trains only through model updates and \
            aggregate statistics. Reports go to OUT/seed-N/<family>/{global,client-XX}/ and OUT/summary.{json,txt}.
            """)

    @Option(name: .long, help: "Evaluation data: a file or folder in any supported format.") var data: String
    @Option(name: .long, help: "Data format; detected when omitted.") var format: DataFormat?
    @Flag(name: .long, help: "Skip rows that fail validation instead of stopping.") var skipInvalid = false
    @Option(name: .long, help: "Output folder.") var out = "simulation-report"
    @Option(name: .long, parsing: .upToNextOption, help: "Seeds; one run per seed, then mean ± sd.") var seeds: [UInt64] = [0, 1, 2]
    @Option(name: .long, parsing: .upToNextOption, help: "Router families (mlp, kmeans, mf; knn runs as centralized and client-local baselines only).") var families: [RouterFamily] = RouterFamily.federated
    @OptionGroup(title: "Query encoder (hashed: IDF fitted federatedly from document counts; minilm: pretrained)") var encoderOptions: EncoderOptions

    // Partition.
    @Option(name: .long, help: "Number of clients N.") var clients = 10
    @Option(name: .long, help: "Task-label Dirichlet concentration α (smaller = more heterogeneous).") var alpha = 0.6
    @Option(name: .long, help: "Per-client model-preference Dirichlet concentration.") var modelAlpha = 0.45
    @Option(name: .long, help: "Share of models observed per training query, k = max(1, ⌊coverage·M⌋).") var coverage = 0.1
    @Option(name: .long, help: "Observed models per training query (overrides --coverage).") var observedPerQuery: Int?
    @Option(name: .long, help: "Fraction of each client's rows kept as its local test set.") var localTestFraction = 0.25
    @Option(name: .long, help: "Privacy floor: fewest local rows behind any shared aggregate.") var minGroupSize = 3
    @Option(name: .long, help: "Clients whose own-test frontier curves are kept in result.json and written as report folders: all up to this many, a seeded sample beyond (the others keep their AUC figures).") var clientCurves = SimulationConfiguration.defaultClientCurves
    @Option(name: .long, help: "Clients trained and evaluated at once (default: one per core); the results are the same for any number.") var parallelClients = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .long, help: "Clients whose local routers are also scored on the global test set: all up to this many, a seeded sample of this many beyond (0: none). Every client is still evaluated on its own test set.") var localGlobalClients = SimulationConfiguration.defaultLocalGlobalClients
    @Option(name: .long, help: "Share of each client's training rows held out for validation: best-round (MLP, MF) and cluster-count (K-Means) selection and the safe federated router's gate, for the federated, centralized and local routers alike (0: none).") var validationFraction = 0.15
    @Option(name: .long, parsing: .upToNextOption, help: "K-Means: global cluster counts, one clustering each, to average (or choose from: --cluster-policy select).") var clusterCandidates: [Int] = [3, 6, 12, 24, 48]
    @Option(name: .long, help: "K-Means: average the clusterings of every --cluster-candidates count, nest them (finer cells shrink towards coarser estimates), or select the one with the lowest validation Brier score.") var clusterPolicy = ClusterCountPolicy.average
    @Option(name: .long, help: "The safe federated router keeps a λ band only when its held-out gain over best-single@λ is this many standard errors above 0 (default: 1 when every held-out query has every model graded, else 2).") var gateStandardErrors: Double?
    @Flag(name: .long, inversion: .prefixedNo, help: "MLP and MF: return the round (centralized and local: the epoch) with the lowest validation Brier score instead of the last.") var selectBestRound = true

    // Federated MLP.
    @Option(name: .long, help: "Federated rounds.") var rounds = 5
    @Option(name: .long, help: "Fraction of clients sampled per round.") var participation = 0.6
    @Option(name: .long, help: "Fewest valid updates for a round to change the model.") var minClients = 1
    @Option(name: .long, help: "Local epochs per round.") var localEpochs = 1
    @Option(name: .long, help: "Mini-batch size.") var batchSize = 128
    @Option(name: .long, help: "AdamW learning rate (local).") var lr: Float = 1e-3
    @Option(name: .long, help: "AdamW weight decay (local).") var weightDecay: Float = 3e-4
    @Option(name: .long, help: "Global gradient-norm clip (0 disables).") var gradClip: Float = 1.0
    @Option(name: .long, help: "FedProx μ (0 = FedAvg).") var proxMu: Float = 0
    @Option(name: .long, help: "Coordinator optimiser.") var server: AggregationChoice = .fedavg
    @Option(name: .long, help: "Server learning rate (default 1 for fedavg, 0.01 for fedadam).") var serverLr: Float?
    @Option(name: .long, help: "MLP hidden width.") var hidden = 512
    @Option(name: .long, help: "MLP trunk layers.") var layers = 2
    @Option(name: .long, help: "MLP dropout.") var dropout: Float = 0.1
    @Option(name: .long, help: "MF-Router: rank of the query and model embeddings.") var mfRank = MLPTrainingConfiguration.matrixFactorization.hiddenDimension
    @Option(name: .long, help: "MF-Router: AdamW learning rate (local).") var mfLr = MLPTrainingConfiguration.matrixFactorization.optimizer.learningRate
    @Option(name: .long, help: "MF-Router: AdamW weight decay (local; pulls predictions towards each model's prior).") var mfWeightDecay = MLPTrainingConfiguration.matrixFactorization.optimizer.weightDecay
    @Option(name: .long, help: "Epochs of the centralized and client-local MLP and MF baselines (default rounds × local epochs).") var baselineEpochs: Int?
    @Option(name: .long, help: "Local epochs of fine-tune-from-global personalisation.") var fineTuneEpochs = 1

    // Federated K-Means.
    @Option(name: .long, help: "Clusters per client in pass 1.") var localClusters = 15
    @Option(name: .long, help: "Global clusters of --cluster-policy select without validation rows (--validation-fraction 0); the default policy averages --cluster-candidates.") var globalClusters = 20
    @Option(name: .long, help: "k-means restarts.") var restarts = 4
    @Option(name: .long, help: "k-means maximum iterations.") var maxIterations = 100
    @Option(name: .long, help: "K-Means fine-tune: pseudo-observations of the global cell mean.") var priorStrength = 1.0
    @Option(name: .long, help: "Adaptive mixture: local-router error measured in-sample (the paper) or cross-fitted.") var mixtureErrors: MixtureErrorsChoice = .inSample
    @Option(name: .long, help: "Folds for --mixture-errors cross-fitted.") var mixtureFolds = 5
    @Option(name: .long, help: "Also write the first seed's federation for real processes here: client data, keys, TLS files, validation set, server.json and the simulation's AUCs (expected.json).") var exportFederation: String?
    @Option(name: .long, help: "Port written into the exported server.json.") var exportPort = 7443

    func validate() throws {
        guard !seeds.isEmpty else { throw ValidationError("give at least one --seeds value") }
        if let problem = Simulation.familiesProblem(families) { throw ValidationError("--families: \(problem)") }
        if exportFederation != nil, encoderOptions.encoder != .hashed { throw ValidationError("--export-federation needs the hashed encoder") }
        guard localGlobalClients >= 0, clientCurves >= 0 else { throw ValidationError("--local-global-clients and --client-curves must be ≥ 0") }
        guard (1...1024).contains(parallelClients) else { throw ValidationError("--parallel-clients must be in 1…1024, not \(parallelClients)") }
        guard mixtureFolds >= 2 else { throw ValidationError("--mixture-folds must be at least 2") }
        guard (0..<1).contains(validationFraction) else { throw ValidationError("--validation-fraction must be in [0, 1)") }
        guard !clusterCandidates.isEmpty, clusterCandidates.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--cluster-candidates must be counts ≥ 1") }
        if let z = gateStandardErrors, let problem = SafetyGate.marginProblem(z) { throw ValidationError("--gate-standard-errors: \(problem)") }
    }

    func configuration() -> SimulationConfiguration {
        var c = SimulationConfiguration()
        c.families = families
        c.partition.clients = clients
        c.partition.taskAlpha = alpha
        c.partition.modelAlpha = modelAlpha
        c.partition.coverageFraction = coverage
        c.partition.observedPerQuery = observedPerQuery
        c.partition.localTestFraction = localTestFraction
        switch encoderOptions.encoder {
        case .hashed: c.encoder = .hashed(HashedTFIDFEncoder.Configuration(dimension: encoderOptions.dimension))
        case .minilm: c.encoder = .minilm(directory: encoderOptions.minilmDirectory, maxTokens: encoderOptions.maxTokens, truncation: encoderOptions.truncation)
        }
        c.clientPolicy = ClientPolicy(minimumGroupSize: minGroupSize)
        c.validationFraction = validationFraction
        c.safetyStandardErrors = gateStandardErrors
        c.localGlobalClients = localGlobalClients
        c.clientCurves = clientCurves
        c.kmeans.clusterCandidates = clusterCandidates
        c.kmeans.clusterPolicy = clusterPolicy
        c.mlp.selectBestRound = selectBestRound
        c.mlp.rounds = rounds
        c.mlp.participation = participation
        c.mlp.minimumClients = minClients
        c.mlp.local.epochs = localEpochs
        c.mlp.local.batchSize = batchSize
        c.mlp.local.optimizer = AdamWConfiguration(learningRate: lr, weightDecay: weightDecay)
        c.mlp.local.gradientClip = gradClip
        c.mlp.local.proximalMu = proxMu
        c.mlp.server = server == .fedadam
            ? .fedAdam(learningRate: serverLr ?? 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3)
            : .fedAvg(learningRate: serverLr ?? 1)
        c.mlp.hiddenDimension = hidden
        c.mlp.trunkLayers = layers
        c.mlp.dropout = dropout
        // The MF-Router federates with the MLP's rounds, sampling, local epochs and server optimiser.
        c.mf = c.mlp.matrixFactorization(rank: mfRank, optimizer: AdamWConfiguration(learningRate: mfLr, weightDecay: mfWeightDecay))
        c.baselineEpochs = baselineEpochs
        c.fineTuneEpochs = fineTuneEpochs
        c.kmeans.localClusters = localClusters
        c.kmeans.globalClusters = globalClusters
        c.kmeans.restarts = restarts
        c.kmeans.maxIterations = maxIterations
        c.kmeansPriorStrength = priorStrength
        c.mixtureErrors = mixtureErrors == .crossFitted ? .crossFitted(folds: mixtureFolds) : .inSample
        return c
    }

    func run() async throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        try OutputPath.checkWritable(directory: out)
        if let exportFederation { try OutputPath.checkWritable(directory: exportFederation, option: "--export-federation \(exportFederation)") }
        let table = try DataOptions.load(path: data, format: format, skipInvalid: skipInvalid).table
        Console.info("\(table.queryCount) queries × \(table.modelCount) models → \(clients) clients")
        var results: [SimulationResult] = []
        for seed in seeds {
            var c = configuration()
            c.setSeed(seed)
            let bar = ProgressBar(label: "seed \(seed)", total: 100)
            let options = encoderOptions
            let result = try await Simulation.run(table, configuration: c, featurize: { options.features($1, encoder: $0) }, parallelClients: parallelClients) { p in
                bar.update(min(99, p.total > 0 ? 100 * p.step / p.total : 0), detail: p.stage + (p.loss.map { String(format: " loss %.4f", $0) } ?? ""))
            }
            bar.finish()
            let dir = (out as NSString).appendingPathComponent("seed-\(seed)")
            try SimulationWriter.write(result, to: dir)
            for f in result.families {
                print("seed \(seed) [\(f.family.rawValue)] global AUC: " + f.global.entries.filter { $0.role == .router && !$0.name.hasPrefix("local:") }
                    .map { String(format: "%@ %.4f", $0.name, $0.auc) }.joined(separator: ", ")
                    + String(format: "; client-local %.4f–%.4f", f.global.entries.filter { $0.name.hasPrefix("local:") }.map(\.auc).min() ?? .nan,
                             f.global.entries.filter { $0.name.hasPrefix("local:") }.map(\.auc).max() ?? .nan))
            }
            Console.info("wrote \(dir)/")
            if let exportFederation, results.isEmpty {
                try FederationExport.write(result, to: exportFederation, port: exportPort)
                Console.info("wrote the federation for seed \(seed) to \(exportFederation)/ (start it with: fedroute coordinator --config \(exportFederation)/server.json)")
            }
            results.append(result)
        }
        let summary = SimulationSummary(results)
        try SimulationWriter.write(summary, to: out)
        print("")
        print(summary.text, terminator: "")
        Console.info("wrote \(out)/summary.json, summary.txt and per-seed reports (JSON, CSV, SVG)")
    }
}
