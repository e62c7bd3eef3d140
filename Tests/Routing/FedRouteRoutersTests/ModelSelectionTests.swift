import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
@testable import FedRouteRouters
import Testing

/// Issue 16, item 2, centralized: best epoch, cluster count and k chosen on held-out rows.
@Suite struct ModelSelectionTests {
    static func data() throws -> (fit: ModelSelection.Validation, held: ModelSelection.Validation) {
        let table = try SyntheticData.sparseShards(sizes: [300], seed: 4, maskSeed: 8)[0]
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 48, wordNGrams: 1...1, charNGrams: nil))
        encoder.fit(table.queries.map(\.text))
        let x = encoder.encode(table.queries.map(\.text))
        let (fit, held) = table.holdOutRows(fraction: 0.3, seed: 2)
        return ((x.gatherRows(fit), table.subset(fit)), (x.gatherRows(held), table.subset(held)))
    }

    @Test func theBestEpochIsTheOneWithTheLowestHeldOutBrierScore() throws {
        let (fit, held) = try Self.data()
        var c = MLPTrainingConfiguration()
        c.hiddenDimension = 16; c.epochs = 8; c.batchSize = 32; c.dropout = 0; c.seed = 3
        c.optimizer.learningRate = 3e-2
        let selected = try MLPTrainer.train(features: fit.features, table: fit.table, configuration: c, validation: held)
        // Training for e epochs replays the first e epochs of the longer run (same seed, same batches).
        var perEpoch: [Double] = []
        for e in 1...8 {
            var short = c
            short.epochs = e
            perEpoch.append(try #require(try ModelSelection.brier(MLPTrainer.train(features: fit.features, table: fit.table, configuration: short), on: held)))
        }
        let chosen = try #require(try ModelSelection.brier(selected, on: held))
        #expect(abs(chosen - perEpoch.min()!) < 1e-12, "\(perEpoch)")
    }

    @Test func kmeansAndKNNChooseTheirCountOnHeldOutRowsThenUseThem() throws {
        let (fit, held) = try Self.data()
        let (kmeans, kmeansBrier) = try ModelSelection.kmeans(features: fit.features, table: fit.table, configuration: KMeansConfiguration(clusters: 5),
                                                              candidates: [1, 3, 12], policy: .select, validation: held)
        #expect(kmeans.clusterCounts.count == 1)
        #expect(kmeansBrier.keys.sorted() == [1, 3, 12] && kmeansBrier[kmeans.clusterCounts[0]] == kmeansBrier.values.min())
        #expect(kmeansBrier[1]! > kmeansBrier[3]!, "three topics need more than one cluster: \(kmeansBrier)")
        let cells = Double(fit.table.observed.filter { $0 }.count + held.table.observed.filter { $0 }.count)
        #expect(kmeans.resolutions[0].statistics.count.reduce(0, +) == cells, "the held-out rows join the chosen router's statistics")
        let (knn, knnBrier) = try ModelSelection.knn(features: fit.features, table: fit.table, candidates: [1, 10, 60], validation: held)
        #expect(knnBrier[knn.k] == knnBrier.values.min() && knn.reference.rows == fit.table.queryCount + held.table.queryCount)
        // Without held-out cells nothing is chosen: the configured count on the training rows.
        let empty = (features: Matrix(rows: 0, cols: fit.features.cols), table: EvaluationTable(models: fit.table.models))
        #expect(try ModelSelection.kmeans(features: fit.features, table: fit.table, configuration: KMeansConfiguration(clusters: 5),
                                          candidates: [1, 3, 12], policy: .select, validation: empty).router.clusterCounts == [5])
        // Through the training configuration, as `train --safe --neighbor-candidates` uses it.
        var c = RouterTrainingConfiguration()
        c.knnCandidates = [1, 10, 60]
        let trained = try c.train(.knn, features: fit.features, table: fit.table, seed: 0, validation: held)
        #expect(trained.as(KNNRouter.self)?.k == knn.k)
        #expect(try c.train(.knn, features: fit.features, table: fit.table, seed: 0).as(KNNRouter.self)?.k == c.knnNeighbors)
    }
}

extension ModelSelectionTests {
    /// `ClusterCountPolicy.average` (the default) keeps one clustering per candidate count, each
    /// exactly the router that count trains alone, with the held-out rows pooled into every one;
    /// its estimate is their mean. Without held-out rows it averages all the same.
    @Test func kmeansAveragesEveryCandidateCount() throws {
        let (fit, held) = try Self.data()
        let configuration = KMeansConfiguration(clusters: 5)
        let (averaged, brier) = try ModelSelection.kmeans(features: fit.features, table: fit.table, configuration: configuration,
                                                          candidates: [12, 1, 3, 3], validation: held)
        #expect(averaged.clusterCounts == [1, 3, 12] && brier.keys.sorted() == [1, 3, 12])
        let cells = Double(fit.table.observed.filter { $0 }.count + held.table.observed.filter { $0 }.count)
        var singles: [KMeansRouter] = []
        for (resolution, k) in zip(averaged.resolutions, [1, 3, 12]) {
            var c = configuration
            c.clusters = k
            let alone = try KMeansRouter.train(features: fit.features, table: fit.table, configuration: c)
            #expect(resolution.centroids == alone.resolutions[0].centroids)
            #expect(resolution.statistics.count.reduce(0, +) == cells, "the held-out rows join every clustering")
            singles.append(try KMeansRouter(models: averaged.models, resolutions: [resolution]))
        }
        let p = try averaged.predict(features: held.features)
        let parts = try singles.map { try $0.predict(features: held.features) }
        for i in p.score.indices {
            let have = parts.filter { $0.available[i] }
            #expect(p.available[i] == !have.isEmpty)
            guard !have.isEmpty else { continue }
            let n = Double(have.count)
            #expect(abs(p.score[i] - have.map { $0.score[i] }.reduce(0, +) / n) < 1e-12)
            #expect(abs(p.cost[i] - have.map { $0.cost[i] }.reduce(0, +) / n) < 1e-12)
        }
        // No validation rows: still every count, on the training rows.
        let (plain, none) = try ModelSelection.kmeans(features: fit.features, table: fit.table, configuration: configuration, candidates: [1, 3, 12], validation: nil)
        #expect(plain.clusterCounts == [1, 3, 12] && none.isEmpty)
        // Through the training configuration, as `train --cluster-candidates` uses it.
        var c = RouterTrainingConfiguration()
        c.kmeansCandidates = [1, 3, 12]
        #expect(try c.train(.kmeans, features: fit.features, table: fit.table, seed: 0).as(KMeansRouter.self)?.clusterCounts == [1, 3, 12])
        c.kmeansPolicy = .select
        #expect(try c.train(.kmeans, features: fit.features, table: fit.table, seed: 0, validation: held).as(KMeansRouter.self)?.clusterCounts.count == 1)
    }
}
