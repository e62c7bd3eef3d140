import FedRouteData
import FedRouteFeatures
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteHTTPRunner
import FedRouteRouters
import FedRouteSimulation
import Foundation
import Logging

/// One transport of the network bench; `key` names it for `--rows`.
struct NetworkBenchRow {
    var key: String
    var secure: Bool
    var frames: Bool
    var compression: FrameCompression = .none
    var http: ClientHTTPVersion = .automatic
    /// The mask generators the clients declare (nil: what this machine prefers).
    var masks: [MaskGenerator]? = nil
    /// The body digest the clients sign (`BodyDigest`; what a client prefers on this CPU unless a row says otherwise).
    var digest = BodyDigest.preferred
    /// A one-way delay in milliseconds that each client request and answer waits, as on a wide-area network
    /// (`addedDelay`).
    var delayMilliseconds: Int? = nil
    /// Whether the clients train with their key in secure rounds (`ClientPolicy.trainsWithKey`).
    var trainsWithKey = true

    static let all = [
        NetworkBenchRow(key: "json", secure: false, frames: false), NetworkBenchRow(key: "frames", secure: false, frames: true),
        NetworkBenchRow(key: "deflate", secure: false, frames: true, compression: .shuffleDeflate),
        NetworkBenchRow(key: "http1", secure: false, frames: true, http: .http1),
        NetworkBenchRow(key: "http1-sha256", secure: false, frames: true, http: .http1, digest: .sha256),
        NetworkBenchRow(key: "http1-tree16", secure: false, frames: true, http: .http1, digest: .tree16),
        NetworkBenchRow(key: "secure-json", secure: true, frames: false), NetworkBenchRow(key: "secure-frames", secure: true, frames: true),
        NetworkBenchRow(key: "secure-http1", secure: true, frames: true, http: .http1),
        NetworkBenchRow(key: "secure-http1-sha256", secure: true, frames: true, http: .http1, digest: .sha256),
        NetworkBenchRow(key: "secure-http1-tree16", secure: true, frames: true, http: .http1, digest: .tree16),
        NetworkBenchRow(key: "secure-http1-chacha", secure: true, frames: true, http: .http1, masks: [.chacha20]),
        NetworkBenchRow(key: "secure-http1-deflate", secure: true, frames: true, compression: .shuffleDeflate, http: .http1),
        // A wide-area network's delays (10 ms each way) on loopback: the ratio to in process is not the point of
        // these rows; the secure round with and without training while the keys are exchanged is.
        NetworkBenchRow(key: "http1-wan", secure: false, frames: true, http: .http1, delayMilliseconds: 10),
        NetworkBenchRow(key: "secure-http1-wan", secure: true, frames: true, http: .http1, delayMilliseconds: 10),
        NetworkBenchRow(key: "secure-http1-wan-keys-first", secure: true, frames: true, http: .http1, delayMilliseconds: 10, trainsWithKey: false),
    ]
}

