import FedRouteData

/// How a router did on held-out rows, as sums that clients can add up without sharing any row
/// (issue 16, items 2 and 5): the model-selection criterion and the safety gate's evidence.
///
/// - `squaredScoreError` / `cells`: the Brier score of the predicted scores on observed validation
///   cells — what best-round (MLP, MF) and cluster-count (K-Means, kNN) selection minimise.
/// - `bands`, with `ValidationBands`: per λ band, a doubly-robust estimate of the router's
///   utility (score − λ·cost) minus best-single@λ's on the validation queries. With one observed
///   model per query the two policies are almost never graded on the same query, so a paired
///   comparison has nothing to compare. Per query whose router choice c differs from the fallback
///   f, the estimate is
///
///       d = Σ_{j ∈ {c, f}} ±[ b_j + 1[j graded] · (u_j − b_j) / p_j ]     (+ for c, − for f)
///
///   with p_j the share of the holder's queries on which model j was graded and b_j (the
///   `UtilityBaseline`) model j's mean utility on the holder's *training* rows. It is unbiased
///   whatever b is, when which model was graded does not depend on the query (the paper's
///   protocol draws it from the client's model preference), because E[1[graded]/p_j] = 1. Without
///   a baseline (b = 0) it is plain inverse-propensity weighting; a baseline near the true mean
///   removes most of IPS's variance, since only the residual u − b is inflated by 1/p. With every
///   model graded (p = 1) it is exactly the paired difference u_c − u_f.
public struct ValidationStatistics: Sendable, Codable, Equatable {
    /// Observed validation cells the Brier score is over.
    public var cells: Double
    public var squaredScoreError: Double
    /// Validation queries with at least one observed cell (the IPS estimates' denominator).
    public var queries: Double
    /// Per band: Σ over queries of the IPS utility difference router − fallback, and its square.
    public var differenceSum: [Double]
    public var differenceSquares: [Double]
    /// Validation queries on which every model was graded, where the estimate is the paired
    /// difference (nil: some holder was built before this count and did not send it).
    public var fullyGradedQueries: Double?

    public init(bands: Int = 0) {
        cells = 0
        squaredScoreError = 0
        queries = 0
        fullyGradedQueries = 0
        differenceSum = Array(repeating: 0, count: bands)
        differenceSquares = differenceSum
    }

    /// The Brier score of the predicted scores, or nil without a validation cell.
    public var brier: Double? { cells > 0 ? squaredScoreError / cells : nil }

