import FedRouteData

/// Safe routing (issue 16, item 5): for each band of λ, either the router or best-single@λ (the one
/// model with the best training utility at that λ), whichever did at least as well on validation
/// queries the router was not trained on.
///
/// Bands are centred on `lambdas` (ascending) with edges at the geometric midpoints between
/// neighbours; λ below the first point uses the first band, above the last the last. The
/// evidence is `ValidationStatistics`' doubly-robust estimate of the utility (score − λ·cost)
/// difference router − fallback over the validation queries (the paired difference where every
/// model was graded). The router keeps a band only when at least `minimumPairs` validation
/// queries back it and the estimate is at least `standardErrors` standard errors above 0: a
/// router that has not shown it does no worse than best-single@λ is not trusted with that band.
/// The margin is 1 standard error when every validation query had every model graded (the
/// paired difference, bounded by the utility range), 2 when none had, and in between in
/// proportion to the share of fully graded queries (`automaticStandardErrors`).
/// In a fallback band the fallback model is ranked first for every query; the router's own
/// order follows (the gateway falls back along it).
public struct SafetyGate: Sendable, Codable, Equatable {
    public var lambdas: [Double]
    /// Per band: true when the router routes, false when best-single@λ does.
    public var useRouter: [Bool]
    /// Per band: the best-single@λ model (index into the router's models).
    public var fallback: [Int]
    /// Per band: the validation queries behind the estimate and its mean utility difference router − fallback (nil without any).
    public var pairs: [Int]
    public var meanDifference: [Double?]
    public var validationQueries: Int
    /// How many standard errors above 0 the estimate had to be for the router to keep a band (nil:
    /// a gate written before the margin was recorded, which used 1).
    public var standardErrors: Double?

    public static let minimumPairs = 20
    /// The margin when every validation query had every model graded: each term is a paired
    /// difference, bounded by the utility range.
    public static let pairedStandardErrors = 1.0
    /// The margin otherwise: the terms are residuals scaled by 1/p, heavy-tailed when a holder
    /// graded a model on few queries, so the standard error itself is noisy. With one graded model
    /// per query one standard error let noise keep bands often enough that a safe router ended
    /// 0.015 below best-single@λ (issue 16; README "Federated: every family against best-single@λ").
    public static let weightedStandardErrors = 2.0

    /// The margin the gate uses unless told otherwise: from `weightedStandardErrors` with no fully
    /// graded validation query (or when a holder did not report the count) down to
    /// `pairedStandardErrors` when every one is, linear in their share — the estimate is a mixture
    /// of the two kinds of term, and a dense log with a few missing grades is nearly all paired.
    public static func automaticStandardErrors(_ s: ValidationStatistics) -> Double {
        guard let paired = s.fullyGradedQueries, s.queries > 0 else { return weightedStandardErrors }
        let share = min(1, max(0, paired / s.queries))
        return weightedStandardErrors - (weightedStandardErrors - pairedStandardErrors) * share
    }

    /// The largest margin accepted (a larger one is a fallback everywhere, or a typo).
    public static let maxStandardErrors = 10.0

    /// How many bands fall back to best-single@λ.
    public var fallbackBands: Int { useRouter.filter { !$0 }.count }

    /// The band λ falls in.
    public func band(for lambda: Double) -> Int {
        var i = 0
        while i + 1 < lambdas.count, lambda >= (lambdas[i] * lambdas[i + 1]).squareRoot() { i += 1 }
        return i
    }

    /// The model every query goes to at λ, or nil when the router decides.
    public func fallbackModel(at lambda: Double) -> Int? {
        let b = band(for: lambda)
        return useRouter[b] ? nil : fallback[b]
    }

    /// Why this gate cannot serve a router of `models` models (read from a file), or nil.
    public func problem(models: Int) -> String? {
        let n = lambdas.count
        guard n >= 1, useRouter.count == n, fallback.count == n, pairs.count == n, meanDifference.count == n else {
            return "a safety gate needs one decision, fallback, pair count and difference per λ (\(n) λ values)"
        }
        guard lambdas.allSatisfy({ $0.isFinite && $0 > 0 }), zip(lambdas, lambdas.dropFirst()).allSatisfy({ $0 < $1 }) else {
            return "safety gate λ values must be finite, positive and ascending"
        }
        guard fallback.allSatisfy({ (0..<models).contains($0) }) else { return "a safety gate fallback is not one of the \(models) models" }
        guard pairs.allSatisfy({ $0 >= 0 }), validationQueries >= 0, meanDifference.allSatisfy({ $0?.isFinite ?? true }) else {
            return "safety gate counts must be ≥ 0 and differences finite"
        }
        if let z = standardErrors, let problem = Self.marginProblem(z) { return problem }
        return nil
    }

    /// Why `z` cannot be a gate's margin in standard errors, or nil.
    public static func marginProblem(_ z: Double) -> String? {
        z.isFinite && z >= 0 && z <= maxStandardErrors ? nil
            : "the safety gate's margin must be between 0 and \(maxStandardErrors) standard errors, not \(z)"
    }

