import FedRouteData
import FedRouteEmbedding
import FedRouteFederation
import FedRouteSimulation
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging

// fedroute-bench: speed figures (run with `swift run -c release fedroute-bench [DATA] [--only SECTION]`).
// Prints GEMM GFLOP/s for the BLAS and portable paths, MLP training throughput (samples/s),
// routing latency (µs/query, batched and single), a simulated federation's round time and bytes,
// MiniLM throughput, the gateway's load figures and a federation over the network, on
// routerbench-3task when ../shared is present, else on synthetic queries of the same shape.
// SECTION: gemm, federation, network ([--runs N] [--rounds R] [--pairing rounds|runs] [--no-warm-up]: N interleaved runs of R rounds, best and
// median ratios, and with rounds pairing (the default) each network round against the same round in process just before it,
// after a warm-up federation that is not counted unless --no-warm-up;
// [--rows json,frames,deflate,http1,http1-sha256,http1-tree16,secure-json,secure-frames,secure-http1,secure-http1-sha256,
// secure-http1-tree16,secure-http1-chacha,secure-http1-deflate,http1-wan,secure-http1-wan,secure-http1-wan-keys-first]: only
// those transports; rows sign the body digest a client prefers on this CPU (BLAKE3 with AVX-512 or AVX2, else tree16) unless named
// -sha256 or -tree16), minilm, gateway, gateway-keys, gateway-latency ([--rounds R] [--requests N]), engines (with --federation DIR, alone), sparse (alone:
// first-layer products on sparse inputs, SparseRows against GEMM), masks ([--runs N], alone: one client's secure-aggregation
// masks, the VAES kernel against swift-crypto's AES-CTR), digest ([--runs N], alone: the signed body digests of one
// update, SHA-256 against the tree digest and BLAKE3), linear-shapes ([--tokens N] [--runs R], alone: MiniLM's four linear products at
// 64·N rows, GEMM against the packed weights), mlp-train
// ([--rows N] [--epochs E], alone: the training loop on synthetic data, as scripts/bench-compare.py runs it), minilm-speed
// ([--tokens N] [--queries Q] [--linear automatic|gemm|packed|packed-avx2|packed-generic], alone: the MiniLM forward
// pass on token ids, as scripts/bench-compare.py runs it), minilm-pair ([--tokens N] [--queries Q] [--linear A,B]
// [--executor A,B], alone: two settings' forward passes batch by batch in one process) (data,
// features and the routers are always built, since the later sections use them).

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// The middle value (the mean of the two middle ones for an even count); `values` must not be empty.
func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func best(of runs: Int, _ body: () throws -> Void) rethrows -> Double {
    var t = Double.infinity
    for _ in 0..<runs { t = min(t, try seconds(body)) }
    return t
}

