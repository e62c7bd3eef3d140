import FedRouteData
import FedRouteNumerics
@testable import FedRouteRouters
import Testing

/// The safety gate's evidence: the doubly-robust estimate of router − best-single@λ utility.
@Suite struct ValidationStatisticsTests {
    /// 300 queries of three kinds; kind k's queries are answered by model k with probability 0.9
    /// and by the others with 0.3 (one fixed draw: the "full" table). The router picks model k for
    /// kind k; best-single@λ is model 0. Costs are equal, so λ only shifts every utility alike.
    static func fullTable(seed: UInt64) throws -> (table: EvaluationTable, predictions: RouterPredictions) {
        var rng = SeededRandom(seed: seed)
        var t = EvaluationTable(models: ["a", "b", "c"])
        var score: [Double] = []
        for r in 0..<300 {
            let kind = r % 3
            var cells: [Int: (score: Double, cost: Double)] = [:]
            for m in 0..<3 { cells[m] = (rng.nextDouble() < (m == kind ? 0.9 : 0.3) ? 1 : 0, 0.01) }
            try t.append(Query(id: "q\(r)", text: "q\(r)", task: "t"), cells: cells)
            score += (0..<3).map { $0 == kind ? 0.9 : 0.3 }
        }
        let p = RouterPredictions(models: t.models, rows: 300, score: score, cost: Array(repeating: 0.01, count: 900),
                                  available: Array(repeating: true, count: 900))
        return (t, p)
    }

    /// `full` with one model graded per query, drawn uniformly (propensity 1/3 each).
    static func sparse(_ full: EvaluationTable, rng: inout SeededRandom) throws -> EvaluationTable {
        var observed = full.observed
        for r in 0..<full.queryCount {
            let keep = rng.nextInt(below: 3)
            for m in 0..<3 { observed[full.index(r, m)] = m == keep }
        }
        return try EvaluationTable(models: full.models, queries: full.queries, scores: full.scores, costs: full.costs, observed: observed)
    }

    static let bands = ValidationBands(lambdas: [1], fallback: [0])

    @Test func everyModelGradedGivesThePairedDifferenceWithOrWithoutABaseline() throws {
        let (t, p) = try Self.fullTable(seed: 1)
        let choice = p.choose(lambda: 1)
        let paired = (0..<300).map { t.scores[t.index($0, choice[$0])] - t.scores[t.index($0, 0)] }.reduce(0, +) / 300
        let baseline = UtilityBaseline(meanScore: [0.4, 0.6, 0.2], meanCost: [0.01, 0.01, nil])
        for b in [nil, baseline] {
            let s = try ValidationStatistics(predictions: p, table: t, bands: Self.bands, propensity: [1, 1, 1], baseline: b)
            #expect(abs(s.differenceSum[0] / s.queries - paired) < 1e-12, "baseline \(String(describing: b))")
        }
    }

    /// The count of fully graded queries that sets the gate's margin: every query of the full
    /// table, none of a sparse one; sums add it, a holder that did not send it makes it unknown,
    /// and a count above the queries is refused.
    @Test func fullyGradedQueriesAreCountedSummedAndChecked() throws {
        let (t, p) = try Self.fullTable(seed: 1)
        let full = try ValidationStatistics(predictions: p, table: t, bands: Self.bands, propensity: [1, 1, 1])
        #expect(full.fullyGradedQueries == 300 && full.queries == 300)
        var rng = SeededRandom(seed: 4)
        let sparse = try ValidationStatistics(predictions: p, table: try Self.sparse(t, rng: &rng), bands: Self.bands, propensity: [1, 1, 1].map { $0 / 3.0 })
        #expect(sparse.fullyGradedQueries == 0 && sparse.queries == 300)
        #expect((full + sparse).fullyGradedQueries == 300 && (full + sparse).queries == 600)
        var old = sparse
        old.fullyGradedQueries = nil
        #expect((full + old).fullyGradedQueries == nil && (old + full).fullyGradedQueries == nil)
        #expect(full.problem(bands: 1, maxQueries: 1_000) == nil && old.problem(bands: 1, maxQueries: 1_000) == nil)
        var lying = full
        lying.fullyGradedQueries = 301
        #expect(lying.problem(bands: 1, maxQueries: 1_000)?.contains("fully graded") == true)
        lying.fullyGradedQueries = .nan
        #expect(lying.problem(bands: 1, maxQueries: 1_000) != nil)
    }

    /// Over many draws of which model was graded, both estimates centre on the full table's
    /// paired difference; the baseline cuts the spread.
    @Test func theDoublyRobustEstimateIsUnbiasedAndTighterThanIPS() throws {
        let (t, p) = try Self.fullTable(seed: 2)
        let choice = p.choose(lambda: 1)
        let truth = (0..<300).map { t.scores[t.index($0, choice[$0])] - t.scores[t.index($0, 0)] }.reduce(0, +) / 300
        // The baseline comes from other rows: here, each model's mean over the full table.
        let means = (0..<3).map { m in (0..<300).map { t.scores[t.index($0, m)] }.reduce(0, +) / 300 }
        let baseline = UtilityBaseline(meanScore: means, meanCost: [0.01, 0.01, 0.01])
        var rng = SeededRandom(seed: 7)
        var ips: [Double] = [], dr: [Double] = []
        for _ in 0..<400 {
            let s = try Self.sparse(t, rng: &rng)
            let plain = try ValidationStatistics(predictions: p, table: s, bands: Self.bands, propensity: [1.0 / 3, 1.0 / 3, 1.0 / 3])
            let robust = try ValidationStatistics(predictions: p, table: s, bands: Self.bands, propensity: [1.0 / 3, 1.0 / 3, 1.0 / 3], baseline: baseline)
            ips.append(plain.differenceSum[0] / plain.queries)
            dr.append(robust.differenceSum[0] / robust.queries)
        }
        func meanAndVariance(_ x: [Double]) -> (Double, Double) {
            let m = x.reduce(0, +) / Double(x.count)
            return (m, x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count - 1))
        }
        let (mi, vi) = meanAndVariance(ips), (md, vd) = meanAndVariance(dr)
        #expect(truth > 0.3, "the router is clearly better in this table (\(truth))")
        #expect(abs(mi - truth) < 4 * (vi / 400).squareRoot(), "IPS \(mi) vs \(truth)")
        #expect(abs(md - truth) < 4 * (vd / 400).squareRoot(), "DR \(md) vs \(truth)")
        #expect(vd < 0.7 * vi, "DR variance \(vd), IPS \(vi)")
    }

    @Test func aBaselineOfTheWrongWidthIsRefused() throws {
        let (t, p) = try Self.fullTable(seed: 3)
        #expect(throws: RouterError.self) {
            _ = try ValidationStatistics(predictions: p, table: t, bands: Self.bands, propensity: [1, 1, 1],
                                         baseline: UtilityBaseline(meanScore: [0.5], meanCost: [0.01]))
        }
    }
}