    /// The best-single@λ model per λ from per-model mean training score and cost (nil: no
    /// observation, never chosen) — what a federation knows from its pooled sums.
    public static func bestSingle(models: [String], meanScore: [Double?], meanCost: [Double?], lambdas: [Double]) -> [Int] {
        let means = RouterPredictions(models: models, rows: 1, score: meanScore.map { $0 ?? 0 }, cost: meanCost.map { $0 ?? 0 },
                                      available: zip(meanScore, meanCost).map { $0 != nil && $1 != nil })
        return lambdas.map { means.choose(lambda: $0)[0] }
    }

    /// Calibrates a gate from the router's `predictions` on `validation` (rows aligned; the router
    /// was not trained on them) and best-single@λ from `training` and `validation` together (the
    /// model an evaluation on all training rows calls best-single@λ, so the fallback is that
    /// baseline and not a noisier one): the same doubly-robust estimate and standard-error margin
    /// as a federation's gate (`init(bands:statistics:standardErrors:)`), with propensities from
    /// both tables and the baseline from `training` alone. With every model graded on every
    /// validation query the estimate is the paired utility difference.
    public static func calibrate(predictions: RouterPredictions, validation: EvaluationTable, training: EvaluationTable,
                                 lambdas: [Double], standardErrors: Double? = nil) throws -> SafetyGate {
        guard predictions.rows == validation.queryCount, predictions.models == validation.models, training.models == validation.models else {
            throw RouterError.invalidConfiguration("safety gate: \(predictions.rows) predictions for \(validation.queryCount) validation queries, or different models")
        }
        let grid = Array(Set(lambdas.filter { $0.isFinite && $0 > 0 })).sorted()
        guard !grid.isEmpty else { throw RouterError.invalidConfiguration("safety gate: no positive finite λ to calibrate on") }
        guard grid.count <= ValidationBands.maxBands else {
            throw RouterError.invalidConfiguration("safety gate: \(grid.count) λ values, at most \(ValidationBands.maxBands)")
        }
        // Best-single@λ is the routing rule applied to the means of every row (as the evaluator's
        // reference is); the training rows' means are the estimate's control variate.
        let means = UtilityBaseline(table: training)
        let everyRow = try EvaluationTable.concatenate([training, validation])
        let all = UtilityBaseline(table: everyRow)
        let bands = ValidationBands(lambdas: grid, fallback: bestSingle(models: training.models, meanScore: all.meanScore,
                                                                        meanCost: all.meanCost, lambdas: grid))
        let statistics = try ValidationStatistics(predictions: predictions, table: validation, bands: bands,
                                                  propensity: ValidationStatistics.propensity(of: everyRow), baseline: means)
        return try SafetyGate(bands: bands, statistics: statistics, standardErrors: standardErrors)
    }
}

extension SafetyGate {
    /// A gate from summed validation statistics (`ValidationStatistics` with `bands`): the router
    /// keeps a band when at least `minimumPairs` validation queries back the estimate and the
    /// doubly-robust estimate of its mean utility difference to best-single@λ is at least
    /// `standardErrors` standard errors above 0 (nil: `automaticStandardErrors`). The estimate is
    /// noisy (each query sees one graded model), so a router whose choices are noise would
    /// otherwise keep the bands its noise happened to favour;
    /// a band where the router always agrees with best-single@λ (difference and error 0) is kept,
    /// which changes nothing. This is how a federation calibrates its gate: every client adds its
    /// own held-out queries' sums, and `meanDifference` records the estimate.
    public init(bands: ValidationBands, statistics s: ValidationStatistics, standardErrors: Double? = nil) throws {
        let z = standardErrors ?? Self.automaticStandardErrors(s)
        if let problem = Self.marginProblem(z) { throw RouterError.invalidConfiguration(problem) }
        guard s.differenceSum.count == bands.lambdas.count, bands.fallback.count == bands.lambdas.count else {
            throw RouterError.invalidConfiguration("safety gate: statistics for \(s.differenceSum.count) bands, \(bands.lambdas.count) λ values")
        }
        let n = Int(s.queries.rounded())
        let mean = s.differenceSum.map { s.queries > 0 ? $0 / s.queries : nil as Double? }
        let keep = bands.lambdas.indices.map { b -> Bool in
            guard n >= Self.minimumPairs, let m = mean[b] else { return false }
            let variance = max(0, s.differenceSquares[b] / s.queries - m * m)
            return m - z * (variance / s.queries).squareRoot() >= 0
        }
        self.init(lambdas: bands.lambdas, useRouter: keep, fallback: bands.fallback,
                  pairs: Array(repeating: n, count: bands.lambdas.count), meanDifference: mean, validationQueries: n, standardErrors: z)
        if let problem = problem(models: (bands.fallback.max() ?? 0) + 1) { throw RouterError.invalidConfiguration("safety gate: \(problem)") }
    }
}
