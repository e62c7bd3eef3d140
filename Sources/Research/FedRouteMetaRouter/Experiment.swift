import FedRouteData
import FedRouteNumerics
import Foundation

/// A primary/alternative pair from an evaluation table with gold gains and a simulated judge.
///
/// Gold gain ψ(q) = score(primary) − score(alternative) from the table (RouteLLM: correctness, so
/// ψ ∈ {−1, 0, 1}). The judge is simulated with a documented, query-dependent bias:
///
///   y(q) = a·(ψ(q) − Δ(q)) + b + ε,   Δ(q) = δ_task(q) + β·ℓ(q),   ε ~ N(0, (a·σ)²)
///
/// with a judge scale `a` and offset `b` (a 1–10 judge's score difference), one bias δ_t ~ N(μ_δ, s_δ²)
/// per task, and ℓ(q) the standardised log length of the query (judges favour the primary's
/// answers more on some subjects and on longer questions). Every draw takes `seed`.
public struct JudgedPair: Sendable {
    public var primary: String
    public var alternative: String
    public var texts: [String]
    public var tasks: [String]
    public var gold: [Double]
    public var judge: [Double]
    /// The bias Δ(q) on the gold scale (known only because it is simulated).
    public var bias: [Double]
    /// Cost of the primary minus cost of the alternative, USD.
    public var costGap: [Double]
    public var alternativeScore: [Double]
    /// ℓ(q): the standardised log UTF-8 length of each query (the judge's length bias acts on it).
    public var lengthScore: [Double]

    public struct JudgeModel: Sendable, Codable, Equatable {
        public var scale = 2.5
        public var offset = 5.0
        public var taskBiasMean = 0.3
        public var taskBiasSD = 0.4
        public var lengthBias = 0.2
        public var noise = 0.5
        public init() {}
    }

    /// Builds the pair from the rows of `table` where both models were evaluated.
    public init(table: EvaluationTable, primary: String, alternative: String, judge: JudgeModel = JudgeModel(), seed: UInt64) throws {
        guard let p = table.modelIndex(primary) else { throw MetaRouterError.invalidInput("model '\(primary)' is not in the table (\(table.models.joined(separator: ", ")))") }
        guard let a = table.modelIndex(alternative) else { throw MetaRouterError.invalidInput("model '\(alternative)' is not in the table (\(table.models.joined(separator: ", ")))") }
        let rows = (0..<table.queryCount).filter { table.isObserved($0, p) && table.isObserved($0, a) }
        guard rows.count >= 20 else { throw MetaRouterError.noRows("only \(rows.count) queries have both models evaluated") }
        self.primary = primary
        self.alternative = alternative
        texts = rows.map { table.queries[$0].text }
        tasks = rows.map { table.queries[$0].task }
        gold = rows.map { table.score($0, p)! - table.score($0, a)! }
        costGap = rows.map { table.cost($0, p)! - table.cost($0, a)! }
        alternativeScore = rows.map { table.score($0, a)! }
        var rng = SeededRandom(seed: seed)
        var taskBias: [String: Double] = [:]
        for t in Set(tasks).sorted() { taskBias[t] = judge.taskBiasMean + judge.taskBiasSD * rng.nextGaussian() }
        let logLength = texts.map { log(Double(max(1, $0.utf8.count))) }
        let mean = logLength.reduce(0, +) / Double(logLength.count)
        let sd = max(1e-9, (logLength.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(logLength.count)).squareRoot())
        lengthScore = logLength.map { ($0 - mean) / sd }
        bias = zip(tasks, lengthScore).map { taskBias[$0]! + judge.lengthBias * $1 }
        self.judge = zip(gold, bias).map { judge.scale * ($0 - $1) + judge.offset + judge.scale * judge.noise * rng.nextGaussian() }
    }

    public var count: Int { gold.count }
}

/// What the two-model and the M-model split experiments share: gold and judge sizes, splits,
/// clients of the federated variant and the estimators' configuration.
public protocol MetaRouterSplitSettings {
    var goldSizes: [Int] { get set }
    var judgeSize: Int { get set }
    var splits: Int { get set }
    var seed: UInt64 { get set }
    /// Clients for the federated variant (rows spread uniformly at random).
    var clients: Int { get set }
    var configuration: MetaRouterConfiguration { get set }
    /// Append ℓ(q), the standardised log query length, to every method's features.
    var lengthFeature: Bool { get set }
    /// The design of the R/DR bias regression Δ̂.
    var biasBasis: MetaRouterExperiment.BiasBasis { get set }
}

