import FedRouteData
import FedRouteRouters

/// One point of a λ sweep.
public struct FrontierPoint: Sendable, Codable, Equatable {
    /// The trade-off λ, nil for fixed policies.
    public var lambda: Double?
    public var cost: Double
    public var quality: Double
}

/// One row of the evaluation table: a router's or reference's curve and metrics.
public struct FrontierEvaluation: Sendable, Codable, Equatable {
    public enum Role: String, Sendable, Codable { case router, reference }

    public var name: String
    public var role: Role
    /// λ-sweep points (empty λ for fixed policies).
    public var points: [FrontierPoint]
    public var hull: [CostQuality]
    /// Normalised trapezoid area of the raw λ-sweep points over the comparison window (see
    /// `FrontierMetrics.normalizedArea`: 0 below the cheapest point, flat beyond the dearest).
    public var auc: Double
    /// RouterBench AIQ: normalised area of the non-decreasing convex hull over the window.
    public var aiq: Double
    public var maxQuality: Double
    public var minCost: Double
    /// Cost needed to reach a fraction of the best single model's quality ("90%" → USD or nil).
    public var costToReach: [String: Double?]
}

/// Everything `fedroute eval` reports.
public struct EvaluationReport: Sendable, Codable {
    public struct SingleModel: Sendable, Codable, Equatable {
        public var model: String
        public var cost: Double
        public var quality: Double
    }

    public var testQueries: Int
    /// Test queries left out because not every model was evaluated on them.
    public var excludedTestQueries: Int
    public var lambdas: [Double]
    /// The cost window [cheapest, most expensive single model] over which AUC and AIQ are normalised.
    public var window: CostQuality.Window
    /// Best single model, chosen by mean observed training score.
    public var bestSingleModel: String
    public var singleModels: [SingleModel]
    public var entries: [FrontierEvaluation]

    /// Names of the reference rows every report holds.
    public enum Reference {
        /// The best achievable routing with the true grades.
        public static let oracle = "oracle"
        /// Any mixture of single models: the non-decreasing convex hull of their (cost, quality).
        public static let zeroRouter = "zero-router"
        /// For each λ, always the one model with the best training utility at that λ.
        public static let bestSingleAtLambda = "best-single@λ"
    }

    /// The AUC of the entry called `name`, if the report has one.
    public func auc(of name: String) -> Double? { entries.first { $0.name == name }?.auc }

    /// A router's AUC minus best-single@λ and minus the zero-router: what it must beat to be worth using.
    public func margins(of name: String) -> (overBestSingle: Double, overZeroRouter: Double)? {
        guard let a = auc(of: name), let b = auc(of: Reference.bestSingleAtLambda), let z = auc(of: Reference.zeroRouter) else { return nil }
        return (a - b, a - z)
    }
}

extension CostQuality {
    public struct Window: Sendable, Codable, Equatable {
        public var low: Double
        public var high: Double
    }
}

/// Evaluates routers on a fully labelled test set with honest references.
public struct Evaluator: Sendable {
    public let train: EvaluationTable
    /// The test rows on which every model was evaluated (the only ones evaluated).
    public let test: EvaluationTable
    public let excludedTestQueries: Int
    public let lambdas: [Double]
    public let reachFractions: [Double]
    /// Per-model means of the training data (for the single-model references).
    let trainSummary: [DatasetSummary.ModelRow]