/// Issue 4's benchmark: wall time and bytes on the wire per FedAvg round for 10 clients on
/// loopback (TLS, HTTP/2 and HTTP/1.1; JSON with base64 tensors, and tensor frames), against the same rounds in process.
///
/// With `runs` > 1 the in-process rounds and every transport are measured `runs` times, interleaved: each run
/// times the in-process rounds, then every transport, then the in-process rounds again, and takes each transport's
/// ratio against the mean of its run's two in-process figures, so that a machine that speeds up or slows down
/// during a run (these are shared machines) moves both sides of the ratio alike. The transports' order rotates
/// from run to run, so that none is always measured first or last. The summary gives the best and the median of
/// each transport's ratios.
///
/// With `pairing` `.rounds` (the default) every network round also has a peer of its own: the same round in
/// process (`PairedInProcessRounds`), run just before the network round's clock starts. The summary then adds,
/// per transport, the median of all its rounds' paired ratios and each run's ratio of paired sums; these move
/// least with the machine's speed, which on these machines changes by half within seconds.
///
/// With `warmUp`, one federation of the first row (2 rounds, paired) runs first and is not counted: the process's
/// first federation pays one-time costs that a coordinator pays once per job.
func networkBench(table: EvaluationTable, runs: Int = 1, rounds: Int = 5, rows: Set<String>? = nil, pairing: NetworkPairing = .rounds,
                  warmUp: Bool = false) async throws {
    let shards = try FederatedPartition.make(table, configuration: PartitionConfiguration())
    var mlp = FederatedMLPConfiguration()
    mlp.rounds = rounds
    var kmeans = FederatedKMeansConfiguration()
    kmeans.seed = 1
    let inProcess = try FederationCoordinator(clients: shards.map { InProcessClient(id: $0.id, train: $0.train) })
    let e = try await inProcess.fitHashedEncoder(HashedTFIDFEncoder.Configuration())
    _ = try await inProcess.useEncoder(.hashedTFIDF(configuration: e.configuration, idf: e.idf))
    let concurrent = try FederationCoordinator(clients: shards.map { InProcessClient(id: $0.id, train: $0.train) }, maxConcurrentRequests: shards.count)
    _ = try await concurrent.useEncoder(.hashedTFIDF(configuration: e.configuration, idf: e.idf))
    print(String(format: "\nfederation over the network (%d client runners + coordinator in one process, 127.0.0.1, TLS; HTTP/2 unless marked HTTP/1.1; %d rounds%@)",
                 shards.count, rounds, runs > 1 ? ", \(runs) interleaved runs" : ""))
    let variants = NetworkBenchRow.all.filter { rows == nil || rows!.contains($0.key) }
    var ratios = [[Double]](repeating: [], count: variants.count)
    // Paired: every round's ratio, and each run's paired sums' ratio.
    var roundRatios = [[Double]](repeating: [], count: variants.count)
    var pairedRunRatios = [[Double]](repeating: [], count: variants.count)
    // Paired CPU: every round's network and in-process CPU seconds.
    var networkCPU = [[Double]](repeating: [], count: variants.count)
    var peerCPU = [[Double]](repeating: [], count: variants.count)
    var labels = [String](repeating: "", count: variants.count)
    if warmUp, let first = variants.first {
        // The process's first federation pays one-time costs (the event loops' and TLS's first use, generic metadata,
        // the allocator's first touch of its buffers) that a coordinator pays once per job, not per round.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-bench-\(UUID().uuidString)").path
        var short = mlp
        short.rounds = 2
        let peer = try await PairedInProcessRounds(inProcess, short)
        let t = try await networkRounds(first, shards: shards, mlp: short, kmeans: kmeans, directory: dir, peer: peer)
        try? FileManager.default.removeItem(atPath: dir)
        let peerSeconds = await peer.seconds
        print("  warm-up (not counted): the first row's federation, 2 rounds, network / in process, ms: "
              + pairedMilliseconds(t, peerSeconds))
    }
    for run in 1...runs {
        if runs > 1 { print("  run \(run) of \(runs)") }
        // Timed as the network job times its rounds: from each round's start to its checkpoint call, so that
        // the one-time work around the rounds (descriptions, the cost normaliser) is in neither figure.
        let (simRound, simWhole) = try await InProcessRounds.time(inProcess, mlp)
        print(String(format: "  in process: %.3f s per FedAvg round (6 of 10 clients sampled; %.3f s with the set-up before the rounds)", simRound, simWhole))
        let (concRound, _) = try await InProcessRounds.time(concurrent, mlp)
        print(String(format: "  in process, the 6 sampled clients at once (as over the network): %.3f s per FedAvg round", concRound))
        var seconds = [Double](repeating: 0, count: variants.count)
        let rotation = (run - 1) % max(1, variants.count)
        for v in Array(variants.indices[rotation...]) + Array(variants.indices[..<rotation]) {
            let row = variants[v]
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-bench-\(UUID().uuidString)").path
            let peer = pairing == .rounds ? try await PairedInProcessRounds(inProcess, mlp) : nil
            let t = try await networkRounds(row, shards: shards, mlp: mlp, kmeans: kmeans, directory: dir, peer: peer)
            var paired = ""
            if let peer {
                let peerSeconds = await peer.seconds
                guard peerSeconds.count == t.count else {
                    throw FederationError.invalidConfiguration("\(t.count) network rounds but \(peerSeconds.count) paired in-process rounds")
                }
                roundRatios[v] += zip(t, peerSeconds).map { $0.seconds / $1 }
                let peerMean = peerSeconds.reduce(0, +) / Double(peerSeconds.count)
                pairedRunRatios[v].append(t.reduce(0.0) { $0 + $1.seconds } / Double(t.count) / peerMean)
                networkCPU[v] += t.compactMap(\.cpuSeconds)
                peerCPU[v] += await peer.cpuSeconds
                print("    rounds, network / in process, ms: " + pairedMilliseconds(t, peerSeconds))
                paired = String(format: "; paired in process %.3f s, %.2f×", peerMean, pairedRunRatios[v].last!)
            }
            let n = Double(t.count)
            let roundSeconds: Double = t.reduce(0.0) { $0 + $1.seconds } / n
            let down: Double = Double(t.reduce(0) { $0 + $1.bytesOut }) / n / 1e6
            let up: Double = Double(t.reduce(0) { $0 + $1.bytesIn }) / n / 1e6
            var format = row.frames ? (row.compression == .none ? "tensor frames" : "frames, \(row.compression.rawValue)") : "JSON + base64"
            if row.http == .http1 { format += ", HTTP/1.1" }
            if row.masks == [.chacha20] { format += ", ChaCha20 masks" }
            if row.digest != .preferred { format += ", \(row.digest.rawValue) digest" }
            if let ms = row.delayMilliseconds { format += ", +\(ms) ms each way" }
            if !row.trainsWithKey { format += ", keys first" }
            labels[v] = (row.secure ? "secure aggregation" : "plain             ") + ", " + format.padding(toLength: max(39, format.count), withPad: " ", startingAt: 0)
            seconds[v] = roundSeconds
            print(String(format: "  %@: %.3f s per round (%.2f× the in-process round before it%@), %.1f MB to clients + %.1f MB from clients per round (body bytes)",
                         labels[v], roundSeconds, roundSeconds / simRound, paired, down, up))
            if run == 1, row.key == "http1" { try checkpointRow(directory: dir + "/state") }
            try? FileManager.default.removeItem(atPath: dir)
        }
        guard runs > 1 else { continue }
        let (simAfter, _) = try await InProcessRounds.time(inProcess, mlp)
        let baseline = (simRound + simAfter) / 2
        print(String(format: "  in process again: %.3f s per FedAvg round; this run's ratios are against the mean, %.3f s", simAfter, baseline))
        for v in variants.indices { ratios[v].append(seconds[v] / baseline) }
    }
    guard runs > 1 else { return }
    print("  network round / in-process round, each against the mean of its run's two in-process figures: best / median of \(runs)")
    for (label, r) in zip(labels, ratios) where !r.isEmpty {
        print(String(format: "  %@: %.2f / %.2f×  (%@)", label, r.min()!, median(r), r.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
    }
    guard pairing == .rounds else { return }
    print("  paired: each network round / the same round in process just before it; median of all \(runs * rounds) rounds, and each run's ratio of the paired means")
    for v in variants.indices where !roundRatios[v].isEmpty {
        let r = roundRatios[v]
        print(String(format: "  %@: median %.2f× over %d rounds (quartiles %.2f, %.2f); runs %@", labels[v], median(r), r.count,
                     quantile(r, 0.25), quantile(r, 0.75), pairedRunRatios[v].map { String(format: "%.2f", $0) }.joined(separator: ", ")))
    }
    print("  CPU per round (the whole process: coordinator and clients), median over the same rounds")
    for v in variants.indices where !networkCPU[v].isEmpty && networkCPU[v].count == peerCPU[v].count {
        let n = median(networkCPU[v]), p = median(peerCPU[v])
        print(String(format: "  %@: %.1f ms, in process %.1f ms: %+.1f ms (%.2f×)", labels[v], n * 1e3, p * 1e3, (n - p) * 1e3, n / p))
    }
}

/// One federation of `row` over loopback (MLP only, `mlp.rounds` rounds) under `directory`, each round's clock started
/// after `peer` ran the same round in process; its rounds' traffic and times.
func networkRounds(_ row: NetworkBenchRow, shards: [ClientShard], mlp: FederatedMLPConfiguration, kmeans: FederatedKMeansConfiguration,
                   directory: String, peer: PairedInProcessRounds?) async throws -> [RoundTraffic] {
    var m = mlp
    m.secureAggregation = row.secure
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let policy = ClientPolicy(maskGenerators: row.masks, trainsWithKey: row.trainsWithKey ? nil : false)
    var hook: (@Sendable (Int) async throws -> Void)?
    if let peer { hook = { round in try await peer.run(round: round) } }
    let (result, _) = try await LoopbackFederation.run(clients: shards.map { InProcessClient(id: $0.id, train: $0.train, policy: policy) },
                                                       directory: directory, logger: logger, tensorFrames: row.frames, httpVersion: row.http,
                                                       bodyDigest: row.digest, addedDelay: row.delayMilliseconds.map { .milliseconds($0) },
                                                       configure: { c in
                                                           c.families = [.mlp]
                                                           c.mlp = m
                                                           c.kmeans = kmeans
                                                           c.frameCompression = row.compression
                                                       }, beforeRoundClock: hook)
    return result.traffic
}

/// Each network round's milliseconds beside its in-process peer's, "network / in process", comma-separated.
func pairedMilliseconds(_ network: [RoundTraffic], _ peer: [Double]) -> String {
    zip(network, peer).map { String(format: "%.1f / %.1f", $0.seconds * 1e3, $1 * 1e3) }.joined(separator: ", ")
}

/// The `q` quantile of `values` (linear between the two nearest ranks); `values` must not be empty.
func quantile(_ values: [Double], _ q: Double) -> Double {
    let s = values.sorted()
    let x = q * Double(s.count - 1)
    let i = Int(x.rounded(.down))
    return i + 1 < s.count ? s[i] + (s[i + 1] - s[i]) * (x - Double(i)) : s[i]
}

/// In-process FedAvg rounds timed the way `FederationJob` times network rounds (`RoundTraffic.seconds`):
/// from `beforeRound` to the `checkpoint` call, averaged over the rounds.
actor InProcessRounds {
    var started: UInt64 = 0
    var total: UInt64 = 0
    var startedCPU = 0.0
    /// The process's CPU seconds over the rounds (`ProcessCPUTime`).
    var cpuTotal = 0.0

    func start() {
        started = DispatchTime.now().uptimeNanoseconds
        startedCPU = ProcessCPUTime.now() ?? 0
    }
    func stop() {
        total += DispatchTime.now().uptimeNanoseconds - started
        cpuTotal += (ProcessCPUTime.now() ?? 0) - startedCPU
    }

    /// Seconds per round, rounds only; and the whole `trainMLP` call per round (with its set-up).
    static func time(_ coordinator: FederationCoordinator, _ mlp: FederatedMLPConfiguration) async throws -> (rounds: Double, whole: Double) {
        let clock = InProcessRounds()
        let whole = try await asyncSeconds {
            _ = try await coordinator.trainMLP(mlp, beforeRound: { _ in await clock.start() }, checkpoint: { _ in await clock.stop() })
        }
        return (Double(await clock.total) / 1e9 / Double(mlp.rounds), whole / Double(mlp.rounds))
    }
}

/// What writing the job's checkpoint after every round costs: the state the loopback job left, saved as a
/// tensor frame and as the JSON with base64 arrays that older versions wrote, alternately, best and median of 7.
func checkpointRow(directory: String) throws {
    let store = try CheckpointStore(directory: directory)
    guard let state = try store.load() else { return }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-bench-checkpoint-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let json = FederationCoding.encoder()
    var frameTimes: [Double] = [], unflushedTimes: [Double] = [], jsonTimes: [Double] = []
    var frameBytes = 0, jsonBytes = 0
    for _ in 0..<7 {
        // As the job writes it: flushed to the disk before the rename (`DurableFile`).
        frameTimes.append(try seconds {
            let data = try CheckpointStore.encode(state)
            frameBytes = data.count
            try DurableFile.write(data, to: scratch.path)
        })
        unflushedTimes.append(try seconds { try CheckpointStore.encode(state).write(to: scratch, options: .atomic) })
        jsonTimes.append(try seconds {
            let data = try json.encode(state)
            jsonBytes = data.count
            try data.write(to: scratch, options: .atomic)
        })
    }
    print(String(format: "  checkpoint after each round (encode + durable write): tensor frame %.1f MB, %.0f / %.0f ms (without the flush %.0f / %.0f ms); JSON + base64 (before) %.1f MB, %.0f / %.0f ms, not flushed (best / median of 7)",
                 Double(frameBytes) / 1e6, frameTimes.min()! * 1e3, median(frameTimes) * 1e3, unflushedTimes.min()! * 1e3, median(unflushedTimes) * 1e3,
                 Double(jsonBytes) / 1e6, jsonTimes.min()! * 1e3, median(jsonTimes) * 1e3))
}
