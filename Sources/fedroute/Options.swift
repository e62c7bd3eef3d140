import ArgumentParser
import FedRouteData
import FedRouteEmbedding
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

extension DataFormat: ExpressibleByArgument {}
extension RouterKind: ExpressibleByArgument {}

/// Where the data comes from and how it is split.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "Evaluation data: a file or folder in any supported format.")
    var data: String

    @Option(name: .long, help: "Data format (routerbench, llmrouter, routerdc, routellm, native); detected when omitted.")
    var format: DataFormat?

    @Flag(name: .long, help: "Skip rows that fail validation (they are counted and reported) instead of stopping.")
    var skipInvalid = false

    @Option(name: .long, help: "Fraction of queries held out for testing when the source has no train/test split.")
    var testFraction = 0.2

    @Option(name: .long, help: "Seed for the split and every other random choice.")
    var seed: UInt64 = 0

    func load() throws -> LoadedDataset {
        try Self.load(path: data, format: format, skipInvalid: skipInvalid)
    }

    /// Loads a data set and prints its load notes and skipped rows.
    static func load(path: String, format: DataFormat?, skipInvalid: Bool) throws -> LoadedDataset {
        let loaded = try DatasetLoader.load(path: path, format: format, options: LoadOptions(invalidRows: skipInvalid ? .skip : .fail))
        for note in loaded.report.notes { Console.info("note: \(note)") }
        if !loaded.report.skipped.isEmpty {
            Console.info("skipped \(loaded.report.skipped.count) invalid rows; first: \(loaded.report.skipped[0])")
        }
        return loaded
    }

    /// Loads the data and splits it (source split, else seeded `--test-fraction`).
    func loadTrainTest() throws -> (train: EvaluationTable, test: EvaluationTable) {
        guard (0..<1).contains(testFraction) else { throw ValidationError("--test-fraction must be in [0, 1)") }
        let (train, test) = try load().table.trainTestSplit(testFraction: testFraction, seed: seed)
        Console.info("train \(train.queryCount) queries, test \(test.queryCount) held out; \(train.modelCount) models")
        return (train, test)
    }
}

/// Which text encoder turns queries into features.
enum EncoderChoice: String, ExpressibleByArgument, CaseIterable {
    case hashed, minilm
}

extension WordPieceTokenizer.Truncation: ExpressibleByArgument {}

/// Text encoder settings and the feature cache.
struct EncoderOptions: ParsableArguments {
    @Option(name: .long, help: "Query encoder: hashed (TF-IDF fitted on the training queries) or minilm (all-MiniLM-L6-v2, native).")
    var encoder: EncoderChoice = .hashed

    @Option(name: .long, help: "Hashed TF-IDF dimension (≥ 256 recommended).")
    var dimension = 1024

    @Option(name: .long, help: "Folder with the MiniLM model.safetensors and vocab.txt (scripts/fetch-minilm.sh; default $FEDROUTE_MINILM or .fedroute-models/all-MiniLM-L6-v2).")
    var minilmPath: String?

    @Option(name: .long, help: "MiniLM: most word-piece tokens per query, [CLS] and [SEP] included.")
    var maxTokens = 256

    @Option(name: .long, help: "MiniLM: which end of a long query to keep (head or tail).")
    var truncation: WordPieceTokenizer.Truncation = .head

    @Option(name: .long, help: "Folder for cached query features.")
    var cacheDir = ".fedroute-cache"

    @Flag(name: .long, help: "Do not read or write the feature cache.")
    var noCache = false

    var minilmDirectory: String { minilmPath ?? MiniLMEncoder.configuredDirectory }

    /// The configured MiniLM encoder.
    func minilm() throws -> MiniLMEncoder {
        guard (3...512).contains(maxTokens) else { throw ValidationError("--max-tokens must be in 3...512") }
        return try MiniLMEncoder(directory: minilmDirectory, maxTokens: maxTokens, truncation: truncation)
    }