let arguments = Array(CommandLine.arguments.dropFirst())
/// The argument after `flag`; nil when the flag is absent or last.
func argument(after flag: String) -> String? {
    arguments.firstIndex(of: flag).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let only = argument(after: "--only")
// The data is the first argument that is neither a flag nor a flag's value.
/// `--rows a,b`: the network section's transports to run (all when absent); unknown names stop the run here.
/// Only where the network section runs: `--only mlp-train` takes `--rows N` as its row count.
let networkRows = only != nil && only != "network" || !arguments.contains("--rows") ? nil
    : Set((argument(after: "--rows") ?? "").split(separator: ",").map(String.init))
if let rows = networkRows, rows.isEmpty || !rows.isSubset(of: NetworkBenchRow.all.map(\.key)) {
    FileHandle.standardError.write(Data("fedroute-bench: --rows takes a comma-separated list of \(NetworkBenchRow.all.map(\.key).joined(separator: ", ")); got \(rows.sorted().joined(separator: ", "))\n".utf8))
    exit(2)
}
let dataPath = arguments.enumerated().first { !$0.element.hasPrefix("-") && ($0.offset == 0 || !arguments[$0.offset - 1].hasPrefix("--")) }?.element
    ?? "../shared/data/routerbench-3task"
func enabled(_ section: String) -> Bool { only == nil || only == section }
// glibc's allocator as the training commands set it (`AllocatorTuning`); the gateway sections keep its defaults, as `fedroute gateway` does.
let allocatorTuned = only == "gateway" || only == "gateway-keys" || only == "gateway-latency" ? false : AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
// `--only engines --federation DIR`: the in-process row of scripts/flower-bench.sh.
if only == "engines" {
    guard let federation = argument(after: "--federation") else {
        FileHandle.standardError.write(Data("--only engines needs --federation DIR (a simulate --export-federation folder)\n".utf8))
        exit(2)
    }
    try await engineBench(federation: federation)
    exit(0)
}

func value(_ flag: String, _ fallback: Int) -> Int {
    guard let v = argument(after: flag).flatMap(Int.init), v > 0 else { return fallback }
    return v
}
if only == "mlp-train" {
    try mlpTrainBench(rows: value("--rows", 8192), epochs: value("--epochs", 3))
    exit(0)
}
if only == "sparse" {
    sparseBench()
    exit(0)
}
if only == "masks" {
    try maskBench(runs: value("--runs", 7))
    exit(0)
}
if only == "linear-shapes" {
    linearShapesBench(rows: value("--tokens", 15) * 64, runs: value("--runs", 15))
    exit(0)
}
if only == "digest" {
    digestBench(runs: value("--runs", 9))
    exit(0)
}
if only == "minilm-pair" {
    let names = (argument(after: "--linear") ?? "automatic,automatic").split(separator: ",").map(String.init)
    let executors = (argument(after: "--executor") ?? "team,team").split(separator: ",").map { MiniLMExecutor(rawValue: String($0)) }
    guard names.count == 2, executors.count == 2, let ea = executors[0], let eb = executors[1] else {
        FileHandle.standardError.write(Data("--linear takes two kernels as A,B; --executor two of \(MiniLMExecutor.allCases.map(\.rawValue).joined(separator: ", ")) as A,B\n".utf8))
        exit(2)
    }
    // One load of the weights when both settings use the same kernel (they differ in the executor).
    let first = miniLMEncoder(linear: names[0])
    let second = names[1] == names[0] ? first : miniLMEncoder(linear: names[1])
    miniLMPairBench((first, ea), (second, eb), tokens: min(512, value("--tokens", 15)), queries: value("--queries", 2048))
    exit(0)
}
if only == "minilm-speed" {
    let encoder = miniLMEncoder(linear: argument(after: "--linear") ?? "automatic")
    try miniLMSpeedBench(encoder: encoder, tokens: min(512, value("--tokens", 256)), queries: value("--queries", 256))
    exit(0)
}

print("fedroute-bench  (GEMM backend: \(GEMM.backendDescription), \(ProcessInfo.processInfo.activeProcessorCount) cores, allocator: \(allocatorTuned ? "tuned for training" : "glibc defaults"))")

// GEMM.
if enabled("gemm") { print("\nGEMM (C = A·B, float32; portable kernel: \(GEMM.portableInstructionSet), \(GEMM.portableThreads) threads)") }
for size in enabled("gemm") ? [(128, 512, 1024), (512, 512, 512), (1024, 1024, 1024)] : [] {
    let (m, n, k) = size
    var rng = SeededRandom(seed: 1)
    let a = (0..<(m * k)).map { _ in rng.nextFloat() }
    let b = (0..<(k * n)).map { _ in rng.nextFloat() }
    var c = [Float](repeating: 0, count: m * n)
    let flops = 2.0 * Double(m * n * k)
    // Interleaved, best of 9 each: the two sides see the same clock and cache state (a pause before one side
    // let the cores drop their clock and made the first, millisecond-long products look slow).
    var tDispatch = Double.infinity, tPortable = Double.infinity
    for _ in 0..<9 {
        tDispatch = min(tDispatch, seconds { GEMM.multiply(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n, beta: 0, c: &c, ldc: n) })
        tPortable = min(tPortable, seconds {
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                GEMM.portableMultiply(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n)
            } } }
        })
    }
    print(String(format: "  %4d×%4d×%4d  %@ %7.1f GFLOP/s   portable %6.1f GFLOP/s  (portable / %@ %.2f)", m, n, k,
                 GEMM.backend.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0), flops / tDispatch / 1e9, flops / tPortable / 1e9,
                 GEMM.backend.rawValue, tDispatch / tPortable))
}

