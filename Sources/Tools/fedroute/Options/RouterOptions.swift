import ArgumentParser
import FedRouteEvaluation
import FedRouteNumerics
import FedRouteRouters

/// Hyper-parameters of every router family, as `RouterTrainingConfiguration`.
struct RouterOptions: ParsableArguments {
    @Option(name: .long, help: "MLP: training epochs.") var epochs = 10
    @Option(name: .long, help: "MLP: mini-batch size.") var batchSize = 128
    @Option(name: .long, help: "MLP: AdamW learning rate.") var lr: Float = 1e-3
    @Option(name: .long, help: "MLP: AdamW weight decay.") var weightDecay: Float = 3e-4
    @Option(name: .long, help: "MLP: hidden width.") var hidden = 512
    @Option(name: .long, help: "MLP: trunk layers.") var layers = 2
    @Option(name: .long, help: "MLP: dropout probability.") var dropout: Float = 0.1
    @Option(name: .long, help: "MLP: global gradient-norm clip (0 disables).") var gradClip: Float = 1.0
    @Option(name: .long, help: "K-Means: number of clusters.") var clusters = 20
    @Option(name: .long, help: "K-Means: restarts (best inertia kept).") var restarts = 4
    @Option(name: .long, help: "K-Means: initialisation.") var initialization: KMeansConfiguration.Initialization = .kMeansPlusPlus
    @Option(name: .long, help: "K-Means: maximum Lloyd iterations.") var maxIterations = 100
    @Option(name: .long, help: "kNN: neighbours.") var neighbors = 25
    @Option(name: .long, help: "MF: rank of the query and model embeddings.") var mfRank = MLPTrainingConfiguration.matrixFactorization.hiddenDimension
    @Option(name: .long, help: "MF: AdamW learning rate.") var mfLr = MLPTrainingConfiguration.matrixFactorization.optimizer.learningRate
    @Option(name: .long, help: "MF: AdamW weight decay (pulls predictions towards each model's mean score).") var mfWeightDecay = MLPTrainingConfiguration.matrixFactorization.optimizer.weightDecay
    @Option(name: .long, help: "MF: training epochs (default: --epochs).") var mfEpochs: Int?
    @Flag(name: .long, help: "Safe routing: hold out --validation-fraction of the training rows and, per λ band, fall back to best-single@λ where the router did worse on them.")
    var safe = false
    @Option(name: .long, help: "Safe routing: share of the training rows held out to calibrate the gate.") var validationFraction = 0.15
    @Option(name: .long, help: "Safe routing: the router keeps a λ band only when its held-out gain over best-single@λ is this many standard errors above 0 (default: 1 when every held-out query has every model graded, else 2).") var gateStandardErrors: Double?
    @Flag(name: .long, help: "With --safe: the MLP and MF keep the epoch with the lowest Brier score on the held-out rows.") var selectBestEpoch = false
    @Option(name: .long, parsing: .upToNextOption, help: "K-Means: cluster counts, one clustering each, to average (instead of --clusters), or with --cluster-policy select and --safe, to choose one from on the held-out rows.") var clusterCandidates: [Int] = []
    @Option(name: .long, help: "K-Means with --cluster-candidates: average every count's clustering, nest them (finer cells shrink towards coarser estimates), or select one (needs --safe).") var clusterPolicy = ClusterCountPolicy.average
    @Option(name: .long, parsing: .upToNextOption, help: "With --safe: kNN neighbour counts to choose from on the held-out rows.") var neighborCandidates: [Int] = []

    func validate() throws {
        guard clusterCandidates.allSatisfy({ $0 >= 1 }), neighborCandidates.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--cluster-candidates and --neighbor-candidates must be counts ≥ 1")
        }
        if let z = gateStandardErrors, let problem = SafetyGate.marginProblem(z) { throw ValidationError("--gate-standard-errors: \(problem)") }
        if !safe, selectBestEpoch || (!clusterCandidates.isEmpty && clusterPolicy == .select) || !neighborCandidates.isEmpty {
            throw ValidationError("--select-best-epoch, --cluster-candidates with --cluster-policy select and --neighbor-candidates select on the rows --safe holds out: add --safe")
        }
    }

    /// The held-out share and λ grid of a safe router, or nil.
    var safety: (validationFraction: Double, lambdas: [Double], standardErrors: Double?)? {
        safe ? (validationFraction, SafetyGate.defaultLambdas(), gateStandardErrors) : nil
    }

    var configuration: RouterTrainingConfiguration {
        var c = RouterTrainingConfiguration()
        c.mlp.epochs = epochs; c.mlp.batchSize = batchSize; c.mlp.hiddenDimension = hidden; c.mlp.trunkLayers = layers
        c.mlp.dropout = dropout; c.mlp.gradientClip = gradClip
        c.mlp.optimizer = AdamWConfiguration(learningRate: lr, weightDecay: weightDecay)
        c.kmeans = KMeansConfiguration(clusters: clusters)
        c.kmeans.restarts = restarts; c.kmeans.initialization = initialization; c.kmeans.maxIterations = maxIterations
        c.knnNeighbors = neighbors
        c.selectBestEpoch = selectBestEpoch ? true : nil
        c.kmeansCandidates = clusterCandidates.isEmpty ? nil : clusterCandidates
        c.kmeansPolicy = clusterPolicy
        c.knnCandidates = neighborCandidates.isEmpty ? nil : neighborCandidates
        // The MF-Router shares the MLP's batch size and clipping.
        c.mf.epochs = mfEpochs ?? epochs; c.mf.batchSize = batchSize; c.mf.gradientClip = gradClip; c.mf.hiddenDimension = mfRank
        c.mf.optimizer = AdamWConfiguration(learningRate: mfLr, weightDecay: mfWeightDecay)
        return c
    }
}
