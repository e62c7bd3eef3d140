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
                                                              candidates: [1, 3, 12], validation: held)
        #expect(kmeansBrier.keys.sorted() == [1, 3, 12] && kmeansBrier[kmeans.centroids.rows] == kmeansBrier.values.min())
        #expect(kmeansBrier[1]! > kmeansBrier[3]!, "three topics need more than one cluster: \(kmeansBrier)")
        let cells = Double(fit.table.observed.filter { $0 }.count + held.table.observed.filter { $0 }.count)
        #expect(kmeans.statistics.count.reduce(0, +) == cells, "the held-out rows join the chosen router's statistics")
        let (knn, knnBrier) = try ModelSelection.knn(features: fit.features, table: fit.table, candidates: [1, 10, 60], validation: held)
        #expect(knnBrier[knn.k] == knnBrier.values.min() && knn.reference.rows == fit.table.queryCount + held.table.queryCount)
        // Without held-out cells nothing is chosen: the configured count on the training rows.
        let empty = (features: Matrix(rows: 0, cols: fit.features.cols), table: EvaluationTable(models: fit.table.models))
        #expect(try ModelSelection.kmeans(features: fit.features, table: fit.table, configuration: KMeansConfiguration(clusters: 5),
                                          candidates: [1, 3, 12], validation: empty).router.centroids.rows == 5)
        // Through the training configuration, as `train --safe --neighbor-candidates` uses it.
        var c = RouterTrainingConfiguration()
        c.knnCandidates = [1, 10, 60]
        let trained = try c.train(.knn, features: fit.features, table: fit.table, seed: 0, validation: held)
        #expect(trained.as(KNNRouter.self)?.k == knn.k)
        #expect(try c.train(.knn, features: fit.features, table: fit.table, seed: 0).as(KNNRouter.self)?.k == c.knnNeighbors)
    }
}