// Data and features.
let table: EvaluationTable
let texts: [String]
if FileManager.default.fileExists(atPath: dataPath) {
    let loadTime = try seconds { _ = try DatasetLoader.load(path: dataPath) }
    let loaded = try DatasetLoader.load(path: dataPath)
    table = loaded.table.trainTestSplit(testFraction: 0.2, seed: 0).train
    texts = table.queries.map(\.text)
    print(String(format: "\ndata: %@ train split, %d queries × %d models (load %.2fs)", dataPath, table.queryCount, table.modelCount, loadTime))
} else {
    var rng = SeededRandom(seed: 2)
    var t = EvaluationTable(models: (0..<11).map { "model-\($0)" })
    var q: [String] = []
    for i in 0..<2000 {
        let text = (0..<60).map { _ in "w\(rng.nextInt(below: 5000))" }.joined(separator: " ")
        q.append(text)
        var cells: [Int: (score: Double, cost: Double)] = [:]
        for m in 0..<11 { cells[m] = (Double(rng.nextInt(below: 2)), 1e-4 * Double(m + 1)) }
        try t.append(Query(id: "\(i)", text: text, task: "synthetic"), cells: cells)
    }
    table = t
    texts = q
    print("\ndata: synthetic, \(table.queryCount) queries × \(table.modelCount) models (\(dataPath) not found)")
}
var encoder = HashedTFIDFEncoder()
let fitTime = seconds { encoder.fit(texts) }
var features = Matrix(rows: 0, cols: 0)
let encodeTime = seconds { features = encoder.encode(texts) }
let meanChars = Double(texts.reduce(0) { $0 + $1.count }) / Double(texts.count)
print(String(format: "hashed TF-IDF (d=%d): fit %.2fs, encode %.0f queries/s (mean %.0f characters/query)",
             encoder.dimension, fitTime, Double(texts.count) / encodeTime, meanChars))

// MLP training throughput.
var config = MLPTrainingConfiguration()
config.epochs = 3
var router: MLPRouter?
let trainTime = try seconds { router = try MLPTrainer.train(features: features, table: table, configuration: config) }
print(String(format: "\nMLP-Router training (d=%d, hidden %d×%d, batch %d): %.0f samples/s (%d epochs in %.2fs)",
             features.cols, config.hiddenDimension, config.trunkLayers, config.batchSize,
             Double(table.queryCount * config.epochs) / trainTime, config.epochs, trainTime))