    /// Statistics of `predictions` on `table` (rows aligned). With `bands`, `propensity[m]` is the
    /// share of the holder's queries on which model m was graded, and `baseline` (from rows other
    /// than `table`'s) the control variate of the doubly-robust estimate (nil: plain IPS).
    public init(predictions: RouterPredictions, table: EvaluationTable, bands: ValidationBands? = nil, propensity: [Double]? = nil,
                baseline: UtilityBaseline? = nil) throws {
        guard predictions.rows == table.queryCount, predictions.models == table.models else {
            throw RouterError.invalidConfiguration("validation: \(predictions.rows) predictions for \(table.queryCount) queries, or other models")
        }
        let m = table.modelCount
        self.init(bands: bands?.lambdas.count ?? 0)
        for r in 0..<table.queryCount {
            var any = false
            for j in 0..<m where table.isObserved(r, j) {
                let e = predictions.score[r * m + j] - table.scores[table.index(r, j)]
                squaredScoreError += e * e
                cells += 1
                any = true
            }
            if any { queries += 1 }
            if m > 0, table.observedCount(row: r) == m { fullyGradedQueries = (fullyGradedQueries ?? 0) + 1 }
        }
        guard let bands else { return }
        guard let propensity, propensity.count == m, bands.fallback.count == bands.lambdas.count, bands.lambdas.count <= ValidationBands.maxBands,
              bands.fallback.allSatisfy({ (0..<m).contains($0) }), bands.lambdas.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw RouterError.invalidConfiguration("validation bands need at most \(ValidationBands.maxBands) finite λ ≥ 0, one fallback among the \(m) models each, and one propensity per model")
        }
        if let baseline, baseline.meanScore.count != m || baseline.meanCost.count != m {
            throw RouterError.invalidConfiguration("a utility baseline of \(baseline.meanScore.count) models for \(m) models")
        }
        var raw = predictions
        raw.safety = nil
        for (b, lambda) in bands.lambdas.enumerated() {
            let choice = raw.choose(lambda: lambda)
            let f = bands.fallback[b]
            let expected = baseline.map { base in (0..<m).map { base.utility(model: $0, lambda: lambda) } }
            for r in 0..<table.queryCount where choice[r] != f {
                var d = 0.0
                for j in [choice[r], f] where propensity[j] > 0 {
                    let base = expected?[j] ?? 0
                    var term = base
                    if table.isObserved(r, j) {
                        term += (table.scores[table.index(r, j)] - lambda * table.costs[table.index(r, j)] - base) / propensity[j]
                    }
                    d += j == f ? -term : term
                }
                differenceSum[b] += d
                differenceSquares[b] += d * d
            }
        }
    }

    /// Per model, the share of `table`'s queries on which it was graded.
    public static func propensity(of table: EvaluationTable) -> [Double] {
        let n = Double(max(1, table.queryCount))
        return (0..<table.modelCount).map { m in Double((0..<table.queryCount).filter { table.isObserved($0, m) }.count) / n }
    }

    /// Sums two holders' statistics (they must cover the same bands).
    public static func + (a: ValidationStatistics, b: ValidationStatistics) -> ValidationStatistics {
        precondition(a.differenceSum.count == b.differenceSum.count, "validation statistics for different bands")
        var s = a
        s.cells += b.cells
        s.squaredScoreError += b.squaredScoreError
        s.queries += b.queries
        s.fullyGradedQueries = a.fullyGradedQueries.flatMap { x in b.fullyGradedQueries.map { x + $0 } }
        for i in s.differenceSum.indices { s.differenceSum[i] += b.differenceSum[i]; s.differenceSquares[i] += b.differenceSquares[i] }
        return s
    }

    /// Why statistics received from a holder cannot be summed, or nil: finite, non-negative counts,
    /// an error no larger than one per cell, at most `maxQueries` queries and `bands` bands.
    public func problem(bands: Int, maxQueries: Double) -> String? {
        guard cells.isFinite, queries.isFinite, cells >= 0, queries >= 0, queries <= maxQueries, queries <= cells || cells == 0 && queries == 0 else {
            return "validation counts \(cells) cells / \(queries) queries are not valid (at most \(maxQueries) queries)"
        }
        if let f = fullyGradedQueries, !(f.isFinite && f >= 0 && f <= queries) {
            return "validation count of fully graded queries \(f) is not within [0, \(queries)]"
        }
        guard squaredScoreError.isFinite, squaredScoreError >= 0, squaredScoreError <= cells * (1 + 1e-9) else {
            return "validation squared error \(squaredScoreError) is not within [0, \(cells)]"
        }
        guard differenceSum.count == bands, differenceSquares.count == bands,
              differenceSum.allSatisfy({ $0.isFinite && abs($0) <= 1e30 }), differenceSquares.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1e60 }) else {
            return "validation band sums are not \(bands) finite values"
        }
        return nil
    }
}

/// The λ bands a safety gate is calibrated on, each with its best-single@λ model.
public struct ValidationBands: Sendable, Codable, Equatable {
    public var lambdas: [Double]
    public var fallback: [Int]

    /// Most bands a holder scores (each costs a pass over its validation rows): a request for more
    /// is refused, as a hostile coordinator's would be.
    public static let maxBands = 1_000

    public init(lambdas: [Double], fallback: [Int]) {
        self.lambdas = lambdas
        self.fallback = fallback
    }
}