    public init(train: EvaluationTable, test: EvaluationTable,
                lambdas: [Double] = FrontierMetrics.geomspace(1e-2, 1e7, count: 100),
                reachFractions: [Double] = [0.9, 0.95, 1.0]) throws {
        guard train.models == test.models else { throw RouterError.modelMismatch(expected: train.models, got: test.models) }
        let full = test.filter { test.isFullyObserved(row: $0) }
        guard full.queryCount > 0 else { throw RouterError.noTrainingData("no test query has every model evaluated") }
        guard !lambdas.isEmpty, lambdas.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw RouterError.invalidConfiguration("λ values must be finite and non-negative")
        }
        self.train = train
        self.test = full
        excludedTestQueries = test.queryCount - full.queryCount
        self.lambdas = lambdas
        self.reachFractions = reachFractions
        trainSummary = DatasetSummary(train).perModel
    }

    /// Mean true (cost, quality) of per-query choices.
    public func outcome(of choices: [Int]) -> CostQuality {
        precondition(choices.count == test.queryCount, "one choice per test query")
        var c = 0.0, q = 0.0
        for (r, m) in choices.enumerated() { c += test.costs[test.index(r, m)]; q += test.scores[test.index(r, m)] }
        let n = Double(test.queryCount)
        return CostQuality(cost: c / n, quality: q / n)
    }

    /// The λ sweep of a router's predictions on `test`.
    public func frontier(_ predictions: RouterPredictions) throws -> [FrontierPoint] {
        guard predictions.rows == test.queryCount else {
            throw RouterError.invalidConfiguration("\(predictions.rows) prediction rows for \(test.queryCount) test queries")
        }
        guard predictions.models == test.models else { throw RouterError.modelMismatch(expected: test.models, got: predictions.models) }
        return lambdas.map { l in
            let o = outcome(of: predictions.choose(lambda: l))
            return FrontierPoint(lambda: l, cost: o.cost, quality: o.quality)
        }
    }

    /// Perfect-knowledge predictions (true scores and costs): the oracle's λ sweep. At small λ it
    /// picks the best-scoring model per query, the cheapest among ties.
    public var oraclePredictions: RouterPredictions {
        RouterPredictions(models: test.models, rows: test.queryCount, score: test.scores, cost: test.costs,
                          available: Array(repeating: true, count: test.scores.count))
    }

    /// Query-independent predictions: each model's mean observed training score and cost. Its λ
    /// sweep is "the best single model for each trade-off", chosen on training data.
    public var singleModelPredictions: RouterPredictions {
        let s = trainSummary
        let m = test.modelCount
        var score = [Double](), cost = [Double](), available = [Bool]()
        for _ in 0..<test.queryCount {
            for j in 0..<m {
                score.append(s[j].meanScore ?? 0)
                cost.append(s[j].meanCost ?? 0)
                available.append(s[j].meanScore != nil)
            }
        }
        return RouterPredictions(models: test.models, rows: test.queryCount, score: score, cost: cost, available: available)
    }

    public var singleModels: [EvaluationReport.SingleModel] {
        (0..<test.modelCount).map { m in
            let o = outcome(of: Array(repeating: m, count: test.queryCount))
            return .init(model: test.models[m], cost: o.cost, quality: o.quality)
        }
    }

    /// Index of the model with the best mean observed training score (ties: cheaper).
    public var bestSingleModelIndex: Int {
        let s = trainSummary
        return s.indices.max { a, b in
            let qa = s[a].meanScore ?? -1, qb = s[b].meanScore ?? -1
            return qa < qb || (qa == qb && (s[a].meanCost ?? .infinity) > (s[b].meanCost ?? .infinity))
        }!
    }

    /// Adds one router's row to `report` (a report of this evaluator), after its other routers and before the
    /// references, on the report's scale: lets a caller add routers one at a time, keeping only one router's
    /// predictions alive. The result equals evaluating all the routers together.
    public func addRouter(name: String, predictions: RouterPredictions, to report: inout EvaluationReport) throws {
        let bestQuality = report.singleModels.first { $0.model == report.bestSingleModel }?.quality ?? 0
        let row = entry(name, .router, try frontier(predictions), window: report.window, bestQuality: bestQuality)
        report.entries.insert(row, at: report.entries.firstIndex { $0.role == .reference } ?? report.entries.count)
    }

    func entry(_ name: String, _ role: FrontierEvaluation.Role, _ points: [FrontierPoint], window: CostQuality.Window, bestQuality: Double) -> FrontierEvaluation {
        let cq = points.map { CostQuality(cost: $0.cost, quality: $0.quality) }
        let hull = FrontierMetrics.nonDecreasingConvexHull(cq)
        var reach: [String: Double?] = [:]
        for f in reachFractions { reach["\(Int((f * 100).rounded()))%"] = FrontierMetrics.cost(toReach: f * bestQuality, on: hull) }
        return FrontierEvaluation(
            name: name, role: role, points: points, hull: hull,
            auc: FrontierMetrics.normalizedArea(cq, low: window.low, high: window.high),
            aiq: FrontierMetrics.normalizedArea(hull, low: window.low, high: window.high),
            maxQuality: cq.map(\.quality).max() ?? 0, minCost: cq.map(\.cost).min() ?? 0, costToReach: reach)
    }

    /// Evaluates the named router predictions together with the references.
    public func evaluate(_ routers: [(name: String, predictions: RouterPredictions)]) throws -> EvaluationReport {
        let singles = singleModels
        let window = CostQuality.Window(low: singles.map(\.cost).min()!, high: singles.map(\.cost).max()!)
        let best = bestSingleModelIndex
        let bestQuality = singles[best].quality
        func entry(_ name: String, _ role: FrontierEvaluation.Role, _ points: [FrontierPoint]) -> FrontierEvaluation {
            self.entry(name, role, points, window: window, bestQuality: bestQuality)
        }
        func fixed(_ o: CostQuality) -> [FrontierPoint] { [FrontierPoint(lambda: nil, cost: o.cost, quality: o.quality)] }
        var entries = try routers.map { entry($0.name, .router, try frontier($0.predictions)) }
        entries.append(entry(EvaluationReport.Reference.oracle, .reference, try frontier(oraclePredictions)))
        // Zero router: any mixture of single models, i.e. their hull.
        entries.append(entry(EvaluationReport.Reference.zeroRouter, .reference, FrontierMetrics.nonDecreasingConvexHull(singles.map { CostQuality(cost: $0.cost, quality: $0.quality) })
            .map { FrontierPoint(lambda: nil, cost: $0.cost, quality: $0.quality) }))
        entries.append(entry(EvaluationReport.Reference.bestSingleAtLambda, .reference, try frontier(singleModelPredictions)))
        entries.append(entry("best-single (\(test.models[best]))", .reference, fixed(CostQuality(cost: singles[best].cost, quality: singles[best].quality))))
        let cheapest = trainSummary.indices.min { (trainSummary[$0].meanCost ?? .infinity) < (trainSummary[$1].meanCost ?? .infinity) }!
        entries.append(entry("cheapest (\(test.models[cheapest]))", .reference, fixed(CostQuality(cost: singles[cheapest].cost, quality: singles[cheapest].quality))))
        // Uniform random routing, in expectation (exact, no sampling noise).
        let rc = singles.map(\.cost).reduce(0, +) / Double(singles.count)
        let rq = singles.map(\.quality).reduce(0, +) / Double(singles.count)
        entries.append(entry("random", .reference, fixed(CostQuality(cost: rc, quality: rq))))
        return EvaluationReport(testQueries: test.queryCount, excludedTestQueries: excludedTestQueries, lambdas: lambdas, window: window,
                                bestSingleModel: test.models[best], singleModels: singles, entries: entries)
    }
}