// Routing latency.
@MainActor func latency(_ name: String, _ r: any Router) throws {
    let batch = try best(of: 3) { _ = try r.predict(features: features).choose(lambda: 1) }
    let one = features.gatherRows([0])
    let n = 200
    let single = try best(of: 3) { for _ in 0..<n { _ = try r.predict(features: one).choose(lambda: 1) } }
    print("  " + name.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: " batched %8.1f µs/query   one at a time %8.1f µs/query", batch / Double(features.rows) * 1e6, single / Double(n) * 1e6))
}
print("\nrouting latency (features given; λ rule included)")
try latency("MLP", router!)
var kc = KMeansConfiguration(clusters: 20)
kc.seed = 0
var kmeans: KMeansRouter?
let kmTime = try seconds { kmeans = try KMeansRouter.train(features: features, table: table, configuration: kc) }
try latency("K-Means", kmeans!)
try latency("kNN (k=25)", try KNNRouter.train(features: features, table: table, k: 25))
let pipeline = try RoutingPipeline(encoder: encoder, router: AnyRouter(router!))
let encodeOne = best(of: 3) { for t in texts.prefix(200) { _ = encoder.encode([t]) } }
print("  encode only  " + String(format: " %8.1f µs/query (hashed TF-IDF, one query at a time)", encodeOne / Double(min(200, texts.count)) * 1e6))
let endToEnd = try best(of: 3) { for t in texts.prefix(200) { _ = try pipeline.predict(texts: [t]).choose(lambda: 1) } }
print("  text → model" + String(format: " %8.1f µs/query (encode + MLP, one query at a time)", endToEnd / Double(min(200, texts.count)) * 1e6))
// The same one query at a time, as percentiles over the first 1,000 texts twice: a slow path taken by a few
// texts shows in the tail (one prompt in a hundred with a non-ASCII byte once took the Unicode path, 10× slower).
do {
    var times: [Double] = []
    for t in Array(texts.prefix(1000)) + Array(texts.prefix(1000)) {
        times.append(try seconds { _ = try pipeline.predict(texts: [t]).choose(lambda: 1) })
    }
    times.sort()
    func at(_ q: Double) -> Double { times[min(times.count - 1, Int(Double(times.count) * q))] * 1e6 }
    print(String(format: "  text → model    p50 %.1f µs, p99 %.1f µs, max %.1f µs (one query at a time, %d queries)", at(0.5), at(0.99), times.last! * 1e6, times.count))
}
print(String(format: "\nK-Means-Router training (k=20, 4 restarts): %.2fs", kmTime))

// One simulated federation (paper defaults, 10 clients): wall time per FedAvg round, per k-means pass
// and the JSON size of what crosses the client boundary (the baseline for a network transport).
if enabled("federation"), let full = try? DatasetLoader.load(path: dataPath, format: nil, options: LoadOptions()).table {
    let shards = try FederatedPartition.make(full, configuration: PartitionConfiguration())
    let clients = shards.map { InProcessClient(id: $0.id, train: $0.train) }
    let recorders = clients.map { ByteCountingClient($0) }
    let coordinator = try FederationCoordinator(clients: recorders)
    let setup = try await asyncSeconds {
        let e = try await coordinator.fitHashedEncoder(HashedTFIDFEncoder.Configuration())
        _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: e.configuration, idf: e.idf))
    }
    var fc = FederatedMLPConfiguration()
    fc.rounds = 5
    func totals() async -> (bytes: Int, seconds: Double) {
        var b = 0, s = 0.0
        for r in recorders { b += await r.bytes; s += await r.encodingSeconds }
        return (b, s)
    }
    let before = await totals()
    let mlpTime = try await asyncSeconds { _ = try await coordinator.trainMLP(fc) }
    let afterMLP = await totals()
    let kmTime = try await asyncSeconds { _ = try await coordinator.trainKMeans(FederatedKMeansConfiguration()) }
    let afterKM = await totals()
    let roundTime = (mlpTime - (afterMLP.seconds - before.seconds)) / Double(fc.rounds)
    print(String(format: "\nsimulated federation (%d clients, in process, JSON serialisation timed apart): encoder setup %.2fs",
                 shards.count, setup))
    print(String(format: "  FedAvg round (6 of 10 clients, 1 local epoch): %.2fs; client replies %.1f MB/round as JSON (%.2fs to encode)",
                 roundTime, Double(afterMLP.bytes - before.bytes) / Double(fc.rounds) / 1e6, (afterMLP.seconds - before.seconds) / Double(fc.rounds)))
    print(String(format: "  federated k-means (two passes): %.2fs; client replies %.2f MB",
                 kmTime - (afterKM.seconds - afterMLP.seconds), Double(afterKM.bytes - afterMLP.bytes) / 1e6))
}

