import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
@testable import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging
import Testing

/// Issue 16, items 2, 4 and 5 in a federation: held-out rows per client, best-round and
/// cluster-count selection on their summed statistics, the federated MF-Router and the federated
/// safety gate.
@Suite struct FederatedValidationTests {
    /// Clients over sparse synthetic shards, each holding out `fraction` of its rows. With
    /// `signal: false` every client's query texts are shuffled against its labels.
    static func federation(sizes: [Int], fraction: Double = 0.3, signal: Bool = true, seed: UInt64 = 1) async throws
        -> (FederationCoordinator, [InProcessClient], [ClientDescription]) {
        let tables = try Fixture.shards(sizes: sizes, seed: seed).enumerated().map { i, t -> EvaluationTable in
            guard !signal else { return t }
            var rng = SeededRandom(seed: 77 &+ UInt64(i))
            let texts = rng.permutation(t.queryCount).map { t.queries[$0].text }
            let queries = zip(t.queries, texts).map { q, text in Query(id: q.id, text: text, task: q.task) }
            return try EvaluationTable(models: t.models, queries: queries, scores: t.scores, costs: t.costs, observed: t.observed)
        }
        let clients = tables.enumerated().map { i, t in
            let (fit, held) = t.holdOutRows(fraction: fraction, seed: UInt64(i))
            return InProcessClient(id: "c\(i)", train: t.subset(fit), validation: t.subset(held))
        }
        let coordinator = try FederationCoordinator(clients: clients)
        let encoder = try await coordinator.fitHashedEncoder(Fixture.encoderConfiguration)
        _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf))
        return (coordinator, clients, try await coordinator.describe())
    }

    static func pooledValidation(_ clients: [InProcessClient]) async throws -> ModelSelection.Validation {
        var parts: [(features: Matrix, table: EvaluationTable)] = []
        for c in clients { parts.append(try await c.localValidation()) }
        let table = try EvaluationTable.concatenate(parts.map(\.table))
        return (Matrix(rows: table.queryCount, cols: parts[0].features.cols, data: parts.flatMap(\.features.data)), table)
    }

    @Test func heldOutRowsAreADeterministicPartition() throws {
        let t = try SyntheticData.table(queries: 40, seed: 3)
        let (fit, held) = t.holdOutRows(fraction: 0.15, seed: 9)
        #expect(held.count == 6 && fit.count == 34 && Set(fit + held) == Set(0..<40) && fit == fit.sorted())
        #expect(t.holdOutRows(fraction: 0.15, seed: 9) == (fit, held))
        #expect(t.holdOutRows(fraction: 0.15, seed: 10).validation != held)
        #expect(t.holdOutRows(fraction: 0, seed: 9).validation.isEmpty)
        #expect(t.subset([0]).holdOutRows(fraction: 0.5, seed: 1).validation.isEmpty, "a single row is kept for fitting")
        #expect(t.holdOutRows(fraction: 0.999, seed: 1).fit.count == 1, "at least one row is kept for fitting")
    }

    @Test func bestRoundSelectionReturnsTheRoundWithTheLowestSummedBrierScore() async throws {
        let (coordinator, clients, descriptions) = try await Self.federation(sizes: [60, 70, 50])
        #expect(descriptions.map(\.validationQueries) == [18, 21, 15])
        var c = Fixture.smallMLP
        c.rounds = 5
        c.selectBestRound = true
        let (router, reports) = try await coordinator.trainMLP(c)
        let briers = try reports.map { try #require($0.validationBrier) }
        let validation = try await Self.pooledValidation(clients)
        // The clients' summed statistics are those of the pooled held-out rows (up to float32
        // rounding: the BLAS kernel, and so the last bits, depends on the batch shape and the CPU) ...
        let direct = try ValidationStatistics(predictions: router.predict(features: validation.features), table: validation.table)
        let (summed, rejected) = await coordinator.validate(try ValidationCandidate(AnyRouter(router)), descriptions: descriptions)
        #expect(rejected.isEmpty && summed.cells == direct.cells && abs(summed.squaredScoreError - direct.squaredScoreError) <= 1e-7 * direct.squaredScoreError)
        #expect(reports.allSatisfy { $0.validationCells == direct.cells })
        // ... and the router returned is the best round's.
        let chosen = try #require(try ModelSelection.brier(router, on: validation))
        #expect(abs(chosen - briers.min()!) <= 1e-7 * chosen, "\(briers)")
        // Without selection the last round is returned and nothing is validated.
        c.selectBestRound = nil
        let (last, plain) = try await coordinator.trainMLP(c)
        #expect(plain.allSatisfy { $0.validationBrier == nil })
        let lastBrier = try #require(try ModelSelection.brier(last, on: validation))
        #expect(abs(lastBrier - briers.last!) < 1e-6)
    }

    @Test func kmeansChoosesItsClusterCountOnHeldOutRowsThenPoolsThem() async throws {
        let (coordinator, clients, _) = try await Self.federation(sizes: [60, 70, 50])
        var c = FederatedKMeansConfiguration()
        c.localClusters = 6
        c.globalClusters = 3
        c.clusterCandidates = [1, 3, 8]
        c.clusterPolicy = .select
        let (router, report) = try await coordinator.trainKMeans(c)
        let briers = try #require(report.validationBrier)
        #expect(briers.keys.sorted() == ["1", "3", "8"])
        #expect(router.clusterCounts.count == 1)
        #expect(briers[String(router.clusterCounts[0])] == briers.values.min(), "\(briers) → \(router.clusterCounts)")
        #expect(router.clusterCounts == [report.globalClusters] && report.clusterCounts == router.clusterCounts)
        // The final statistics count every observed cell, held-out rows included.
        var cells = 0.0
        for client in clients {
            cells += Double(try await client.localData().table.observed.filter { $0 }.count)
            cells += Double(try await client.localValidation().table.observed.filter { $0 }.count)
        }
        #expect(router.resolutions[0].statistics.count.reduce(0, +) == cells)
        // The topics are 3 (SyntheticData): one cluster cannot tell them apart.
        #expect(briers["1"]! > briers["3"]!)
    }

    /// The safety gate's fallback comes from moments over the training and held-out rows: per
    /// model, the counts are every observed cell of both, and the means those of their union.
    @Test func costMomentsWithHeldOutPoolEveryTrainingRow() async throws {
        let (coordinator, clients, _) = try await Self.federation(sizes: [60, 70, 50])
        var all: [EvaluationTable] = []
        for client in clients {
            all.append(try await client.localData().table)
            all.append(try await client.localValidation().table)
        }
        let union = try EvaluationTable.concatenate(all)
        let models = union.modelCount
        let plain = try await coordinator.costNormalizer(models: models)
        let pooled = try await coordinator.costNormalizer(models: models, includingHeldOut: true)
        let summary = DatasetSummary(union).perModel
        let observations = try #require(pooled.observations), plainObservations = try #require(plain.observations)
        for m in 0..<models {
            #expect(observations[m] == Double(summary[m].observed))
            #expect(plainObservations[m] <= observations[m])
            let mean = try #require(pooled.scoreMean?[m]), expected = try #require(summary[m].meanScore)
            #expect(abs(mean - expected) < 1e-12)
        }
        #expect(plainObservations.reduce(0, +) < observations.reduce(0, +), "the held-out rows add cells")
    }

    /// The default policy keeps every candidate count: one global clustering each, every one's
    /// final statistics pooling all observed cells (held-out rows included), exactly the sums a
    /// single-count federation on the same centres gets; and it needs no held-out rows.
    @Test func kmeansAveragesEveryCandidateCountByDefault() async throws {
        let (coordinator, clients, _) = try await Self.federation(sizes: [60, 70, 50])
        var c = FederatedKMeansConfiguration()
        c.localClusters = 6
        c.clusterCandidates = [8, 1, 3]
        let (router, report) = try await coordinator.trainKMeans(c)
        #expect(router.clusterCounts == [1, 3, 8] && report.clusterCounts == [1, 3, 8])
        #expect(try #require(report.validationBrier).keys.sorted() == ["1", "3", "8"])
        var cells = 0.0
        for client in clients {
            cells += Double(try await client.localData().table.observed.filter { $0 }.count)
            cells += Double(try await client.localValidation().table.observed.filter { $0 }.count)
        }
        #expect(router.resolutions.allSatisfy { $0.statistics.count.reduce(0, +) == cells })
        for resolution in router.resolutions {
            let (direct, _) = try await coordinator.pooledStatistics(centroids: resolution.centroids, models: router.models.count, includeHeldOut: true)
            #expect(direct == resolution.statistics)
        }
        // Its validation candidate carries every clustering and rebuilds the same router.
        let candidate = try ValidationCandidate(AnyRouter(router))
        guard case .clusterings(let carried) = candidate else { Issue.record("expected .clusterings, got \(candidate)"); return }
        #expect(carried == router.resolutions)
        let decoded = try JSONDecoder().decode(ValidationCandidate.self, from: JSONEncoder().encode(candidate))
        #expect(try decoded.router(models: router.models) as? KMeansRouter == router)
        // Fine-tuning personalises every clustering: the client's own cells plus one pseudo-observation
        // per cell the federation observed.
        let own = try await clients[0].localData()
        let tuned = try Personalization.fineTune(router, features: own.features, table: own.table, priorStrength: 1)
        #expect(tuned.clusterCounts == router.clusterCounts)
        for (t, g) in zip(tuned.resolutions, router.resolutions) {
            let local = try ClusterStatistics(centroids: g.centroids, features: own.features, table: own.table)
            let tunedCells: Double = t.statistics.count.reduce(0, +), ownCells: Double = local.count.reduce(0, +)
            let observedCells = Double(g.statistics.count.filter { $0 > 0 }.count)
            #expect(tunedCells == ownCells + observedCells)
        }
        // Without held-out rows: every count all the same, nothing validated.
        let (plainCoordinator, _, _) = try await Self.federation(sizes: [60, 70, 50], fraction: 0)
        let (plain, plainReport) = try await plainCoordinator.trainKMeans(c)
        #expect(plain.clusterCounts == [1, 3, 8] && plainReport.validationBrier == nil)
    }

    /// `.nested` keeps the same clusterings as `.average` (same seeds: same centres, same pooled
    /// sums) and only combines them otherwise, so the federation's nested router is the averaged
    /// one's clusterings nested; its validation candidate says so over the wire.
    @Test func kmeansNestsEveryCandidateCountFromThePooledSums() async throws {
        let (coordinator, _, _) = try await Self.federation(sizes: [60, 70, 50])
        var c = FederatedKMeansConfiguration()
        c.localClusters = 6
        c.clusterCandidates = [8, 1, 3]
        let (averaged, _) = try await coordinator.trainKMeans(c)
        c.clusterPolicy = .nested
        let (nested, report) = try await coordinator.trainKMeans(c)
        #expect(nested.combination == .nested && report.clusterCounts == [1, 3, 8])
        #expect(nested == (try KMeansRouter(models: averaged.models, resolutions: averaged.resolutions, combination: .nested)))
        let candidate = try ValidationCandidate(AnyRouter(nested))
        guard case .nestedClusterings(let carried) = candidate else { Issue.record("expected .nestedClusterings, got \(candidate)"); return }
        #expect(carried == nested.resolutions)
        let decoded = try JSONDecoder().decode(ValidationCandidate.self, from: JSONEncoder().encode(candidate))
        #expect(try decoded.router(models: nested.models) as? KMeansRouter == nested)
        // Fine-tuning keeps the combination.
        #expect(try Personalization.fineTune(nested, features: Matrix(rows: 0, cols: nested.inputDimension, data: []),
                                             table: EvaluationTable(models: nested.models), priorStrength: 1).combination == .nested)
    }

    @Test func theFederatedMFRouterTrainsThroughTheJobAndItsFileLoadsAsMF() async throws {
        let tables = try Fixture.shards(sizes: [40, 50, 30])
        let transport = InProcessTransport(clients: tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1) })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mf-job-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var mf = Fixture.smallMLP.matrixFactorization(rank: 4, optimizer: AdamWConfiguration(learningRate: 1e-2, weightDecay: 1e-2))
        mf.rounds = 2
        let configuration = FederationJobConfiguration(
            federation: "mf", families: [.mf], encoder: Fixture.encoderConfiguration, mlp: Fixture.smallMLP, kmeans: FederatedKMeansConfiguration(),
            minimumOnline: 3, roundDeadlineSeconds: 30, joinTimeoutSeconds: 30, stateDirectory: dir + "/state", outputDirectory: dir + "/out", mf: mf)
        let store = try CheckpointStore(directory: dir + "/state")
        let result = try await FederationJob(configuration: configuration, transport: transport, store: store, logger: Logger(label: "test")).run(initialState: nil)
        #expect(result.mfRounds?.count == 2 && result.rounds.isEmpty)
        let pipeline = try RouterFile.load(path: try #require(result.routerFiles["mf"]))
        let router = try #require(pipeline.router.as(MFRouter.self))
        #expect(router.rank == 4 && router.factorization.network.architecture.trunk == .linear)
        // The clients receive the MF fine-tuning settings with the routers.
        #expect(await transport.outcome?.mfFineTuning == mf.local)
        // A checkpoint that records MF rounds without the MF state is refused.
        var state = try #require(try store.load())
        state.mf = nil
        #expect(throws: FederationError.self) { try state.validate() }
        // A job whose mf settings are not one linear layer is refused before it starts.
        var bad = configuration
        bad.mf?.trunk = .gelu
        #expect { try bad.validate(clients: 3) } throws: { "\($0)".contains("one linear trunk layer") }
    }

    @Test func theFederatedSafeRouterIsBestSingleWithoutSignalAndTheRouterWithIt() async throws {
        let lambdas = FrontierMetrics.geomspace(1e-2, 1e5, count: 12)
        var agreement: [Bool: Double] = [:]
        var kept: [Bool: [Bool]] = [:]
        for signal in [true, false] {
            let (coordinator, clients, descriptions) = try await Self.federation(sizes: [200, 220, 180], fraction: 0.4, signal: signal)
            var c = FederatedKMeansConfiguration()
            c.localClusters = 6
            c.globalClusters = 3
            let (router, _) = try await coordinator.trainKMeans(c)
            let normalizer = try await coordinator.costNormalizer(models: router.models.count)
            let gate = try #require(try await coordinator.calibrateSafetyGate(AnyRouter(router), normalizer: normalizer, lambdas: lambdas,
                                                                               descriptions: descriptions))
            #expect(gate.validationQueries == 240)
            // Best-single@λ comes from the pooled means: the generalist at small λ, a cheap model at large λ.
            #expect(gate.fallback.first == 3 && gate.fallback.last != 3)
            // Every band the router keeps has a non-negative estimated advantage.
            for (use, d) in zip(gate.useRouter, gate.meanDifference) where use { #expect((d ?? -1) >= 0) }
            // How often the safe router sends a query where best-single@λ would, over λ and queries.
            let x = try await Self.pooledValidation(clients).features
            var safe = try router.predict(features: x)
            safe.safety = gate
            let same = lambdas.enumerated().reduce(0) { n, band in n + safe.choose(lambda: band.element).filter { $0 == gate.fallback[band.offset] }.count }
            agreement[signal] = Double(same) / Double(lambdas.count * x.rows)
            kept[signal] = gate.useRouter
        }
        // Without signal the router's cells are the per-model means plus noise: it agrees with
        // best-single@λ except near λ where two models' utilities cross, and the gate keeps such a
        // band only where the held-out rows put the other model its margin of standard errors ahead.
        #expect(agreement[false]! >= 0.9, "without signal the safe router is best-single@λ: \(agreement)")
        #expect(agreement[true]! <= 0.8, "with signal it routes: \(agreement)")
        #expect(kept[true]!.prefix(4).allSatisfy { $0 }, "with signal the router keeps the small-λ bands: \(kept[true]!)")
    }

    /// A network federation's job with `safety` writes router files that carry a gate: the one the
    /// coordinator calibrates on the K-Means-Router trained without the held-out rows (which the
    /// saved router then holds), with best-single@λ from every training row; the summary names the
    /// fallback bands and the safe router's validation AUC. Without `safety` there is no gate.
    @Test func aSafeFederationJobWritesTheGateIntoEachRouterFile() async throws {
        let (_, clients, descriptions) = try await Self.federation(sizes: [200, 220, 180], fraction: 0.4)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("safe-job-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var kmeans = FederatedKMeansConfiguration()
        kmeans.localClusters = 6
        kmeans.globalClusters = 3
        var mlp = Fixture.smallMLP
        mlp.rounds = 2
        let validation = dir + "/validation.jsonl"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // The coordinator's fully labelled table (its loader sorts the model columns; the job aligns them).
        try NativeFormat.write(try SyntheticData.table(queries: 120, topics: 3, seed: 99), to: validation)
        func job(_ name: String, safety: FederatedSafety?) async throws -> FederationJob.Result {
            let transport = InProcessTransport(clients: clients)
            let configuration = FederationJobConfiguration(
                federation: name, families: [.kmeans, .mlp], encoder: Fixture.encoderConfiguration, mlp: mlp, kmeans: kmeans,
                minimumOnline: 3, roundDeadlineSeconds: 30, joinTimeoutSeconds: 30, stateDirectory: dir + "/\(name)/state",
                outputDirectory: dir + "/\(name)/out", validation: validation, safety: safety)
            return try await FederationJob(configuration: configuration, transport: transport, store: try CheckpointStore(directory: dir + "/\(name)/state"),
                                           logger: Logger(label: "test")).run(initialState: nil)
        }
        let safe = try await job("safe", safety: FederatedSafety(bands: 12))
        let plain = try await job("plain", safety: nil)
        #expect(plain.safetyFallbackBands == nil && plain.validationAUC.keys.sorted() == ["kmeans", "mlp"])
        #expect(try RouterFile.load(path: try #require(plain.routerFiles["kmeans"])).safety == nil)
        #expect(safe.validationAUC.keys.sorted() == ["kmeans", "kmeans (safe)", "mlp", "mlp (safe)"])
        // The saved K-Means is the same router with or without a gate (the held-out rows join it either way).
        let saved = try RouterFile.load(path: try #require(safe.routerFiles["kmeans"]))
        #expect(saved.router.as(KMeansRouter.self) == (try RouterFile.load(path: try #require(plain.routerFiles["kmeans"]))).router.as(KMeansRouter.self))
        #expect(safe.validationAUC["kmeans"] == plain.validationAUC["kmeans"])
        // Its gate is the coordinator's, calibrated on the router without the held-out rows.
        let coordinator = try FederationCoordinator(clients: clients)
        let (unpooled, _) = try await coordinator.trainKMeans(kmeans, descriptions: descriptions, poolHeldOut: false)
        let normalizer = try await coordinator.costNormalizer(models: unpooled.models.count, includingHeldOut: true)
        let expected = try #require(try await coordinator.calibrateSafetyGate(AnyRouter(unpooled), normalizer: normalizer,
                                                                              lambdas: FederatedSafety(bands: 12).lambdas, descriptions: descriptions))
        let gate = try #require(saved.safety)
        #expect(gate == expected && gate.lambdas.count == 12 && gate.standardErrors == SafetyGate.weightedStandardErrors)
        #expect(safe.safetyFallbackBands?["kmeans"] == gate.useRouter.filter { !$0 }.count)
        #expect(try RouterFile.load(path: try #require(safe.routerFiles["mlp"])).safety != nil && safe.safetyFallbackBands?["mlp"] != nil)
        // Settings that cannot calibrate a gate are refused before the job starts.
        #expect(FederatedSafety(bands: 0).problem != nil && FederatedSafety(standardErrors: -1).problem != nil && FederatedSafety().problem == nil)
    }

    @Test func absurdValidationStatisticsAreRejectedNamingTheClient() async throws {
        let good = ValidationStatistics(bands: 2)
        #expect(good.problem(bands: 2, maxQueries: 10) == nil)
        var s = good
        s.cells = -1
        #expect(s.problem(bands: 2, maxQueries: 10) != nil)
        s = good; s.cells = 3; s.queries = 2; s.squaredScoreError = 4
        #expect(s.problem(bands: 2, maxQueries: 10)?.contains("squared error") == true)
        s = good; s.cells = 30; s.queries = 20
        #expect(s.problem(bands: 2, maxQueries: 10) != nil, "more queries than the client holds out")
        s = good; s.differenceSum = [.nan, 0]
        #expect(s.problem(bands: 2, maxQueries: 10) != nil)
        #expect(good.problem(bands: 3, maxQueries: 10) != nil)

        // A client that answers validation with absurd sums is left out of the sum, by name.
        let (coordinator, clients, descriptions) = try await Self.federation(sizes: [40, 40])
        struct Liar: FederatedClient {
            let inner: InProcessClient
            var id: String { inner.id }
            func handle(_ request: FederatedRequest) async throws -> FederatedReply {
                guard case .validate = request else { return try await inner.handle(request) }
                var s = ValidationStatistics()
                s.cells = 1e12; s.queries = 1e12; s.squaredScoreError = 0
                return .validation(s)
            }
        }
        let lying = try FederationCoordinator(clients: [clients[0], Liar(inner: clients[1])])
        var c = FederatedKMeansConfiguration()
        c.localClusters = 3
        c.globalClusters = 2
        let (router, _) = try await coordinator.trainKMeans(c)
        let (sum, rejected) = await lying.validate(try ValidationCandidate(AnyRouter(router)), descriptions: descriptions)
        let honest = try await clients[0].localValidation().table.queryCount
        #expect(rejected.keys.sorted() == ["c1"] && sum.queries == Double(honest))
    }
}