    /// The encoder for training: hashed TF-IDF fitted on `texts`, or the pretrained MiniLM.
    func fittedEncoder(on texts: [String]) throws -> TextEncoder {
        switch encoder {
        case .hashed:
            guard dimension >= 16 else { throw ValidationError("--dimension must be at least 16") }
            var e = HashedTFIDFEncoder(configuration: .init(dimension: dimension))
            e.fit(texts)
            return .hashed(e)
        case .minilm:
            return .minilm(try minilm())
        }
    }

    /// Features of `texts`, from the cache when possible; a progress bar while encoding.
    func features(_ texts: [String], encoder: any QueryEncoder) -> Matrix {
        let bar = ProgressBar(label: "encoding", total: texts.count)
        let progress: (Int, Int) -> Void = { done, _ in bar.update(done) }
        defer { bar.finish() }
        // The transformer is slow enough to report often; hashing is not.
        let chunk = (encoder as? TextEncoder)?.kind == "minilm" || encoder is MiniLMEncoder ? 32 : 4096
        if noCache { return FeatureCache.encode(texts, encoder: encoder, chunk: chunk, progress: progress) }
        let (m, hit) = FeatureCache(directory: cacheDir).features(of: texts, encoder: encoder, chunk: chunk, progress: progress)
        Console.info("features: \(m.rows)×\(m.cols) (\(hit ? "cache hit" : "computed and cached") in \(cacheDir))")
        return m
    }
}

/// Hyper-parameters of every router family.
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
    @Option(name: .long, help: "K-Means: initialisation (k-means++ or random).") var initialization = "k-means++"
    @Option(name: .long, help: "K-Means: maximum Lloyd iterations.") var maxIterations = 100
    @Option(name: .long, help: "kNN: neighbours.") var neighbors = 25

    func train(_ kind: RouterKind, features: Matrix, table: EvaluationTable, seed: UInt64, label: String) throws -> AnyRouter {
        switch kind {
        case .mlp:
            var c = MLPTrainingConfiguration()
            c.epochs = epochs; c.batchSize = batchSize; c.hiddenDimension = hidden; c.trunkLayers = layers
            c.dropout = dropout; c.gradientClip = gradClip; c.seed = seed
            c.optimizer = AdamWConfiguration(learningRate: lr, weightDecay: weightDecay)
            let bar = ProgressBar(label: label, total: epochs)
            let r = try MLPTrainer.train(features: features, table: table, configuration: c) { bar.update($0.step, detail: $0.loss.map { String(format: "loss %.4f", $0) } ?? "") }
            bar.finish()
            return .mlp(r)
        case .kmeans:
            guard let initKind = KMeansConfiguration.Initialization(rawValue: initialization) else {
                throw ValidationError("--initialization must be k-means++ or random")
            }
            var c = KMeansConfiguration(clusters: clusters)
            c.restarts = restarts; c.initialization = initKind; c.maxIterations = maxIterations; c.seed = seed
            return .kmeans(try KMeansRouter.train(features: features, table: table, configuration: c))
        case .knn:
            return .knn(try KNNRouter.train(features: features, table: table, k: neighbors))
        }
    }
}

/// Messages to standard error; progress bars only on a terminal outside CI.
enum Console {
    static let isInteractive: Bool = isatty(2) == 1 && ProcessInfo.processInfo.environment["CI"] == nil

    static func info(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}

/// A one-line progress bar with ETA on a terminal; silent when output is piped or in CI.
final class ProgressBar: @unchecked Sendable {
    let label: String
    let total: Int
    let start = Date()
    private let lock = NSLock()

    init(label: String, total: Int) {
        self.label = label
        self.total = max(1, total)
    }

    func update(_ step: Int, detail: String = "") {
        guard Console.isInteractive else { return }
        lock.lock(); defer { lock.unlock() }
        let frac = Double(step) / Double(total)
        let width = 30
        let filled = Int(frac * Double(width))
        let elapsed = Date().timeIntervalSince(start)
        let eta = step > 0 ? elapsed / Double(step) * Double(total - step) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ [%@] %d/%d %@ ETA %.0fs   ", label, bar, step, total, detail, eta).utf8))
    }

    func finish() {
        guard Console.isInteractive else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