if enabled("network"), let full = try? DatasetLoader.load(path: dataPath, format: nil, options: LoadOptions()).table {
    guard let pairing = NetworkPairing(rawValue: argument(after: "--pairing") ?? NetworkPairing.rounds.rawValue) else {
        FileHandle.standardError.write(Data("fedroute-bench: --pairing takes \(NetworkPairing.allCases.map(\.rawValue).joined(separator: " or ")); got \(argument(after: "--pairing") ?? "")\n".utf8))
        exit(2)
    }
    try await networkBench(table: full, runs: value("--runs", 1), rounds: value("--rounds", 5), rows: networkRows, pairing: pairing,
                           warmUp: pairing == .rounds && value("--runs", 1) > 1 && !arguments.contains("--no-warm-up"))
}

func asyncSeconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Counts the JSON bytes of every reply a client sends.
actor ByteCountingClient: FederatedClient {
    nonisolated let id: String
    let inner: any FederatedClient
    private(set) var bytes = 0
    /// Time spent serialising (excluded from the round times).
    private(set) var encodingSeconds = 0.0

    init(_ inner: any FederatedClient) {
        id = inner.id
        self.inner = inner
    }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        let reply = try await inner.handle(request)
        let start = DispatchTime.now().uptimeNanoseconds
        bytes += try JSONEncoder().encode(reply).count
        encodingSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return reply
    }
}

// Native MiniLM embedder throughput (when the weights are present: scripts/fetch-minilm.sh).
let minilm = try? MiniLMEncoder(directory: MiniLMEncoder.configuredDirectory)
if !enabled("minilm") {
} else if let minilm {
    let sample = Array(texts.prefix(256))
    let tokens = sample.reduce(0) { $0 + minilm.tokenIDs($1).count }
    let t = seconds { _ = minilm.encode(sample) }
    let short = (0..<256).map { "How do I reverse a list in Python, question number \($0)?" }
    let ts = seconds { _ = minilm.encode(short) }
    print(String(format: "\nMiniLM-L6 embedder: %.1f queries/s on %d data queries (%.0f tokens each, max 256); %.1f queries/s on short questions (%.0f tokens)",
                 Double(sample.count) / t, sample.count, Double(tokens) / Double(sample.count), Double(short.count) / ts,
                 Double(short.reduce(0) { $0 + minilm.tokenIDs($1).count }) / Double(short.count)))
} else {
    print("\nMiniLM-L6 embedder: weights not found in \(MiniLMEncoder.configuredDirectory) (run scripts/fetch-minilm.sh)")
}

// `--only gateway-keys [--rounds R] [--requests N]`: the keys rows alone, with more rounds and requests per
// round for a steadier p99 (the p99 of 1,000 requests is their 10th slowest).
if only == "gateway-keys" {
    func value(_ flag: String, _ fallback: Int) -> Int { argument(after: flag).flatMap { Int($0) } ?? fallback }
    try await GatewayBench.keys(pipeline: pipeline, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }),
                                rounds: max(1, value("--rounds", 6)), requests: max(100, value("--requests", 1000)))
}

// `--only gateway-latency [--rounds R] [--requests N]`: the one-client latency target's figure, direct and gateway
// alternating round by round, for the data's prompts and for chat questions.
if only == "gateway-latency" {
    try await GatewayBench.latency(pipeline: pipeline, texts: texts, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }),
                                   rounds: max(1, value("--rounds", 10)), requests: max(100, value("--requests", 1000)))
}

// The gateway under load: requests/s and the latency it adds over calling the upstream directly.
if enabled("gateway") {
    try await GatewayBench.run(pipeline: pipeline, texts: texts, minilm: minilm)
    try await GatewayBench.keys(pipeline: pipeline, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
}
