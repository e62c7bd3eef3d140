import FedRouteNumerics

/// Additive sufficient statistics of a weighted ridge regression with intercept: Σ w·x̃x̃ᵀ, Σ w·x̃·z
/// and Σ w over rows, x̃ = [x, 1]. Sums over disjoint row sets (folds, clients) add up, which is
/// what makes cross-fitting cheap and the federated fit equal to the centralized one.
public struct RidgeStatistics: Sendable, Equatable, Codable {
    public let dimension: Int
    /// Row-major (d+1)×(d+1).
    public var xtx: [Double]
    public var xtz: [Double]
    public var weight: Double

    public init(dimension: Int) {
        self.dimension = dimension
        xtx = [Double](repeating: 0, count: (dimension + 1) * (dimension + 1))
        xtz = [Double](repeating: 0, count: dimension + 1)
        weight = 0
    }

    /// Statistics of `rows` of `features` with targets `z` and optional weights (default 1).
    public init(features: Matrix, rows: [Int], z: [Double], weights: [Double]? = nil) {
        precondition(z.count == rows.count && (weights?.count ?? rows.count) == rows.count, "one target and weight per row")
        let d = features.cols
        self.init(dimension: d)
        guard !rows.isEmpty else { return }
        var a = Matrix(rows: rows.count, cols: d + 1)
        for (i, r) in rows.enumerated() {
            let s = Float((weights?[i] ?? 1).squareRoot())
            for j in 0..<d { a.data[i * (d + 1) + j] = features[r, j] * s }
            a.data[i * (d + 1) + d] = s
        }
        let gram = a.multiplied(by: a, transposeSelf: true)
        xtx = gram.data.map(Double.init)
        for (i, r) in rows.enumerated() {
            let w = weights?[i] ?? 1
            for j in 0..<d { xtz[j] += w * Double(features[r, j]) * z[i] }
            xtz[d] += w * z[i]
            weight += w
        }
    }

    public static func + (a: RidgeStatistics, b: RidgeStatistics) -> RidgeStatistics {
        precondition(a.dimension == b.dimension, "ridge statistics of different dimensions")
        var c = a
        for i in c.xtx.indices { c.xtx[i] += b.xtx[i] }
        for i in c.xtz.indices { c.xtz[i] += b.xtz[i] }
        c.weight += b.weight
        return c
    }

    public static func - (a: RidgeStatistics, b: RidgeStatistics) -> RidgeStatistics {
        var negative = b
        for i in negative.xtx.indices { negative.xtx[i] = -negative.xtx[i] }
        for i in negative.xtz.indices { negative.xtz[i] = -negative.xtz[i] }
        negative.weight = -negative.weight
        return a + negative
    }

    /// Solves for the coefficients with penalty `lambda`·Σw on the weights (not on the intercept).
    public func solve(lambda: Double) throws -> RidgeModel {
        guard weight > 0 else { throw MetaRouterError.noRows("a ridge regression has no rows") }
        let n = dimension + 1
        var a = xtx
        for j in 0..<dimension { a[j * n + j] += lambda * weight }
        a[dimension * n + dimension] += 1e-9 * weight
        let beta = try LinearSolve.cholesky(a, xtz, n: n)
        return RidgeModel(weights: Array(beta[0..<dimension]), intercept: beta[dimension])
    }
}

/// A fitted linear predictor z ≈ w·x + b.
public struct RidgeModel: Sendable, Equatable, Codable {
    public var weights: [Double]
    public var intercept: Double

    public init(weights: [Double], intercept: Double) {
        self.weights = weights
        self.intercept = intercept
    }

    /// A model predicting the constant `c`.
    public static func constant(_ c: Double, dimension: Int) -> RidgeModel {
        RidgeModel(weights: [Double](repeating: 0, count: dimension), intercept: c)
    }

    public func predict(_ features: Matrix, row: Int) -> Double {
        var s = intercept
        for j in 0..<weights.count { s += weights[j] * Double(features[row, j]) }
        return s
    }

    public func predict(_ features: Matrix, rows: [Int]) -> [Double] { rows.map { predict(features, row: $0) } }
}

/// Errors of the Meta-Router estimators.
public enum MetaRouterError: Error, CustomStringConvertible, Equatable {
    case noRows(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .noRows(let why): "not enough data: \(why)"
        case .invalidInput(let why): "invalid input: \(why)"
        }
    }
}
