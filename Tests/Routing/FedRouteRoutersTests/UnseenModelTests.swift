import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
@testable import FedRouteRouters
import Foundation
import Testing

/// Issue 16 item 6 (and issue 15 item 9): a model with no observed training cell is unavailable in
/// every family, before and after a router file round trip, and is never chosen.
@Suite struct UnseenModelTests {
    /// A synthetic table with its last model's training cells all unobserved.
    static func tableWithUnseenModel() throws -> EvaluationTable {
        let t = try SyntheticData.table(queries: 60, seed: 11)
        let m = t.modelCount
        let observed = t.observed.enumerated().map { $0.offset % m == m - 1 ? false : $0.element }
        return try EvaluationTable(models: t.models, queries: t.queries, scores: t.scores, costs: t.costs, observed: observed)
    }

    @Test(arguments: RouterFamily.allCases) func anUnseenModelIsUnavailableAndNeverChosen(_ family: RouterFamily) throws {
        let table = try Self.tableWithUnseenModel()
        let unseen = table.modelCount - 1
        let texts = table.queries.map(\.text)
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 32))
        encoder.fit(texts)
        var c = RouterTrainingConfiguration()
        c.mlp.hiddenDimension = 8
        c.mlp.epochs = 2
        c.kmeans = KMeansConfiguration(clusters: 3)
        c.knnNeighbors = 5
        let router = try c.train(family, features: encoder.encode(texts), table: table, seed: 3)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("unseen-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RouterFile.save(try RoutingPipeline(encoder: encoder, router: router), to: path)
        let loaded = try RouterFile.load(path: path)
        for predictions in [try router.predict(features: encoder.encode(texts)), try loaded.predict(texts: texts)] {
            let m = predictions.models.count
            #expect((0..<predictions.rows).allSatisfy { !predictions.available[$0 * m + unseen] }, "\(family): the unseen model is available")
            #expect((0..<predictions.rows).allSatisfy { r in (0..<(m - 1)).contains { predictions.available[r * m + $0] } })
            for lambda in [0.0, 1.0, 1e3] { #expect(!predictions.choose(lambda: lambda).contains(unseen), "\(family) routes to the unseen model at λ \(lambda)") }
        }
    }

    @Test func normalisersRecordObservationsAndOldFilesTreatEveryModelAsObserved() throws {
        let table = try Self.tableWithUnseenModel()
        let normalizer = CostNormalizer(fitting: table)
        #expect(normalizer.observations?.last == 0 && normalizer.observations?.first ?? 0 > 0)
        #expect(!normalizer.isObserved(model: table.modelCount - 1) && normalizer.isObserved(model: 0))
        // A normaliser written before observations were recorded decodes with none: all observed.
        let old = try JSONDecoder().decode(CostNormalizer.self, from: Data(#"{"mean":[0,1],"std":[1,2]}"#.utf8))
        #expect(old.observations == nil && old.isObserved(model: 1))
        #expect(CostNormalizer(mean: [0], std: [1], observations: [-1]).problem(models: 1) != nil)
        #expect(CostNormalizer(mean: [0], std: [1], observations: [1, 2]).problem(models: 1) != nil)
    }
}
