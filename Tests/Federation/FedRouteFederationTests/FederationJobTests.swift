import FedRouteData
import FedRouteFeatures
@testable import FedRouteFederation
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

    /// `beforeRoundClock` runs once before each MLP round, with its number, outside the round's time; each round
    /// records the process's CPU time over it. (The whole process's: other tests running alongside add to it, so
    /// only its presence is checked.)
    @Test func workBeforeTheRoundClockIsOutsideTheRoundsTime() async throws {
        let tables = try Fixture.shards(sizes: [30, 25, 20])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-job-\(UUID().uuidString)").path
        let transport = InProcessTransport(clients: tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1) })
        var logger = Logger(label: "test")
        logger.logLevel = .error
        var config = Self.configuration(dir)
        config.families = [.mlp]
        var job = FederationJob(configuration: config, transport: transport, store: try CheckpointStore(directory: dir + "/state"), logger: logger)
        let seen = RoundLog()
        // Far longer than one of these rounds takes, even on a loaded machine.
        let pause = 2.5
        job.beforeRoundClock = { round in
            await seen.add(round)
            try await Task.sleep(for: .seconds(pause))
        }
        let result = try await job.run(initialState: nil)
        #expect(await seen.rounds == Array(1...Fixture.smallMLP.rounds))
        #expect(result.traffic.count == Fixture.smallMLP.rounds)
        for t in result.traffic {
            #expect(t.seconds < pause, "round \(t.round): \(t.seconds) s")
            #expect((t.cpuSeconds ?? -1) >= 0, "round \(t.round): \(t.cpuSeconds ?? -1) s of CPU")
        }
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
            let before = try Data(contentsOf: URL(fileURLWithPath: other + "/state/state.frames"))
            await #expect { _ = try await Self.run(tables, dir: other, initial: state) } throws: { error in
                "\(error)".contains(expected) && "\(error)".contains("state.frames")
            }
            // The refused checkpoint is not overwritten.
            #expect(try Data(contentsOf: URL(fileURLWithPath: other + "/state/state.frames")) == before)
        }
        // A parameter shape of [2^40, 2^40] is refused while decoding, not allocated: in a frame's JSON and in
        // a checkpoint written before frames.
        let shape = good.mlp!.parameters[0].shape.map(String.init).joined(separator: ",")
        func huge(_ json: Data) throws -> Data {
            let text = try #require(String(data: json, encoding: .utf8))
            let edited = text.replacingOccurrences(of: "\"shape\":[\(shape)]", with: "\"shape\":[1099511627776,1099511627776]")
            #expect(edited != text)
            return Data(edited.utf8)
        }
        let frame = try CheckpointStore.encode(good)
        let legacy = try FederationCoding.encoder().encode(good)
        for (file, bytes) in [("state.frames", try Self.replacingJSON(of: frame, by: huge)), ("state.json", try huge(legacy))] {
            let bad = dir + "-huge-\(file)"
            try FileManager.default.createDirectory(atPath: bad + "/state", withIntermediateDirectories: true)
            try bytes.write(to: URL(fileURLWithPath: bad + "/state/" + file))
            #expect { _ = try CheckpointStore(directory: bad + "/state").load() } throws: { "\($0)".contains("cannot be read") && "\($0)".contains(file) }
        }
    }

    /// A frame with its JSON (after the magic and the 32-bit length) replaced by `edit(json)`.
    static func replacingJSON(of frame: Data, by edit: (Data) throws -> Data) throws -> Data {
        let bytes = [UInt8](frame)
        let length = Int(bytes[4]) | Int(bytes[5]) << 8 | Int(bytes[6]) << 16 | Int(bytes[7]) << 24
        let json = try edit(Data(bytes[8..<(8 + length)]))
        var out = Data(bytes[0..<4])
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { out.append(contentsOf: $0) }
        return out + json + Data(bytes[(8 + length)...])
    }

    /// Issue 19: checkpoints are tensor frames, smaller than the JSON with base64 arrays they replace (which
    /// took 66–86 ms per round to write for a 0.8 M-parameter MLP); a JSON checkpoint of an older
    /// fedroute still resumes, and the first save replaces it; both files at once are refused by name.
    @Test func checkpointsAreFramesAndOlderJSONCheckpointsStillResume() async throws {
        let tables = try Fixture.shards(sizes: [30, 25, 20])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-job-\(UUID().uuidString)").path
        let (whole, _) = try await Self.run(tables, dir: dir)
        let store = try CheckpointStore(directory: dir + "/state")
        #expect(store.path.hasSuffix("/state.frames"))
        let frame = try Data(contentsOf: URL(fileURLWithPath: store.framesPath))
        #expect(TensorFrames.isFrame(frame))
        #expect(!FileManager.default.fileExists(atPath: store.legacyPath))
        let state = try #require(try store.load())
        let sorted = FederationCoding.encoder()
        sorted.outputFormatting = .sortedKeys
        let legacy = try sorted.encode(state)
        #expect(frame.count < legacy.count)
        // The frame holds every value bit for bit: decoding it gives the JSON form's state.
        #expect(try sorted.encode(try CheckpointStore.decode(frame)) == legacy)
        #expect(try sorted.encode(try CheckpointStore.decode(legacy)) == legacy)
        // FedAvg keeps no server moments; FedAdam's are blobs of the frame too, not base64 inside its JSON.
        var header = ""
        _ = try Self.replacingJSON(of: frame) { header = String(decoding: $0, as: UTF8.self); return $0 }
        #expect(header.contains("\"m\":[]") && header.contains("\"v\":[]"))
        var adam = state
        adam.mlp?.server = FederatedOptimizerState(.adam, shapes: state.mlp!.parameters.map(\.count))
        _ = try Self.replacingJSON(of: try CheckpointStore.encode(adam)) { header = String(decoding: $0, as: UTF8.self); return $0 }
        #expect(header.contains("\"m\":[{\"blob\":") && header.contains("\"v\":[{\"blob\":"))
        // An older fedroute's state.json, cut back to "setup and one round done", resumes to the same routers.
        var partial = state
        partial.finishedFamilies = []
        partial.mlp = nil
        partial.roundTraffic = []
        let old = dir + "-json"
        try FileManager.default.createDirectory(atPath: old + "/state", withIntermediateDirectories: true)
        try FederationCoding.encoder().encode(partial).write(to: URL(fileURLWithPath: old + "/state/state.json"))
        let oldStore = try CheckpointStore(directory: old + "/state")
        #expect(oldStore.path.hasSuffix("/state.json"))
        let resumedState = try #require(try oldStore.load())
        let (resumed, _) = try await Self.run(tables, dir: old, initial: resumedState)
        for family in ["mlp", "kmeans", "mf"] {
            #expect(try RouterFile.load(path: resumed.routerFiles[family]!).router == (try RouterFile.load(path: whole.routerFiles[family]!).router))
        }
        #expect(!FileManager.default.fileExists(atPath: oldStore.legacyPath))
        #expect(FileManager.default.fileExists(atPath: oldStore.framesPath))
        // Both files: refused, naming both.
        try legacy.write(to: URL(fileURLWithPath: oldStore.legacyPath))
        #expect { _ = try oldStore.load() } throws: { "\($0)".contains("state.frames") && "\($0)".contains("state.json") && "\($0)".contains("move away") }
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

/// The rounds a hook saw, in order.
actor RoundLog {
    var rounds: [Int] = []
    func add(_ r: Int) { rounds.append(r) }
}
