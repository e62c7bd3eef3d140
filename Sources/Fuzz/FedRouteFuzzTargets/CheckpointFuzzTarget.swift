import FedRouteData
import FedRouteFederation
import FedRouteFeatures
import FedRouteRouters
import Foundation
import Logging

/// A coordinator checkpoint (`state.frames`, or an older `state.json`) as a resumed job reads it: the store's decoding, the
/// state's own validation, the encoder it records, and the checks that its MLP state can resume
/// the network the job configuration describes.
enum CheckpointFuzzTarget {
    /// The job configuration the checkpoint is resumed under (also the seeds' configuration).
    static var mlp: FederatedMLPConfiguration {
        var c = FederatedMLPConfiguration()
        c.hiddenDimension = 4
        c.trunkLayers = 1
        c.rounds = 2
        c.participation = 1
        c.local.batchSize = 8
        return c
    }

    static let encoder = HashedTFIDFEncoder.Configuration(dimension: 16, wordNGrams: 1...1, charNGrams: nil)

    static func run(_ input: Data) {
        guard let state = try? CheckpointStore.decode(input),
              (try? state.validate()) != nil, let setup = state.setup else { return }
        _ = try? setup.encoder.makeEncoder(minilmDirectory: "/nonexistent/minilm")
        // The network the job would build: its size comes from the checkpoint's encoder and models,
        // bounded by `MLPArchitecture.validate` (tested elsewhere); the fuzzer keeps to small ones.
        guard let resume = state.mlp, setup.encoder.dimension <= 4096, setup.descriptions[0].models.count <= 64,
              let initial = try? FederationCoordinator.initialMLP(mlp, models: setup.descriptions[0].models,
                                                                  featureDimension: setup.encoder.dimension, normalizer: setup.normalizer) else { return }
        _ = try? resume.checkResumable(parameters: initial.network.parameters, configuration: mlp)
    }

    /// The checkpoints of a small in-process job: after setup, after round 1 and at the end.
    static func seeds() async throws -> [FuzzSeed] {
        let scratch = try FuzzScratch()
        defer { scratch.remove() }
        let tables = try SyntheticData.sparseShards(sizes: [14, 12], seed: 5, maskSeed: 105)
        let transport = InProcessTransport(clients: tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1) })
        let configuration = FederationJobConfiguration(
            federation: "fuzz-seeds", families: [.mlp], encoder: encoder, mlp: mlp, kmeans: FederatedKMeansConfiguration(),
            minimumOnline: 1, roundDeadlineSeconds: 10, joinTimeoutSeconds: 10,
            stateDirectory: scratch.directory + "/state", outputDirectory: scratch.directory + "/out")
        var logger = Logger(label: "fedroute-fuzz")
        logger.logLevel = .critical
        let store = try CheckpointStore(directory: scratch.directory + "/state")
        _ = try await FederationJob(configuration: configuration, transport: transport, store: store, logger: logger).run(initialState: nil)
        guard let final = try store.load() else { return [] }
        var afterSetup = final
        afterSetup.mlp = nil
        afterSetup.finishedFamilies = []
        afterSetup.roundTraffic = []
        var afterRound = final
        afterRound.finishedFamilies = []
        afterRound.roundTraffic = Array(final.roundTraffic.prefix(1))
        afterRound.mlp?.completedRounds = 1
        afterRound.mlp?.reports = Array(final.mlp?.reports.prefix(1) ?? [])
        // Each as a frame (what is written now) and as JSON (what older versions wrote).
        let encoder = FederationCoding.encoder()
        return try [("setup", afterSetup), ("round-1", afterRound), ("final", final)].flatMap {
            [FuzzSeed(name: $0.0 + ".frames", data: try CheckpointStore.encode($0.1)), FuzzSeed(name: $0.0 + ".json", data: try encoder.encode($0.1))]
        }
    }
}
