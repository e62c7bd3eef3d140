import FedRouteData
import FedRouteEvaluation
import FedRouteNumerics
import Foundation

/// M candidate models against one reference model, each with gold and simulated judge gains.
///
/// For every candidate j, ψ_j(q) = score_j − score_ref is its gold gain over the reference and the
/// judge label is simulated exactly as in `JudgedPair` (its own per-task bias draw, the shared
/// length bias), so each candidate's gain is debiased separately against the same reference.
public struct JudgedModels: Sendable {
    public var reference: String
    public var candidates: [JudgedPair]
    public var referenceScore: [Double]
    public var referenceCost: [Double]

    public var count: Int { referenceScore.count }
    public var texts: [String] { candidates[0].texts }

    /// Uses the rows of `table` where the reference and every candidate were evaluated.
    public init(table: EvaluationTable, reference: String, candidates names: [String], judge: JudgedPair.JudgeModel = .init(), seed: UInt64) throws {
        guard !names.isEmpty else { throw MetaRouterError.invalidInput("name at least one candidate model besides the reference") }
        guard !names.contains(reference), Set(names).count == names.count else { throw MetaRouterError.invalidInput("candidates must be distinct and differ from the reference '\(reference)'") }
        let columns = try ([reference] + names).map { name -> Int in
            guard let j = table.modelIndex(name) else { throw MetaRouterError.invalidInput("model '\(name)' is not in the table (\(table.models.joined(separator: ", ")))") }
            return j
        }
        let rows = (0..<table.queryCount).filter { r in columns.allSatisfy { table.isObserved(r, $0) } }
        let shared = table.subset(rows)
        let rng = SeededRandom(seed: seed)
        candidates = try names.enumerated().map { i, name in
            try JudgedPair(table: shared, primary: name, alternative: reference, judge: judge, seed: rng.derivedSeed(UInt64(i)))
        }
        self.reference = reference
        referenceScore = (0..<shared.queryCount).map { shared.score($0, columns[0])! }
        referenceCost = (0..<shared.queryCount).map { shared.cost($0, columns[0])! }
    }
}

/// The M-model Meta-Router: one debiased gain model per candidate; a query goes to the candidate
/// maximising ψ̂_j(q) − w·(cost_j − cost_ref), or stays with the reference when none is positive.
public enum MultiModelMetaRouter {
    /// Model chosen for each row (-1 = reference) from per-candidate predicted gains and cost gaps
    /// (`[candidate][row]`).
    public static func route(gains: [[Double]], costGaps: [[Double]], weight w: Double) -> [Int] {
        guard let rows = gains.first?.count else { return [] }
        return (0..<rows).map { r in
            var best = -1, value = 0.0
            for j in gains.indices {
                let v = gains[j][r] - w * costGaps[j][r]
                if v > value { best = j; value = v }
            }
            return best
        }
    }

    public struct Settings: MetaRouterSplitSettings, Sendable, Codable {
        public var goldSizes = [50, 100]
        public var judgeSize = 2000
        public var testFraction = 0.2
        public var splits = 50
        public var seed: UInt64 = 0
        public var clients = 5
        public var configuration = MetaRouterConfiguration()
        /// Cost weights w (per USD) swept to trace each method's quality–cost curve.
        public var weights: [Double] = [0] + FrontierMetrics.geomspace(1, 1e5, count: 41)
        public var lengthFeature = true
        public var biasBasis = MetaRouterExperiment.BiasBasis.features
        public init() {}
    }

    public struct MethodResult: Sendable, Codable {
        public var method: String
        public var goldSize: Int
        /// Median over splits of the normalised area under the quality–cost hull, over the cost
        /// range from the reference alone to the most expensive candidate alone.
        public var medianArea: Double
        /// Median over splits of the best quality reached.
        public var medianMaxQuality: Double
    }

    public struct Result: Sendable, Codable {
        public var settings: Settings
        public var reference: String
        public var candidates: [String]
        public var methods: [MethodResult]
        /// Median area of the hull of the single models (reference and candidates alone).
        public var singleModelsMedianArea: Double
        /// Largest |ψ̂_federated − ψ̂_centralized| over candidates, splits and sizes.
        public var federatedMaxDifference: Double
    }

    public static let methods: [String] = GainEstimator.allCases.map(\.rawValue) + ["oracle", "federated r-learner", "federated dr-learner"]

