import FedRouteData
@testable import FedRouteEvaluation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Testing

@Suite struct LambdaCalibrationTests {
    /// `n` queries over three models (strong, mid, cheap) whose true scores and costs vary by query; the
    /// router predicts them with noise, so calibration works from predictions and realised values differ.
    static func problem(n: Int, seed: UInt64) throws -> (table: EvaluationTable, predictions: RouterPredictions) {
        var rng = SeededRandom(seed: seed)
        let models = ["strong", "mid", "cheap"]
        var scores: [Double] = [], costs: [Double] = [], predScore: [Double] = [], predCost: [Double] = []
        for _ in 0..<n {
            let difficulty = Double.random(in: 0...1, using: &rng)
            let length = Double.random(in: 0.5...2, using: &rng)
            let s = [0.95 - 0.2 * difficulty, 0.85 - 0.5 * difficulty, 0.7 - 0.6 * difficulty]
            let c = [0.01 * length, 0.002 * length, 0.0002 * length]
            for j in 0..<3 {
                scores.append(min(1, max(0, s[j] + Double.random(in: -0.1...0.1, using: &rng))))
                costs.append(c[j])
                predScore.append(min(1, max(0, s[j] + Double.random(in: -0.05...0.05, using: &rng))))
                predCost.append(c[j] * Double.random(in: 0.9...1.1, using: &rng))
            }
        }
        let queries = (0..<n).map { Query(id: "q\($0)", text: "query \($0)", task: "t") }
        let table = try EvaluationTable(models: models, queries: queries, scores: scores, costs: costs, observed: [Bool](repeating: true, count: 3 * n))
        let predictions = RouterPredictions(models: models, rows: n, score: predScore, cost: predCost, available: [Bool](repeating: true, count: 3 * n))
        return (table, predictions)
    }

    static func split(_ p: (table: EvaluationTable, predictions: RouterPredictions), at k: Int) -> [(EvaluationTable, RouterPredictions)] {
        [(0..<k), (k..<p.table.queryCount)].map { range in
            let rows = Array(range)
            var score: [Double] = [], cost: [Double] = []
            for r in rows { score += p.predictions.score[r * 3..<(r + 1) * 3]; cost += p.predictions.cost[r * 3..<(r + 1) * 3] }
            return (p.table.subset(rows), RouterPredictions(models: p.predictions.models, rows: rows.count, score: score, cost: cost,
                                                             available: [Bool](repeating: true, count: 3 * rows.count)))
        }
    }

    /// Calibrated on 6,000 queries, each target holds on 4,000 held-out ones within 2 % (the share within
    /// 2 points).
    @Test func targetsHoldOnHeldOutQueriesWithinTwoPercent() throws {
        let halves = Self.split(try Self.problem(n: 10_000, seed: 7), at: 6_000)
        let (fitTable, fitPredictions) = halves[0], (heldTable, heldPredictions) = halves[1]
        let dense = try LambdaCalibration.operatingPoint(predictions: fitPredictions, table: fitTable, lambda: 0)
        #expect(dense.estimatedCells == 0 && dense.queries == 6_000)

        let targetCost = 0.004
        let (costPoint, costMet) = try LambdaCalibration.calibrate(predictions: fitPredictions, table: fitTable, target: .costPerQuery(targetCost))
        #expect(costMet && costPoint.meanCost <= targetCost && costPoint.meanCost > targetCost * 0.98)
        let costHeld = try LambdaCalibration.operatingPoint(predictions: heldPredictions, table: heldTable, lambda: costPoint.lambda)
        #expect(abs(costHeld.meanCost / targetCost - 1) < 0.02, "\(costHeld.meanCost)")

        let (sharePoint, shareMet) = try LambdaCalibration.calibrate(predictions: fitPredictions, table: fitTable, target: .share(model: "strong", fraction: 0.2))
        #expect(shareMet && abs((sharePoint.share["strong"] ?? 0) - 0.2) < 0.001)
        let shareHeld = try LambdaCalibration.operatingPoint(predictions: heldPredictions, table: heldTable, lambda: sharePoint.lambda)
        #expect(abs((shareHeld.share["strong"] ?? 0) - 0.2) < 0.02, "\(shareHeld.share)")

        let (qualityPoint, qualityMet) = try LambdaCalibration.calibrate(predictions: fitPredictions, table: fitTable, target: .quality(0.7))
        #expect(qualityMet && qualityPoint.meanScore >= 0.7 && qualityPoint.lambda > 0)
        let qualityHeld = try LambdaCalibration.operatingPoint(predictions: heldPredictions, table: heldTable, lambda: qualityPoint.lambda)
        #expect(abs(qualityHeld.meanScore / 0.7 - 1) < 0.02, "\(qualityHeld.meanScore)")
        // Cheaper than λ = 0 for the same quality target.
        #expect(qualityPoint.meanCost < dense.meanCost)
    }

    @Test func unreachableTargetsAreReportedAsNotMet() throws {
        let p = try Self.problem(n: 500, seed: 1)
        let (tooCheap, met) = try LambdaCalibration.calibrate(predictions: p.predictions, table: p.table, target: .costPerQuery(1e-9))
        #expect(!met && tooCheap.lambda == LambdaCalibration.grid.last)
        let (tooGood, qualityMet) = try LambdaCalibration.calibrate(predictions: p.predictions, table: p.table, target: .quality(0.999))
        #expect(!qualityMet && tooGood.lambda == 0)
        #expect(throws: LambdaCalibration.Failure.self) {
            _ = try LambdaCalibration.calibrate(predictions: p.predictions, table: p.table, target: .share(model: "gpt-99", fraction: 0.5))
        }
        #expect(throws: LambdaCalibration.Failure.self) {
            _ = try LambdaCalibration.calibrate(predictions: p.predictions, table: p.table, target: .costPerQuery(.nan))
        }
        #expect(throws: LambdaCalibration.Failure.self) {
            _ = try LambdaCalibration.operatingPoint(predictions: p.predictions, table: p.table.subset([0, 1]), lambda: 1)
        }
    }

    /// A chosen cell the data does not have is priced with the router's estimate, and counted.
    @Test func unobservedChosenCellsUseTheRoutersEstimates() throws {
        let queries = [Query(id: "a", text: "a", task: "t"), Query(id: "b", text: "b", task: "t")]
        let table = try EvaluationTable(models: ["x", "y"], queries: queries, scores: [1, 0, 0, 1], costs: [0.5, 0.1, 0.5, 0.1], observed: [true, true, false, true])
        let predictions = RouterPredictions(models: ["x", "y"], rows: 2, score: [0.9, 0.1, 0.8, 0.2], cost: [0.4, 0.1, 0.3, 0.1], available: [true, true, true, true])
        let p = try LambdaCalibration.operatingPoint(predictions: predictions, table: table, lambda: 0)
        #expect(p.estimatedCells == 1 && p.meanScore == (1 + 0.8) / 2 && p.meanCost == (0.5 + 0.3) / 2 && p.share == ["x": 1])
    }
}