/// The Meta-Router experiment: for many random splits, n gold and m judge training rows and a
/// test set; every estimator's efficiency-gain curve over the primary-usage ratio.
public enum MetaRouterExperiment {
    public struct Settings: MetaRouterSplitSettings, Sendable, Codable {
        public var goldSizes = [50, 100, 200]
        public var judgeSize = 4000
        public var testFraction = 0.2
        public var splits = 50
        public var seed: UInt64 = 0
        /// Clients for the federated variant (rows spread uniformly at random).
        public var clients = 5
        public var configuration = MetaRouterConfiguration()
        public var usageGrid: [Double] = stride(from: 0.0, through: 1.0, by: 0.05).map { $0 }
        /// Append ℓ(q) to every method's features (hashed TF-IDF is length-normalised, so without
        /// it no method can see the length a judge reacts to).
        public var lengthFeature = true
        /// The design of the R/DR bias regression Δ̂.
        public var biasBasis = BiasBasis.features
        public init() {}
    }

    /// One split's training rows for gold size n: the first n rows of the pool are gold, the next
    /// `judge` are judge rows; each row's cross-fitting fold is hashed from (split, row), so it does
    /// not depend on how the rows are spread over clients.
    static func trainingRows(pool: [Int], gold n: Int, judge: Int, split: Int, folds: Int) -> (rows: [Int], isGold: [Bool], fold: [Int]) {
        let rows = Array(pool[0..<min(pool.count, n + judge)])
        return (rows, rows.indices.map { $0 < n }, rows.map { Int(FNV1a.hash("\(split):\($0)") % UInt64(folds)) })
    }

    /// What the R/DR learners regress the judge's bias on.
    public enum BiasBasis: String, Sendable, Codable, CaseIterable {
        /// The same features as the gain (the general CATE).
        case features
        /// An intercept and ℓ(q) only: the premise that the judge's bias is simpler than the gain.
        case length
    }

    /// Methods compared: the estimators, the oracle regressor (ridge on gold labels of all n + m
    /// training rows) and the federated R/DR learners.
    public static let methods: [String] = GainEstimator.allCases.map(\.rawValue) + ["oracle", "federated r-learner", "federated dr-learner"]

    public struct Curve: Sendable, Codable {
        public var method: String
        public var goldSize: Int
        /// Median over splits of Q(ρ) − Q_random(ρ) at each usage ratio of the grid.
        public var medianGain: [Double]
        /// Median over splits of the mean gain over the grid (the area under the gain curve).
        public var medianArea: Double
        /// Median over splits of area / (perfect-ranking area).
        public var medianShareOfPerfect: Double
    }

    public struct Result: Sendable, Codable {
        public var settings: Settings
        public var usageGrid: [Double]
        public var curves: [Curve]
        /// Largest |ψ̂_federated − ψ̂_centralized| over all test predictions, splits and sizes.
        public var federatedMaxDifference: Double
        public var perfectMedianArea: [Int: Double]
    }

