import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
@testable import FedRouteSimulation
import Foundation
import Testing

@Suite struct PartitionTests {
    @Test func partitionFollowsTheProtocol() throws {
        let table = try SyntheticData.table(queries: 400, seed: 3)
        var c = PartitionConfiguration()
        c.clients = 6
        c.observedPerQuery = 2
        let shards = try FederatedPartition.make(table, configuration: c)
        #expect(shards.count == 6)
        // Every query lands in exactly one client, train or test.
        let ids = shards.flatMap { $0.train.queries.map(\.id) + $0.test.queries.map(\.id) }
        #expect(ids.count == 400 && Set(ids).count == 400)
        for s in shards {
            let n = s.train.queryCount + s.test.queryCount
            #expect(s.train.queryCount == Int((Double(n) * 0.75).rounded(.down)))
            #expect((0..<s.train.queryCount).allSatisfy { s.train.observedCount(row: $0) == 2 })
            #expect((0..<s.test.queryCount).allSatisfy { s.test.isFullyObserved(row: $0) })
            #expect(abs(s.modelPreference.reduce(0, +) - 1) < 1e-9)
        }
        #expect(try FederatedPartition.make(table, configuration: c) == shards)
        c.seed = 1
        #expect(try FederatedPartition.make(table, configuration: c) != shards)
        // Default k = max(1, ⌊0.1·M⌋) = 1 for 4 models.
        c.observedPerQuery = nil
        let sparse = try FederatedPartition.make(table, configuration: c)
        #expect(sparse.allSatisfy { s in (0..<s.train.queryCount).allSatisfy { s.train.observedCount(row: $0) == 1 } })
    }

    @Test func smallAlphaConcentratesEachTaskOnFewClients() throws {
        let table = try SyntheticData.table(queries: 600, seed: 5)
        func meanTopShare(_ alpha: Double) throws -> Double {
            var c = PartitionConfiguration()
            c.taskAlpha = alpha
            let shards = try FederatedPartition.make(table, configuration: c)
            let tasks = Set(table.queries.map(\.task))
            return tasks.map { task in
                let perClient = shards.map { s in (s.train.queries + s.test.queries).filter { $0.task == task }.count }
                return Double(perClient.max()!) / Double(perClient.reduce(0, +))
            }.reduce(0, +) / Double(tasks.count)
        }
        #expect(try meanTopShare(0.03) > 0.9)
        #expect(try meanTopShare(100) < 0.3)
    }

    @Test func invalidSettingsAreRejected() throws {
        let table = try SyntheticData.table(queries: 20, seed: 1)
        var c = PartitionConfiguration()
        c.taskAlpha = 0
        #expect(throws: DataError.self) { try FederatedPartition.make(table, configuration: c) }
        c = PartitionConfiguration()
        c.localTestFraction = 1
        #expect(throws: DataError.self) { try FederatedPartition.make(table, configuration: c) }
    }
}

@Suite struct SimulationTests {
    static var configuration: SimulationConfiguration {
        var c = SimulationConfiguration()
        c.partition.clients = 4
        c.partition.taskAlpha = 0.5
        c.encoder = .hashed(HashedTFIDFEncoder.Configuration(dimension: 64, wordNGrams: 1...1, charNGrams: nil))
        c.mlp.hiddenDimension = 16
        c.mlp.rounds = 10
        c.mlp.participation = 0.75
        c.mlp.local.batchSize = 16
        c.mlp.local.optimizer.learningRate = 1e-2
        c.kmeans.localClusters = 4
        c.kmeans.globalClusters = 6
        c.kmeans.restarts = 2
        c.lambdas = FrontierMetrics.geomspace(1e-2, 1e5, count: 30)
        c.setSeed(4)
        return c
    }

    @Test func sameSeedGivesBitIdenticalResults() async throws {
        let table = try SyntheticData.table(queries: 500, seed: 2)
        let a = try await Simulation.run(table, configuration: Self.configuration)
        let b = try await Simulation.run(table, configuration: Self.configuration)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let ja = try encoder.encode(a), jb = try encoder.encode(b)
        #expect(ja == jb)
        var other = Self.configuration
        other.setSeed(5)
        let c = try await Simulation.run(table, configuration: other)
        #expect(try encoder.encode(c) != ja)
    }

