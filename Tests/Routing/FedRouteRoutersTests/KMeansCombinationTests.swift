import FedRouteData
import FedRouteNumerics
@testable import FedRouteRouters
import Foundation
import Testing

/// `KMeansCombination.nested`: finer clusterings' cells shrink towards the coarser estimate by the
/// documented amount, stand aside where they hold nothing new, and survive a router file.
@Suite struct KMeansCombinationTests {
    /// One-dimensional: a coarse clustering of one cluster at 0 holding 200 grades of model 0
    /// (mean 0.5, cost 0.01) and a fine one of two clusters at −1 and +1 holding 100 each, means
    /// 0.9 and 0.1 (costs 0.02 and 0).
    static func twoLevels(fineScores: (Double, Double) = (90, 10)) throws -> [KMeansResolution] {
        var coarse = ClusterStatistics(clusters: 1, models: 1)
        (coarse.count, coarse.scoreSum, coarse.costSum) = ([200], [fineScores.0 + fineScores.1], [2])
        var fine = ClusterStatistics(clusters: 2, models: 1)
        (fine.count, fine.scoreSum, fine.costSum) = ([100, 100], [fineScores.0, fineScores.1], [2, 0])
        // Fine first: the router orders its clusterings by count itself.
        return [KMeansResolution(centroids: Matrix(rows: 2, cols: 1, data: [-1, 1]), statistics: fine),
                KMeansResolution(centroids: Matrix(rows: 1, cols: 1, data: [0]), statistics: coarse)]
    }

