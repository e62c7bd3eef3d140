import FedRouteData
import FedRouteEmbedding
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// `--only mlp-train [--rows N] [--epochs E]`: the MLP-Router's training loop alone (`MLPTrainer.runEpoch`,
/// default architecture: 1024 inputs, 2 × 512 trunk with LayerNorm, GELU and dropout 0.1, 11 models, batch
/// 128, AdamW, clipping at the default norm) on seeded synthetic data — the same shapes
/// `scripts/bench-compare.py` gives PyTorch. Prints one JSON line with samples per second.
func mlpTrainBench(rows: Int, epochs: Int) throws {
    let models = 11, inputs = 1024
    var rng = SeededRandom(seed: 3)
    var table = EvaluationTable(models: (0..<models).map { "model-\($0)" })
    var x = Matrix(rows: rows, cols: inputs)
    for r in 0..<rows {
        for j in 0..<inputs { x.data[r * inputs + j] = rng.nextFloat() - 0.5 }
        // Sparse labels, as in the paper's protocol: one observed model per query.
        let m = rng.nextInt(below: models)
        try table.append(Query(id: "\(r)", text: "q\(r)", task: "synthetic"),
                         cells: [m: (Double(rng.nextInt(below: 2)), 1e-4 * Double(m + 1))])
    }
    let config = MLPTrainingConfiguration()
    let normalizer = CostNormalizer(fitting: table)
    let data = try MLPTrainingSet(features: x, table: table, normalizer: normalizer)
    let architecture = MLPArchitecture(inputDimension: inputs, hiddenDimension: config.hiddenDimension, trunkLayers: config.trunkLayers,
                                       modelCount: models, dropout: config.dropout, trunk: config.trunk)
    var network = MLPNetwork(architecture: architecture, seed: 1)
    var optimizer = AdamW(configuration: config.optimizer, shapes: network.parameters.map(\.count), decayMask: network.decayMask)
    var loss = 0.0
    // One warm-up epoch (page faults, BLAS thread start-up), then the timed ones.
    loss = try MLPTrainer.runEpoch(network: &network, optimizer: &optimizer, data: data, rows: data.trainableRows,
                                   batchSize: config.batchSize, gradientClip: config.gradientClip, rng: &rng)
    let t = try seconds {
        for _ in 0..<epochs {
            loss = try MLPTrainer.runEpoch(network: &network, optimizer: &optimizer, data: data, rows: data.trainableRows,
                                           batchSize: config.batchSize, gradientClip: config.gradientClip, rng: &rng)
        }
    }
    let line: [String: Any] = [
        "engine": "fedroute", "gemm": GEMM.backend.rawValue, "rows": rows, "epochs": epochs,
        "samples_per_second": Double(rows * epochs) / t, "last_loss": loss,
    ]
    print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
}

/// `--only minilm-speed [--tokens N] [--queries Q]`: the MiniLM forward pass alone (`BertEncoder.embed`, batches of
/// 64 sequences of exactly N token ids, seeded) — the input `scripts/bench-compare.py` gives PyTorch and ONNX
/// Runtime. Prints one JSON line with queries per second.
func miniLMSpeedBench(encoder: MiniLMEncoder, tokens: Int, queries: Int) throws {
    let ids = miniLMTokenIDs(tokens: tokens, queries: queries)
    _ = encoder.model.embed(Array(ids.prefix(8)))
    let t = seconds {
        var start = 0
        while start < ids.count {
            _ = encoder.model.embed(Array(ids[start..<min(ids.count, start + 64)]))
            start += 64
        }
    }
    let line: [String: Any] = ["engine": "fedroute", "gemm": GEMM.backend.rawValue, "linear": "\(encoder.model.linearKernel)", "tokens": tokens, "queries": queries,
                               "queries_per_second": Double(queries) / t]
    print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
}

/// The MiniLM linear kernels `--linear` names.
let miniLMKernels: [String: BertEncoder.LinearKernel] = ["automatic": .automatic, "gemm": .gemm, "packed": .packed(.native),
                                                         "packed-avx2": .packed(.avx2), "packed-generic": .packed(.generic)]