    /// Clients run at once (federated rounds, local training, evaluation) give the same numbers as one at a time.
    @Test func parallelClientsGiveBitIdenticalResults() async throws {
        let table = try SyntheticData.table(queries: 500, seed: 2)
        var c = Self.configuration
        c.families = [.mlp, .kmeans]
        let one = try await Simulation.run(table, configuration: c, parallelClients: 1)
        let three = try await Simulation.run(table, configuration: c, parallelClients: 3)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(one) == encoder.encode(three))
        #expect(one.families.allSatisfy { $0.clients.count == 4 })
    }

    @Test func heldOutRowsSelectAndGateAndKNNRunsAsABaseline() async throws {
        let table = try SyntheticData.table(queries: 700, seed: 7)
        var c = Self.configuration
        c.families = [.kmeans, .knn]
        c.kmeans.clusterCandidates = [1, 6]
        let result = try await Simulation.run(table, configuration: c)
        // Each client held out 15 % of its training rows; nothing trained on them.
        for (shard, summary) in zip(result.shards, result.clients) {
            let held = try #require(summary.validationQueries)
            #expect(held == Int((Double(shard.train.queryCount) * 0.15).rounded()) && summary.trainQueries + held == shard.train.queryCount)
        }
        #expect(result.heldOut.map(\.queryCount) == result.clients.map(\.validationQueries!))
        let kmeans = try #require(result.families.first { $0.family == .kmeans })
        #expect(kmeans.kmeans?.validationBrier?.keys.sorted() == ["1", "6"] && kmeans.kmeans?.clusterCounts == [1, 6])
        #expect(kmeans.safetyGate != nil && kmeans.global.auc(of: Simulation.Name.federatedSafe) != nil)
        // kNN: centralized and client-local routers only, on the same test sets.
        let knn = try #require(result.families.first { $0.family == .knn })
        let names = knn.global.entries.filter { $0.role == .router }.map(\.name)
        #expect(names.contains(Simulation.Name.centralized) && !names.contains(Simulation.Name.federated) && names.contains { $0.hasPrefix("local:") })
        let reports = knn.clients.compactMap(\.report)
        #expect(knn.federatedPipeline == nil && !reports.isEmpty && reports.allSatisfy { $0.auc(of: Simulation.Name.centralized) != nil })
        let text = SimulationSummary([result]).text
        #expect(text.contains("[knn] global test set") && text.contains("— (no federated training)"))
        // A family without a federated router prints no federated gap or margin (not "nan ± nan").
        #expect(!text.contains("nan"))
        // Without held-out rows nothing is selected or gated.
        c.validationFraction = 0
        c.families = [.kmeans]
        let plain = try await Simulation.run(table, configuration: c)
        #expect(plain.families[0].kmeans?.validationBrier == nil && plain.families[0].safetyGate == nil && plain.clients.allSatisfy { $0.validationQueries == 0 })
    }

    /// At scale, only a seeded sample of clients gets the costly reporting: local routers scored on
    /// the global test set, and own-test frontier curves (with a report folder); every client keeps
    /// its own-test figures, and the summary says the local rows are a sample.
    @Test func manyClientsReportASampleOfLocalRoutersAndCurves() async throws {
        let table = try SyntheticData.table(queries: 600, seed: 3)
        var c = Self.configuration
        c.partition.clients = 12
        c.mlp.rounds = 2
        c.families = [.kmeans, .knn]
        c.localGlobalClients = 3
        c.clientCurves = 2
        let result = try await Simulation.run(table, configuration: c)
        for family in result.families {
            let locals = family.global.entries.filter { $0.name.hasPrefix(Simulation.Name.local + ":") }
            #expect((1...3).contains(locals.count) && family.localsScoredGlobally == 3)
            let full = family.clients.filter { $0.curvesOmitted != true && $0.report != nil }
            let trimmed = family.clients.filter { $0.curvesOmitted == true }
            #expect(full.count <= 2 && full.count + trimmed.count == family.clients.filter { $0.report != nil }.count)
            #expect(trimmed.allSatisfy { e in e.report!.entries.allSatisfy { $0.points.isEmpty && $0.auc.isFinite } })
            #expect(full.allSatisfy { e in e.report!.entries.allSatisfy { !$0.points.isEmpty } })
        }
        // The same clients are sampled for every family; the summary labels the sample.
        let names = result.families.map { Set($0.global.entries.map(\.name).filter { $0.hasPrefix("local:") }) }
        #expect(names[0].union(names[1]).count <= 3)
        #expect(SimulationSummary([result]).text.contains("a seeded sample of 3 clients' local routers"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-sample-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try SimulationWriter.write(result, to: directory)
        let clientFolders = Set(written.filter { $0.contains("/client-") }.map { ($0 as NSString).deletingLastPathComponent })
        #expect(clientFolders.count == result.families.reduce(0) { $0 + $1.clients.filter { $0.curvesOmitted != true && $0.report != nil }.count })
        // Below the limits every client is scored and keeps its curves.
        #expect(Simulation.clientSample(clients: 5, limit: 5, seed: 1, purpose: 2) == Set(0..<5))
        #expect(Simulation.clientSample(clients: 5, limit: nil, seed: 1, purpose: 2) == Set(0..<5))
        let sample = Simulation.clientSample(clients: 100, limit: 7, seed: 1, purpose: 2)
        #expect(sample.count == 7 && sample == Simulation.clientSample(clients: 100, limit: 7, seed: 1, purpose: 2))
        #expect(sample != Simulation.clientSample(clients: 100, limit: 7, seed: 2, purpose: 2))
    }

    @Test func federationBeatsClientsThatEachSeeFewModels() async throws {
        let table = try SyntheticData.table(queries: 900, seed: 7)
        var c = Self.configuration
        c.partition.modelAlpha = 0.2   // each client observes mostly one or two models
        let result = try await Simulation.run(table, configuration: c)
        #expect(result.clients.count == 4 && result.families.count == 3)
        for family in result.families {
            let names = family.global.entries.filter { $0.role == .router }.map(\.name)
            #expect(names.contains(Simulation.Name.federated) && names.contains(Simulation.Name.centralized))
            let fed = family.global.entries.first { $0.name == Simulation.Name.federated }!.auc
            let locals = family.global.entries.filter { $0.name.hasPrefix("local:") }.map(\.auc)
            #expect(!locals.isEmpty && locals.allSatisfy { fed > $0 }, "\(family.family): federated \(fed) vs local \(locals)")
            for client in family.clients where client.report != nil {
                let routers = Set(client.report!.entries.map(\.name))
                #expect(routers.isSuperset(of: [Simulation.Name.federated, Simulation.Name.local, Simulation.Name.adaptive, Simulation.Name.fineTuned]))
            }
        }
        let summary = SimulationSummary([result])
        #expect(summary.families.allSatisfy { $0.seedsFederatedBeatsEveryLocal == 1 })
        // The summary carries the baselines a router must beat and each router's margins over them.
        for (f, family) in zip(summary.families, result.families) {
            let report = family.global
            let fed = try #require(report.auc(of: Simulation.Name.federated))
            let best = try #require(report.auc(of: EvaluationReport.Reference.bestSingleAtLambda))
            let zero = try #require(report.auc(of: EvaluationReport.Reference.zeroRouter))
            #expect(f.bestSingle.values == [best] && f.zeroRouter.values == [zero])
            #expect(f.federatedMargins.overBestSingle.values == [fed - best] && f.federatedMargins.overZeroRouter.values == [zero].map { fed - $0 })
            let own = family.clients.compactMap(\.report).compactMap { r -> Double? in
                guard let a = r.auc(of: Simulation.Name.local), let b = r.auc(of: EvaluationReport.Reference.bestSingleAtLambda) else { return nil }
                return a - b
            }
            #expect(abs(f.ownLocalMargins.overBestSingle.mean - own.reduce(0, +) / Double(own.count)) < 1e-12)
            #expect(summary.text.contains("minus best-single@λ | minus zero-router"))
        }
        #expect(ReportWriter.table(result.families[0].global).contains("− best-single@λ"))
        // Writing produces the JSON, SVG and text reports.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-sim-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try SimulationWriter.write(result, to: dir)
        #expect(files.contains { $0.hasSuffix("mlp/global/frontier.svg") } && files.contains { $0.hasSuffix("kmeans/client-0/report.json") })
        // The saved federated router predicts exactly what the simulation evaluated.
        let saved = try RouterFile.load(path: (dir as NSString).appendingPathComponent("mlp/federated-router.safetensors"))
        #expect(saved == result.families[0].federatedPipeline)
        #expect(try SimulationWriter.write(summary, to: dir).count == 2)
    }
}
