import FedRouteData
import FedRouteNumerics

/// The k-nearest-neighbour router: per model, the mean observed score and cost over the `k`
/// training queries most cosine-similar to the query. A model not observed among the neighbours
/// is unavailable for that query; if none is, the per-model training means are used.
public struct KNNRouter: Router, Equatable {
    public let models: [String]
    public let k: Int
    /// Training features, rows L2-normalised.
    public let reference: Matrix
    /// The training table's cells, row-aligned with `reference`.
    public let scores: [Double]
    public let costs: [Double]
    public let observed: [Bool]

    public var inputDimension: Int { reference.cols }

    public init(models: [String], k: Int, reference: Matrix, scores: [Double], costs: [Double], observed: [Bool]) throws {
        guard k >= 1 else { throw RouterError.invalidConfiguration("k must be ≥ 1") }
        guard reference.rows >= 1 else { throw RouterError.noTrainingData("kNN needs at least one training query") }
        let n = reference.rows * models.count
        guard scores.count == n, costs.count == n, observed.count == n else {
            throw RouterError.invalidConfiguration("kNN cells must be \(reference.rows)×\(models.count)")
        }
        guard reference.isFinite else { throw RouterError.nonFiniteInput }
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
        return try KNNRouter(models: table.models, k: k, reference: normalizedRows(features), scores: table.scores, costs: table.costs, observed: table.observed)
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
        let kk = min(k, n)
        var fallbackN = [Double](repeating: 0, count: m), fallbackS = fallbackN, fallbackC = fallbackN
        for i in 0..<(n * m) where observed[i] { fallbackN[i % m] += 1; fallbackS[i % m] += scores[i]; fallbackC[i % m] += costs[i] }
        var score = [Double](repeating: 0, count: features.rows * m)
        var cost = score
        var available = [Bool](repeating: false, count: score.count)
        for r in 0..<features.rows {
            // Top-k by similarity; ties broken by lower training index (deterministic).
            let row = Array(sims.data[(r * n)..<((r + 1) * n)])
            let neighbours = (0..<n).sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(kk)
            var cnt = [Double](repeating: 0, count: m), s = cnt, c = cnt
            for i in neighbours { for j in 0..<m where observed[i * m + j] { cnt[j] += 1; s[j] += scores[i * m + j]; c[j] += costs[i * m + j] } }
            let useFallback = cnt.allSatisfy { $0 == 0 }
            for j in 0..<m {
                let (nn, ss, cc) = useFallback ? (fallbackN[j], fallbackS[j], fallbackC[j]) : (cnt[j], s[j], c[j])
                if nn > 0 { score[r * m + j] = ss / nn; cost[r * m + j] = cc / nn; available[r * m + j] = true }
            }
        }
        return RouterPredictions(models: models, rows: features.rows, score: score, cost: cost, available: available)
    }
}
