import FedRouteData
import FedRouteNumerics

/// The k-nearest-neighbour router: per model, the mean observed score and cost over the `k`
/// training queries most cosine-similar to the query. A model not observed among the neighbours
/// is unavailable for that query; if none is, the per-model training means are used.
///
/// With `ScoreShrinkage.empiricalBayes` (the default for new routers) a neighbourhood's mean score
/// is shrunk towards the model's training mean with the per-model strength `shrinkageStrength`,
/// estimated at training time from the neighbourhoods of up to `priorSample` training queries
/// (each without itself), as `ScoreShrinkage.prior` describes.
public struct KNNRouter: Router, Equatable {
    public let models: [String]
    public let k: Int
    public let shrinkage: ScoreShrinkage
    /// κ per model (0: raw means; ∞: the training mean).
    public let shrinkageStrength: [Double]
    /// Training queries whose neighbourhoods estimate the shrinkage strength.
    public static let priorSample = 1024
    /// Training features, rows L2-normalised.
    public let reference: Matrix
    /// The training table's cells, row-aligned with `reference`.
    public let scores: [Double]
    public let costs: [Double]
    public let observed: [Bool]

    public var inputDimension: Int { reference.cols }

    public init(models: [String], k: Int, reference: Matrix, scores: [Double], costs: [Double], observed: [Bool],
                shrinkage: ScoreShrinkage = .none, shrinkageStrength: [Double]? = nil) throws {
        guard k >= 1 else { throw RouterError.invalidConfiguration("k must be ≥ 1") }
        guard reference.rows >= 1 else { throw RouterError.noTrainingData("kNN needs at least one training query") }
        let n = reference.rows * models.count
        guard scores.count == n, costs.count == n, observed.count == n else {
            throw RouterError.invalidConfiguration("kNN cells must be \(reference.rows)×\(models.count)")
        }
        guard reference.isFinite else { throw RouterError.nonFiniteInput }
        let strength = shrinkageStrength ?? Array(repeating: 0, count: models.count)
        guard strength.count == models.count, strength.allSatisfy({ !$0.isNaN && $0 >= 0 }) else {
            throw RouterError.invalidConfiguration("kNN shrinkage strengths must be \(models.count) values ≥ 0")
        }
        self.shrinkage = shrinkage
        self.shrinkageStrength = strength
        self.models = models
        self.k = k
        self.reference = reference
        self.scores = scores
        self.costs = costs
        self.observed = observed
    }

    public static func train(features: Matrix, table: EvaluationTable, k: Int) throws -> KNNRouter {
        guard features.rows == table.queryCount else {
            throw RouterError.invalidConfiguration("\(features.rows) feature rows for \(table.queryCount) queries")
        }
        let plain = try KNNRouter(models: table.models, k: k, reference: normalizedRows(features), scores: table.scores, costs: table.costs,
                                  observed: table.observed)
        return try KNNRouter(models: plain.models, k: k, reference: plain.reference, scores: plain.scores, costs: plain.costs, observed: plain.observed,
                             shrinkage: .empiricalBayes, shrinkageStrength: plain.estimatedShrinkageStrength())
    }

    /// κ per model from the neighbourhoods of up to `priorSample` evenly spaced training queries,
    /// each query's own cells left out (else every neighbourhood would contain its own grade).
    func estimatedShrinkageStrength() -> [Double] {
        let n = reference.rows, m = models.count
        let step = max(1, (n + Self.priorSample - 1) / Self.priorSample)
        let sample = Array(stride(from: 0, to: n, by: step))
        let sims = reference.gatherRows(sample).multiplied(by: reference, transposeOther: true)
        var count = [Double](repeating: 0, count: sample.count * m), scoreSum = count, costSum = count
        for (g, self_) in sample.enumerated() {
            for i in neighbours(Array(sims.data[(g * n)..<((g + 1) * n)]), excluding: self_) {
                for j in 0..<m where observed[i * m + j] {
                    count[g * m + j] += 1; scoreSum[g * m + j] += scores[i * m + j]; costSum[g * m + j] += costs[i * m + j]
                }
            }
        }
        return ScoreShrinkage.prior(groups: sample.count, models: m, count: count, scoreSum: scoreSum, costSum: costSum).strength
    }

    /// The `k` most similar training rows, most similar first (ties to the lower index), optionally
    /// without one row: one bounded insertion pass instead of sorting every training row.
    func neighbours(_ similarities: [Float], excluding: Int? = nil) -> [Int] {
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in similarities.indices where i != excluding {
            let s = similarities[i]
            // Rows come in index order, so an equal similarity never moves ahead of an earlier row.
            if best.count == k, let last = best.last, s <= similarities[last] { continue }
            var position = best.count
            while position > 0, s > similarities[best[position - 1]] { position -= 1 }
            best.insert(i, at: position)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    static func normalizedRows(_ x: Matrix) -> Matrix {
        var out = x
        let norms = x.rowSquaredNorms()
        for r in 0..<x.rows where norms[r] > 0 {
            let inv = 1 / norms[r].squareRoot()
            for c in 0..<x.cols { out.data[r * x.cols + c] *= inv }
        }
        return out
    }

    public func predict(features: Matrix) throws -> RouterPredictions {
        try validate(features)
        let m = models.count
        let sims = Self.normalizedRows(features).multiplied(by: reference, transposeOther: true)
        let n = reference.rows
        var fallbackN = [Double](repeating: 0, count: m), fallbackS = fallbackN, fallbackC = fallbackN
        for i in 0..<(n * m) where observed[i] { fallbackN[i % m] += 1; fallbackS[i % m] += scores[i]; fallbackC[i % m] += costs[i] }
        let prior = ScoreShrinkage.Prior(meanScore: zip(fallbackS, fallbackN).map { $1 > 0 ? $0 / $1 : 0 }, strength: shrinkageStrength,
                                         meanCost: zip(fallbackC, fallbackN).map { $1 > 0 ? $0 / $1 : 0 }, count: fallbackN)
        var score = [Double](repeating: 0, count: features.rows * m)
        var cost = score
        var available = [Bool](repeating: false, count: score.count)
        for r in 0..<features.rows {
            // Top-k by similarity; ties broken by lower training index (deterministic).
            let nearest = neighbours(Array(sims.data[(r * n)..<((r + 1) * n)]))
            var cnt = [Double](repeating: 0, count: m), s = cnt, c = cnt
            for i in nearest { for j in 0..<m where observed[i * m + j] { cnt[j] += 1; s[j] += scores[i * m + j]; c[j] += costs[i * m + j] } }
            let useFallback = cnt.allSatisfy { $0 == 0 }
            for j in 0..<m {
                let (nn, ss, cc) = useFallback ? (fallbackN[j], fallbackS[j], fallbackC[j]) : (cnt[j], s[j], c[j])
                if let e = prior.estimate(model: j, n: nn, s: ss, c: cc, shrinkage: shrinkage) {
                    score[r * m + j] = e.score; cost[r * m + j] = e.cost; available[r * m + j] = true
                }
            }
        }
        return RouterPredictions(models: models, rows: features.rows, score: score, cost: cost, available: available)
    }
}