/// MiniLM with the linear kernel `--linear` calls `name`; exits (status 2, with a message) for a name it does not know
/// or when the weights are missing.
func miniLMEncoder(linear name: String) -> MiniLMEncoder {
    guard let kernel = miniLMKernels[name] else {
        FileHandle.standardError.write(Data("--linear takes \(miniLMKernels.keys.sorted().joined(separator: ", ")), not \(name)\n".utf8))
        exit(2)
    }
    guard let encoder = try? MiniLMEncoder(directory: MiniLMEncoder.configuredDirectory, linearKernel: kernel) else {
        FileHandle.standardError.write(Data("MiniLM weights not found in \(MiniLMEncoder.configuredDirectory) (run scripts/fetch-minilm.sh)\n".utf8))
        exit(2)
    }
    return encoder
}

/// `queries` sequences of exactly `tokens` ids ([CLS], seeded ids, [SEP]): the input both MiniLM benches and
/// `scripts/bench-compare.py` use.
func miniLMTokenIDs(tokens: Int, queries: Int) -> [[Int]] {
    var rng = SeededRandom(seed: 5)
    return (0..<queries).map { _ in [101] + (0..<max(0, tokens - 2)).map { _ in 1000 + rng.nextInt(below: 20_000) } + [102] }
}

/// How a MiniLM bench runs the forward pass's parallel steps (`--executor`).
enum MiniLMExecutor: String, CaseIterable {
    /// `BertEncoder.embed(_:)`: a `SpinningTeam` for each call (what the product runs).
    case team
    /// `DispatchExecutor`: `DispatchQueue.concurrentPerform` for every step.
    case dispatch

    func embed(_ model: BertEncoder, _ sequences: [[Int]]) -> Matrix {
        switch self {
        case .team: return model.embed(sequences)
        case .dispatch: return model.embed(sequences, on: DispatchExecutor())
        }
    }
}

/// `--only minilm-pair [--tokens N] [--queries Q] [--linear A,B] [--executor A,B]`: the MiniLM forward pass in two
/// settings — linear kernels as `--only minilm-speed --linear` names them, executors as `MiniLMExecutor` does — on the
/// same batches, batch by batch in one process, the order swapped every batch: on a VM whose speed drifts by ±15 %
/// between runs seconds apart, only pairs this close compare two settings. Prints each setting's queries per second and
/// the median (with quartiles) of the batches' B / A speed ratios.
func miniLMPairBench(_ a: (encoder: MiniLMEncoder, executor: MiniLMExecutor), _ b: (encoder: MiniLMEncoder, executor: MiniLMExecutor),
                     tokens: Int, queries: Int) {
    let ids = miniLMTokenIDs(tokens: tokens, queries: queries)
    let settings = [a, b]
    for s in settings { _ = s.executor.embed(s.encoder.model, Array(ids.prefix(8))) }
    var times: [[Double]] = [[], []]
    var start = 0, batch = 0
    while start < ids.count {
        let sequences = Array(ids[start..<min(ids.count, start + 64)])
        for i in batch % 2 == 0 ? [0, 1] : [1, 0] {
            times[i].append(seconds { _ = settings[i].executor.embed(settings[i].encoder.model, sequences) })
        }
        start += 64
        batch += 1
    }
    print("MiniLM forward pass, \(queries) sequences of \(tokens) tokens in batches of 64, two settings batch by batch (GEMM: \(GEMM.backendDescription))")
    for (i, label) in ["A", "B"].enumerated() {
        print(String(format: "  %@ %@, %@ executor: %.1f queries/s", label, "\(settings[i].encoder.model.linearKernel)", settings[i].executor.rawValue,
                     Double(queries) / times[i].reduce(0, +)))
    }
    let ratios = zip(times[0], times[1]).map { $0 / $1 }.sorted()
    print(String(format: "  B / A speed, batch by batch: median %.3f (quartiles %.3f, %.3f) over %d batches; B faster in %d",
                 median(ratios), ratios[ratios.count / 4], ratios[(3 * ratios.count) / 4], ratios.count, ratios.filter { $0 > 1 }.count))
}