    /// The coarse cell is one group (raw mean 0.5). At the fine centres it says 0.5, so
    /// d = ±0.4, Σ n d² = 100·0.16·2 = 32, G σ² = 2·0.25, Σ n = 200: τ² = 31.5/200 = 0.1575 and
    /// κ = 0.25/0.1575; the cell at −1 says (90 + 0.5κ)/(100 + κ) ≈ 0.8938. The average of the two
    /// clusterings says about 0.70: the coarse one, which cannot tell the two apart, has half the say.
    @Test func aFineCellMovesTowardsTheCoarseEstimateByTheDocumentedAmount() throws {
        let resolutions = try Self.twoLevels()
        let nested = try KMeansRouter(models: ["m"], resolutions: resolutions, combination: .nested)
        let kappa = 0.25 / 0.1575
        #expect(abs(nested.nestedStrength[1][0] - kappa) < 1e-12 && nested.nestedOrder == [1, 0])
        let p = try nested.predict(features: Matrix(rows: 2, cols: 1, data: [-1.2, 0.9]))
        #expect(abs(p.score[0] - (90 + 0.5 * kappa) / (100 + kappa)) < 1e-12 && abs(p.score[0] - 0.8938) < 1e-4)
        #expect(abs(p.score[1] - (10 + 0.5 * kappa) / (100 + kappa)) < 1e-12)
        #expect(abs(p.cost[0] - (2 + 0.01 * kappa) / (100 + kappa)) < 1e-12, "costs follow the same weights")
        #expect(p.available == [true, true])
        let averaged = try KMeansRouter(models: ["m"], resolutions: resolutions).predict(features: Matrix(rows: 1, cols: 1, data: [-1]))
        #expect(abs(averaged.score[0] - 0.698) < 0.002, "\(averaged.score[0])")
        // One clustering: both combinations are the plain router.
        let single = [resolutions[0]]
        #expect(try KMeansRouter(models: ["m"], resolutions: single, combination: .nested).predict(features: Matrix(rows: 1, cols: 1, data: [-1])).score
                == KMeansRouter(models: ["m"], resolutions: single).predict(features: Matrix(rows: 1, cols: 1, data: [-1])).score)
    }

    /// Fine cells that differ from the coarse estimate only by noise (means 0.52 and 0.48 from 100
    /// grades: Σ n d² = 0.08 < G σ² = 0.5, τ² = 0) add nothing: the coarse estimate stands. Raw
    /// means (`ScoreShrinkage.none`) let the finest cell that observed the model decide.
    @Test func noiseAroundTheCoarseEstimateLeavesItStanding() throws {
        let resolutions = try Self.twoLevels(fineScores: (52, 48))
        let nested = try KMeansRouter(models: ["m"], resolutions: resolutions, combination: .nested)
        #expect(nested.nestedStrength[1][0].isInfinite)
        let x = Matrix(rows: 2, cols: 1, data: [-1, 1])
        #expect(try nested.predict(features: x).score == [0.5, 0.5])
        let raw = try KMeansRouter(models: ["m"], resolutions: resolutions, shrinkage: .none, combination: .nested)
        #expect(try raw.predict(features: x).score == [0.52, 0.48])
    }

    /// A model the fine cell never observed keeps the coarse estimate; a model no clustering
    /// observed in the query's clusters stays unavailable, whatever it holds elsewhere.
    @Test func unobservedCellsAddNothingAndInventNothing() throws {
        var coarse = ClusterStatistics(clusters: 2, models: 2)
        // Coarse cluster 0 (at −1) observed both models, cluster 1 (at +1) only model 0.
        (coarse.count, coarse.scoreSum, coarse.costSum) = ([10, 4, 10, 0], [7, 1, 3, 0], [1, 1, 1, 0])
        var fine = ClusterStatistics(clusters: 3, models: 2)
        // Fine cluster 0 (at −1.5) observed model 0 only; cluster 2 (at +1.5) model 0 only.
        (fine.count, fine.scoreSum, fine.costSum) = ([6, 0, 4, 4, 10, 0], [5, 0, 2, 1, 3, 0], [0.6, 0, 0.4, 1, 1, 0])
        let router = try KMeansRouter(models: ["a", "b"], resolutions: [
            KMeansResolution(centroids: Matrix(rows: 2, cols: 1, data: [-1, 1]), statistics: coarse),
            KMeansResolution(centroids: Matrix(rows: 3, cols: 1, data: [-1.5, -0.5, 1.5]), statistics: fine),
        ], combination: .nested)
        let p = try router.predict(features: Matrix(rows: 2, cols: 1, data: [-1.6, 1.6]))
        let coarseOnly = try KMeansRouter(models: ["a", "b"], resolutions: [router.resolutions[0]]).predict(features: Matrix(rows: 1, cols: 1, data: [-1.6]))
        #expect(p.available == [true, true, true, false])
        #expect(p.score[1] == coarseOnly.score[1], "model b: nothing in the fine cell, the coarse estimate stands")
    }

    /// The file records the combination; a file without the key (every file before it) averages,
    /// and a bogus value is a clear error naming the key.
    @Test func theFileKeepsTheCombination() throws {
        let router = try KMeansRouter(models: ["m"], resolutions: try Self.twoLevels(), combination: .nested)
        var contents = RouterFileContents(path: "nested-test.safetensors")
        try router.store(in: &contents)
        #expect(contents.metadata["kmeans.combination"] == "nested")
        let loaded = try KMeansRouter.load(from: contents, models: ["m"])
        let x = Matrix(rows: 3, cols: 1, data: [-1, 0.2, 1])
        #expect(loaded.combination == .nested)
        #expect(zip(try loaded.predict(features: x).score, try router.predict(features: x).score).allSatisfy { abs($0 - $1) < 1e-6 })
        contents.metadata["kmeans.combination"] = nil
        #expect(try KMeansRouter.load(from: contents, models: ["m"]).combination == .average)
        contents.metadata["kmeans.combination"] = "deep"
        do { _ = try KMeansRouter.load(from: contents, models: ["m"]); Issue.record("expected an error") } catch let e as RouterFile.LoadError {
            #expect(e.message.contains("kmeans.combination"), "\(e.message)")
        }
        // Growth keeps it.
        #expect(try router.addingModels(["new"]).combination == .nested)
        #expect(try router.adding(router.resolutions.map(\.statistics)).combination == .nested)
    }

    /// `ModelSelection.kmeans` with `.nested` keeps every count and nests them.
    @Test func modelSelectionNestsEveryCount() throws {
        let table = try SyntheticData.table(queries: 120, seed: 5)
        let x = Matrix(rows: table.queryCount, cols: 2, data: (0..<(2 * table.queryCount)).map { Float(($0 * 7919) % 101) / 101 })
        let router = try ModelSelection.kmeans(features: x, table: table, configuration: KMeansConfiguration(clusters: 3),
                                               candidates: [9, 2, 5], policy: .nested, validation: nil).router
        #expect(router.clusterCounts == [2, 5, 9] && router.combination == .nested)
        let p = try router.predict(features: x)
        #expect(p.score.allSatisfy { $0 >= 0 && $0 <= 1 && $0.isFinite })
    }
}
