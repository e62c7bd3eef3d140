import FedRouteData
import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging
import Testing

/// The checkpointed job over the in-process transport: the same algorithms as calling the
/// coordinator directly, checkpoints that resume to the same routers, and the outcome handed out.
@Suite struct FederationJobTests {
    static func configuration(_ dir: String) -> FederationJobConfiguration {
        var kmeans = FederatedKMeansConfiguration()
        kmeans.localClusters = 3
        kmeans.globalClusters = 3
        return FederationJobConfiguration(federation: "test", encoder: Fixture.encoderConfiguration, mlp: Fixture.smallMLP,
                                          kmeans: kmeans, minimumOnline: 1, roundDeadlineSeconds: 10, joinTimeoutSeconds: 10,
                                          stateDirectory: dir + "/state", outputDirectory: dir + "/out")
    }

    static func run(_ tables: [EvaluationTable], dir: String, initial: FederationJobState? = nil) async throws -> (FederationJob.Result, InProcessTransport) {
        let transport = InProcessTransport(clients: tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1) })
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let job = FederationJob(configuration: configuration(dir), transport: transport, store: try CheckpointStore(directory: dir + "/state"), logger: logger)
        return (try await job.run(initialState: initial), transport)
    }

    @Test func theJobOverInProcessClientsTrainsWhatTheCoordinatorTrains() async throws {
        let tables = try Fixture.shards(sizes: [30, 25, 20])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-job-\(UUID().uuidString)").path
        let (result, transport) = try await Self.run(tables, dir: dir)
        #expect(result.rounds.count == Fixture.smallMLP.rounds && result.routerFiles.keys.sorted() == ["kmeans", "mf", "mlp"])
        // The transport handed every client the routers and the federation's local training settings.
        let outcome = try #require(await transport.outcome)
        #expect(outcome.routers.keys.sorted() == ["kmeans", "mf", "mlp"] && outcome.fineTuning == Fixture.smallMLP.local)
        #expect(outcome.mfFineTuning == Self.configuration(dir).effectiveMF.local && result.mfRounds?.count == Fixture.smallMLP.rounds)

        // The same steps through the coordinator directly give the same routers.
        let direct = try FederationCoordinator(clients: tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1) })
        let fitted = try await direct.fitHashedEncoder(Self.configuration(dir).encoder)
        _ = try await direct.useEncoder(.hashedTFIDF(configuration: fitted.configuration, idf: fitted.idf))
        let (mlp, _) = try await direct.trainMLP(Fixture.smallMLP)
        let (kmeans, _) = try await direct.trainKMeans(Self.configuration(dir).kmeans)
        #expect(try RouterFile.load(path: result.routerFiles["mlp"]!).router == AnyRouter(mlp))
        let (mf, _) = try await direct.trainMLP(Self.configuration(dir).effectiveMF)
        #expect(try RouterFile.load(path: result.routerFiles["mf"]!).router == AnyRouter(try MFRouter(mf)))
        // K-Means statistics are stored as float32 means: compare after the same round trip through a file.
        let file = dir + "/direct-kmeans.safetensors"
        try RouterFile.save(try RoutingPipeline(encoder: fitted, router: AnyRouter(kmeans)), to: file)
        #expect(try RouterFile.load(path: result.routerFiles["kmeans"]!).router == (try RouterFile.load(path: file).router))
    }

    @Test func aJobResumedFromItsCheckpointEndsWithTheSameRouters() async throws {
        let tables = try Fixture.shards(sizes: [30, 25, 20])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-job-\(UUID().uuidString)").path
        let (whole, _) = try await Self.run(tables, dir: dir)
        // Cut the checkpoint back to "setup and one round done" and resume in a fresh folder.
        var state = try #require(try CheckpointStore(directory: dir + "/state").load())
        #expect(state.finishedFamilies == ["mlp", "kmeans", "mf"])
        let other = dir + "-resumed"
        state.finishedFamilies = []
        state.mlp = nil
        state.roundTraffic = []
        let (resumed, _) = try await Self.run(tables, dir: other, initial: state)
        #expect(try RouterFile.load(path: resumed.routerFiles["mlp"]!).router == (try RouterFile.load(path: whole.routerFiles["mlp"]!).router))
        #expect(try RouterFile.load(path: resumed.routerFiles["kmeans"]!).router == (try RouterFile.load(path: whole.routerFiles["kmeans"]!).router))
        #expect(try RouterFile.load(path: resumed.routerFiles["mf"]!).router == (try RouterFile.load(path: whole.routerFiles["mf"]!).router))
    }

    /// Issue 15.4: tampered checkpoints trapped (negative rounds), or silently restarted MLP training
    /// and overwrote the file (the `mlp` key removed), or blamed the features (NaN parameters).
    @Test func aTamperedCheckpointIsRefusedWithItsReasonAndLeftAlone() async throws {
        let tables = try Fixture.shards(sizes: [30, 25, 20])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-job-\(UUID().uuidString)").path
        _ = try await Self.run(tables, dir: dir)
        let good = try #require(try CheckpointStore(directory: dir + "/state").load())
        var cases: [(String, FederationJobState)] = []
        var noMLP = good
        noMLP.mlp = nil
        cases.append(("holds no MLP state", noMLP))
        var notFinished = noMLP
        notFinished.finishedFamilies = []
        cases.append(("records 3 MLP rounds", notFinished))
        var negative = good
        negative.finishedFamilies = []
        negative.mlp?.completedRounds = -5
        cases.append(("completedRounds is -5", negative))
        var nan = good
        nan.finishedFamilies = []
        nan.mlp?.parameters[0].values[0] = .nan
        cases.append(("holds NaN or infinity", nan))
        var unknown = good
        unknown.finishedFamilies = ["mlp", "forest"]
        cases.append(("'forest' is not a router family", unknown))
        for (expected, state) in cases {
            let other = dir + "-\(UUID().uuidString)"
            try CheckpointStore(directory: other + "/state").save(state)
            let before = try Data(contentsOf: URL(fileURLWithPath: other + "/state/state.json"))
            await #expect { _ = try await Self.run(tables, dir: other, initial: state) } throws: { error in
                "\(error)".contains(expected) && "\(error)".contains("state.json")
            }
            // The refused checkpoint is not overwritten.
            #expect(try Data(contentsOf: URL(fileURLWithPath: other + "/state/state.json")) == before)
        }
        // A parameter shape of [2^40, 2^40] is refused while decoding, not allocated.
        let text = try String(contentsOfFile: dir + "/state/state.json", encoding: .utf8)
        let shape = good.mlp!.parameters[0].shape.map(String.init).joined(separator: ",")
        let huge = text.replacingOccurrences(of: "\"shape\":[\(shape)]", with: "\"shape\":[1099511627776,1099511627776]")
        #expect(huge != text)
        let bad = dir + "-huge"
        try FileManager.default.createDirectory(atPath: bad + "/state", withIntermediateDirectories: true)
        try huge.write(toFile: bad + "/state/state.json", atomically: true, encoding: .utf8)
        #expect { _ = try CheckpointStore(directory: bad + "/state").load() } throws: { "\($0)".contains("cannot be read") }
    }

    @Test func aFamilyWithoutFederatedTrainingIsRefusedUpFront() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-job-\(UUID().uuidString)").path
        var c = Self.configuration(dir)
        c.families = [.mlp, .knn]
        #expect { try c.validate(clients: 3) } throws: { "\($0)".contains("knn cannot be trained federatedly") }
        c.families = [.mlp]
        c.minimumOnline = 4
        #expect { try c.validate(clients: 3) } throws: { "\($0)".contains("minimumOnline must be in 1…3") }
    }
}