    /// Efficiency gain Q(ρ) − Q_random(ρ) for a ranking score on the test rows: the primary is used
    /// on the ⌈ρN⌉ rows with the highest score.
    public static func gains(score: [Double], gold: [Double], grid: [Double]) -> [Double] {
        let n = gold.count
        let order = score.indices.sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }
        var prefix = [0.0]
        for i in order { prefix.append(prefix.last! + gold[i]) }
        let meanGain = prefix.last! / Double(n)
        return grid.map { rho in
            let k = min(n, Int((rho * Double(n)).rounded(.up)))
            return prefix[k] / Double(n) - rho * meanGain
        }
    }

    public static func run(pair: JudgedPair, features base: Matrix, settings s: Settings, progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        guard base.rows == pair.count else { throw MetaRouterError.invalidInput("\(base.rows) feature rows for \(pair.count) queries") }
        let features = s.lengthFeature ? withLengthColumn(base, pair.lengthScore) : base
        let lengthColumn = Matrix(rows: pair.count, cols: 1, data: pair.lengthScore.map(Float.init))
        let biasDesign: Matrix? = s.biasBasis == .length ? lengthColumn : nil
        let testCount = Int(Double(pair.count) * s.testFraction)
        let maxGold = s.goldSizes.max() ?? 0
        guard testCount >= 10, pair.count - testCount >= maxGold + 10 else {
            throw MetaRouterError.noRows("\(pair.count) queries cannot hold a test set of \(testCount) and \(maxGold) gold rows")
        }
        var areas: [String: [Int: [Double]]] = [:], shares: [String: [Int: [Double]]] = [:], curves: [String: [Int: [[Double]]]] = [:]
        var perfect: [Int: [Double]] = [:]
        var maxDifference = 0.0
        let total = s.splits * s.goldSizes.count
        var done = 0
        for split in 0..<s.splits {
            var rng = SeededRandom(seed: SeededRandom(seed: s.seed).derivedSeed(UInt64(split)))
            let order = rng.permutation(pair.count)
            let test = Array(order[0..<testCount])
            let pool = Array(order[testCount...])
            let testGold = test.map { pair.gold[$0] }
            let perfectGains = gains(score: testGold, gold: testGold, grid: s.usageGrid)
            let perfectArea = perfectGains.reduce(0, +) / Double(perfectGains.count)
            let testFeatures = features.gatherRows(test)
            for n in s.goldSizes {
                let (rows, isGold, fold) = trainingRows(pool: pool, gold: n, judge: s.judgeSize, split: split, folds: s.configuration.folds)
                let trainFeatures = features.gatherRows(rows)
                let labels = rows.enumerated().map { i, r in i < n ? pair.gold[r] : pair.judge[r] }
                // Federated: the same rows spread over clients.
                let owner = rows.indices.map { _ in rng.nextInt(below: s.clients) }
                let fitted = try fitMethods(trainFeatures: trainFeatures, isGold: isGold, labels: labels, goldLabels: rows.map { pair.gold[$0] }, fold: fold,
                                            biasFeatures: biasDesign?.gatherRows(rows), owner: owner, clients: s.clients,
                                            testFeatures: testFeatures, configuration: s.configuration)
                maxDifference = max(maxDifference, fitted.maxDifference)
                let predictions = fitted.predictions
                for (method, p) in predictions {
                    let g = gains(score: p, gold: testGold, grid: s.usageGrid)
                    let area = g.reduce(0, +) / Double(g.count)
                    areas[method, default: [:]][n, default: []].append(area)
                    shares[method, default: [:]][n, default: []].append(perfectArea > 0 ? area / perfectArea : 0)
                    curves[method, default: [:]][n, default: []].append(g)
                }
                perfect[n, default: []].append(perfectArea)
                done += 1
                progress?(done, total)
            }
        }
        var out: [Curve] = []
        for method in methods {
            for n in s.goldSizes {
                let c = curves[method]![n]!
                out.append(Curve(
                    method: method, goldSize: n,
                    medianGain: s.usageGrid.indices.map { i in median(c.map { $0[i] }) },
                    medianArea: median(areas[method]![n]!), medianShareOfPerfect: median(shares[method]![n]!)))
            }
        }
        return Result(settings: s, usageGrid: s.usageGrid, curves: out, federatedMaxDifference: maxDifference,
                      perfectMedianArea: perfect.mapValues(median))
    }

    /// `base` with ℓ(q) appended as its last column.
    static func withLengthColumn(_ base: Matrix, _ length: [Double]) -> Matrix {
        var features = Matrix(rows: base.rows, cols: base.cols + 1)
        for r in 0..<base.rows {
            for c in 0..<base.cols { features[r, c] = base[r, c] }
            features[r, base.cols] = Float(length[r])
        }
        return features
    }

    /// Fits every estimator on one training set, the federated R/DR learners on the same rows spread
    /// over `clients` by `owner`, and the oracle on `goldLabels` of every row; returns the test
    /// predictions by method name and the largest federated-vs-centralized difference.
    static func fitMethods(trainFeatures: Matrix, isGold: [Bool], labels: [Double], goldLabels: [Double], fold: [Int], biasFeatures: Matrix?,
                           owner: [Int], clients: Int, testFeatures: Matrix, configuration: MetaRouterConfiguration) throws -> (predictions: [String: [Double]], maxDifference: Double) {
        let testRows = Array(0..<testFeatures.rows)
        let central = try MetaRouterShard(features: trainFeatures, isGold: isGold, label: labels, fold: fold, biasFeatures: biasFeatures)
        let shards = try (0..<clients).map { c -> MetaRouterShard in
            let mine = labels.indices.filter { owner[$0] == c }
            return try MetaRouterShard(features: trainFeatures.gatherRows(mine), isGold: mine.map { isGold[$0] }, label: mine.map { labels[$0] },
                                       fold: mine.map { fold[$0] }, biasFeatures: biasFeatures?.gatherRows(mine))
        }.filter { $0.features.rows > 0 }
        var predictions: [String: [Double]] = [:]
        var maxDifference = 0.0
        for e in GainEstimator.allCases {
            predictions[e.rawValue] = try MetaRouter.fit(e, shards: [central], configuration: configuration).predict(testFeatures, rows: testRows)
        }
        for e in [GainEstimator.rLearner, .drLearner] {
            let p = try MetaRouter.fit(e, shards: shards, configuration: configuration).predict(testFeatures, rows: testRows)
            for (a, b) in zip(p, predictions[e.rawValue]!) { maxDifference = max(maxDifference, abs(a - b)) }
            predictions["federated " + e.rawValue] = p
        }
        let oracle = try MetaRouterShard(features: trainFeatures, isGold: goldLabels.map { _ in true }, label: goldLabels, fold: fold)
        predictions["oracle"] = try MetaRouter.fit(.goldOnly, shards: [oracle], configuration: configuration).predict(testFeatures, rows: testRows)
        return (predictions, maxDifference)
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
