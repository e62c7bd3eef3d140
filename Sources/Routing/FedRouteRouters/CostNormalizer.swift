import FedRouteData
import FedRouteNumerics

/// Per-model standardisation of log-cost: c̃ = clamp((log1p(cost) − μ_m)/σ_m, −3, 3).
///
/// It also records how many training cells each model had (`observations`): a model with none
/// was never seen in training, and the MLP-Router marks it unavailable instead of inventing
/// estimates for it (issue 16, item 6).
public struct CostNormalizer: Sendable, Codable, Equatable {
    public var mean: [Double]
    public var std: [Double]
    /// Observed training cells per model; nil in files written before fedroute recorded it (every
    /// model is then taken as observed).
    public var observations: [Double]?
    /// Mean observed training score per model (the prior a parametric router starts from and falls
    /// back to); nil in files written before fedroute recorded it, and for a model with no cell.
    public var scoreMean: [Double?]?
    /// Mean observed training cost per model in USD (with `scoreMean`, what best-single@λ is chosen
    /// from); nil where `scoreMean` is.
    public var costMean: [Double?]?
    public static let clampLimit = 3.0

    public init(mean: [Double], std: [Double], observations: [Double]? = nil, scoreMean: [Double?]? = nil, costMean: [Double?]? = nil) {
        self.mean = mean
        self.std = std
        self.observations = observations
        self.scoreMean = scoreMean
        self.costMean = costMean
    }

    /// The best-single@λ model for each λ, from the recorded per-model means (nil without them).
    public func bestSingle(models: [String], lambdas: [Double]) -> [Int]? {
        guard let scoreMean, let costMean, scoreMean.count == models.count, costMean.count == models.count else { return nil }
        return SafetyGate.bestSingle(models: models, meanScore: scoreMean, meanCost: costMean, lambdas: lambdas)
    }

    /// Whether model `m` had at least one observed training cell.
    public func isObserved(model m: Int) -> Bool {
        observations.map { $0[m] > 0 } ?? true
    }

    /// Why this normaliser cannot serve `models` models, or nil: one finite mean, positive finite
    /// deviation and (if recorded) finite non-negative observation count per model.
    public func problem(models: Int) -> String? {
        guard mean.count == models, std.count == models, observations.map({ $0.count == models }) ?? true else {
            return "cost statistics for \(mean.count) models (\(observations?.count ?? mean.count) observation counts), expected \(models)"
        }
        guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            return "cost normaliser needs finite means and positive finite deviations"
        }
        guard observations?.allSatisfy({ $0.isFinite && $0 >= 0 }) ?? true else { return "cost normaliser observation counts must be finite and ≥ 0" }
        if let s = scoreMean {
            guard s.count == models, s.allSatisfy({ $0.map { $0.isFinite && (0...1).contains($0) } ?? true }) else {
                return "cost normaliser score means must be \(models) values in [0, 1] (or null), got \(s.count)"
            }
        }
        if let c = costMean, !(c.count == models && c.allSatisfy({ $0.map { $0.isFinite && $0 >= 0 } ?? true })) {
            return "cost normaliser cost means must be \(models) finite values ≥ 0 (or null), got \(c.count)"
        }
        return nil
    }

    /// Fits μ_m and σ_m on the observed cells of `table`; a model with fewer than two observations
    /// uses the statistics pooled over all models.
    public init(fitting table: EvaluationTable) {
        self.init(moments: CostMoments(table: table))
    }

    /// The normaliser from additive log-cost moments (what a federation pools instead of raw costs);
    /// identical to fitting on the union of the tables the moments came from.
    public init(moments: CostMoments) {
        func stats(_ n: Double, _ s: Double, _ ss: Double) -> (Double, Double) {
            guard n > 0 else { return (0, 1) }
            let mu = s / n
            return (mu, max(max(0, ss / n - mu * mu).squareRoot(), 1e-12))
        }
        let global = stats(moments.count.reduce(0, +), moments.sum.reduce(0, +), moments.sumSquares.reduce(0, +))
        let s = moments.count.indices.map { m in
            moments.count[m] >= 2 ? stats(moments.count[m], moments.sum[m], moments.sumSquares[m]) : global
        }
        mean = s.map(\.0)
        std = s.map(\.1)
        observations = moments.count
        scoreMean = moments.scoreSum.map { sums in
            moments.count.indices.map { m in moments.count[m] > 0 ? min(1, max(0, sums[m] / moments.count[m])) : nil }
        }
        costMean = moments.costSum.map { sums in moments.count.indices.map { m in moments.count[m] > 0 ? max(0, sums[m] / moments.count[m]) : nil } }
    }

    public func normalized(cost: Double, model m: Int) -> Float {
        Float(min(Self.clampLimit, max(-Self.clampLimit, (Scalar.log1p(cost) - mean[m]) / std[m])))
    }

    public func cost(normalized value: Float, model m: Int) -> Double {
        let v = min(Self.clampLimit, max(-Self.clampLimit, Double(value)))
        return max(0, Scalar.expm1(v * std[m] + mean[m]))
    }
}

/// Per-model count, sum and sum of squares of log1p(cost), and sum of scores, over observed cells.
/// Additive, so clients can pool them without revealing any single cost or score.
public struct CostMoments: Sendable, Codable, Equatable {
    public var count: [Double]
    public var sum: [Double]
    public var sumSquares: [Double]
    /// Sum of observed scores per model (nil from a client built before fedroute pooled it: the
    /// federation then has no score prior).
    public var scoreSum: [Double]?
    /// Sum of observed raw costs (USD) per model; nil likewise.
    public var costSum: [Double]?

    public init(models: Int) {
        count = Array(repeating: 0, count: models)
        sum = count
        sumSquares = count
        scoreSum = count
        costSum = count
    }

    public init(table: EvaluationTable) {
        self.init(models: table.modelCount)
        for r in 0..<table.queryCount {
            for m in 0..<table.modelCount where table.isObserved(r, m) {
                let v = Scalar.log1p(table.costs[table.index(r, m)])
                count[m] += 1
                sum[m] += v
                sumSquares[m] += v * v
                scoreSum![m] += table.scores[table.index(r, m)]
                costSum![m] += table.costs[table.index(r, m)]
            }
        }
    }

    public static func + (a: CostMoments, b: CostMoments) -> CostMoments {
        precondition(a.count.count == b.count.count, "cost moments for different model counts")
        var s = a
        for m in s.count.indices { s.count[m] += b.count[m]; s.sum[m] += b.sum[m]; s.sumSquares[m] += b.sumSquares[m] }
        // A score prior needs every part's sums.
        if let x = a.scoreSum, let y = b.scoreSum, x.count == y.count { s.scoreSum = zip(x, y).map(+) } else { s.scoreSum = nil }
        if let x = a.costSum, let y = b.costSum, x.count == y.count { s.costSum = zip(x, y).map(+) } else { s.costSum = nil }
        return s
    }
}