    public static func run(models: JudgedModels, features base: Matrix, settings s: Settings, progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        guard base.rows == models.count else { throw MetaRouterError.invalidInput("\(base.rows) feature rows for \(models.count) queries") }
        let length = models.candidates[0].lengthScore
        let features = s.lengthFeature ? MetaRouterExperiment.withLengthColumn(base, length) : base
        let biasDesign: Matrix? = s.biasBasis == .length ? Matrix(rows: models.count, cols: 1, data: length.map(Float.init)) : nil
        let testCount = Int(Double(models.count) * s.testFraction)
        let maxGold = s.goldSizes.max() ?? 0
        guard testCount >= 10, models.count - testCount >= maxGold + 10 else {
            throw MetaRouterError.noRows("\(models.count) queries cannot hold a test set of \(testCount) and \(maxGold) gold rows")
        }
        let M = models.candidates.count
        var areas: [String: [Int: [Double]]] = [:], maxima: [String: [Int: [Double]]] = [:]
        var singleAreas: [Double] = []
        var maxDifference = 0.0
        var done = 0
        for split in 0..<s.splits {
            var rng = SeededRandom(seed: SeededRandom(seed: s.seed).derivedSeed(UInt64(split)))
            let order = rng.permutation(models.count)
            let test = Array(order[0..<testCount]), pool = Array(order[testCount...])
            let testFeatures = features.gatherRows(test)
            let refQuality = test.map { models.referenceScore[$0] }.reduce(0, +) / Double(testCount)
            let refCost = test.map { models.referenceCost[$0] }.reduce(0, +) / Double(testCount)
            let gaps = models.candidates.map { c in test.map { c.costGap[$0] } }
            let golds = models.candidates.map { c in test.map { c.gold[$0] } }
            func point(_ choice: [Int]) -> CostQuality {
                var q = refQuality, cost = refCost
                for (i, j) in choice.enumerated() where j >= 0 {
                    q += golds[j][i] / Double(testCount)
                    cost += gaps[j][i] / Double(testCount)
                }
                return CostQuality(cost: cost, quality: q)
            }
            let singles = [CostQuality(cost: refCost, quality: refQuality)] + (0..<M).map { j in point(Array(repeating: j, count: testCount)) }
            let low = refCost, high = singles.map(\.cost).max()!
            func area(_ points: [CostQuality]) -> Double {
                FrontierMetrics.normalizedArea(FrontierMetrics.nonDecreasingConvexHull(points + [singles[0]]), low: low, high: high)
            }
            singleAreas.append(area(singles))
            for n in s.goldSizes {
                let (rows, isGold, fold) = MetaRouterExperiment.trainingRows(pool: pool, gold: n, judge: s.judgeSize, split: split,
                                                                             folds: s.configuration.folds)
                let trainFeatures = features.gatherRows(rows)
                let trainBias = biasDesign?.gatherRows(rows)
                let owner = rows.indices.map { _ in rng.nextInt(below: s.clients) }
                var predictions: [String: [[Double]]] = [:]
                for c in models.candidates {
                    let fitted = try MetaRouterExperiment.fitMethods(
                        trainFeatures: trainFeatures, isGold: isGold, labels: rows.enumerated().map { i, r in i < n ? c.gold[r] : c.judge[r] },
                        goldLabels: rows.map { c.gold[$0] }, fold: fold, biasFeatures: trainBias, owner: owner, clients: s.clients,
                        testFeatures: testFeatures, configuration: s.configuration)
                    maxDifference = max(maxDifference, fitted.maxDifference)
                    for (method, p) in fitted.predictions { predictions[method, default: []].append(p) }
                }
                for (method, gains) in predictions {
                    let points = s.weights.map { point(route(gains: gains, costGaps: gaps, weight: $0)) }
                    areas[method, default: [:]][n, default: []].append(area(points))
                    maxima[method, default: [:]][n, default: []].append(points.map(\.quality).max() ?? refQuality)
                }
                done += 1
                progress?(done, s.splits * s.goldSizes.count)
            }
        }
        let results = methods.flatMap { method in
            s.goldSizes.map { n in
                MethodResult(method: method, goldSize: n, medianArea: MetaRouterExperiment.median(areas[method]![n]!),
                             medianMaxQuality: MetaRouterExperiment.median(maxima[method]![n]!))
            }
        }
        return Result(settings: s, reference: models.reference, candidates: models.candidates.map(\.primary), methods: results,
                      singleModelsMedianArea: MetaRouterExperiment.median(singleAreas), federatedMaxDifference: maxDifference)
    }
}
