import FedRouteNumerics

/// A router's estimates for a batch of queries: predicted score Â and cost Ĉ (USD) per model.
///
/// `available` is false where the router has no estimate (e.g. a K-Means cluster in which a model
/// was never observed); such a model is never chosen for that query.
public struct RouterPredictions: Sendable, Equatable {
    public let models: [String]
    public let rows: Int
    /// Row-major `rows × models.count`.
    public var score: [Double]
    public var cost: [Double]
    public var available: [Bool]

    public init(models: [String], rows: Int, score: [Double], cost: [Double], available: [Bool]) {
        precondition(score.count == rows * models.count && cost.count == score.count && available.count == score.count,
                     "prediction arrays must be rows × models")
        self.models = models
        self.rows = rows
        self.score = score
        self.cost = cost
        self.available = available
    }

    /// The routing rule: for each query, argmax over available models of Â − λ·Ĉ.
    /// Ties go to the lower predicted cost, then the lower model index. A row with no available
    /// model falls back to the lowest predicted cost.
    public func choose(lambda: Double) -> [Int] {
        let m = models.count
        return (0..<rows).map { r in
            var best = -1
            var bestUtility = -Double.infinity
            for j in 0..<m where available[r * m + j] {
                let u = score[r * m + j] - lambda * cost[r * m + j]
                if best < 0 || u > bestUtility || (u == bestUtility && cost[r * m + j] < cost[r * m + best]) {
                    best = j
                    bestUtility = u
                }
            }
            if best >= 0 { return best }
            return (0..<m).min { cost[r * m + $0] < cost[r * m + $1] } ?? 0
        }
    }

    /// The predictions of one row.
    public func row(_ r: Int) -> RouterPredictions {
        let m = models.count
        return RouterPredictions(models: models, rows: 1, score: Array(score[r * m..<(r + 1) * m]),
                                 cost: Array(cost[r * m..<(r + 1) * m]), available: Array(available[r * m..<(r + 1) * m]))
    }

    /// Every model for row `row`, best first under the same rule as `choose(lambda:)`: available
    /// models by utility Â − λ·Ĉ (ties to the lower cost, then the lower index), then unavailable
    /// ones by predicted cost. The gateway falls back along this order.
    public func ranked(row r: Int, lambda: Double) -> [Int] {
        let m = models.count
        let available = (0..<m).filter { self.available[r * m + $0] }
        let unavailable = (0..<m).filter { !self.available[r * m + $0] }
        let byUtility = available.sorted { a, b in
            let ua = score[r * m + a] - lambda * cost[r * m + a], ub = score[r * m + b] - lambda * cost[r * m + b]
            if ua != ub { return ua > ub }
            if cost[r * m + a] != cost[r * m + b] { return cost[r * m + a] < cost[r * m + b] }
            return a < b
        }
        let byCost = unavailable.sorted { a, b in
            cost[r * m + a] != cost[r * m + b] ? cost[r * m + a] < cost[r * m + b] : a < b
        }
        return byUtility + byCost
    }
}

/// Something that predicts per-model quality and cost from query features.
public protocol Router: Sendable {
    var models: [String] { get }
    /// Feature dimension the router expects.
    var inputDimension: Int { get }
    func predict(features: Matrix) throws -> RouterPredictions
}

extension Router {
    /// Checks the feature matrix before prediction.
    func validate(_ features: Matrix) throws {
        guard features.cols == inputDimension else {
            throw RouterError.dimensionMismatch(expected: inputDimension, got: features.cols)
        }
        guard features.isFinite else { throw RouterError.nonFiniteInput }
    }
}

/// Errors from training, using or loading routers.
public enum RouterError: Error, CustomStringConvertible, Equatable {
    case dimensionMismatch(expected: Int, got: Int)
    case nonFiniteInput
    case noTrainingData(String)
    case invalidConfiguration(String)
    case modelMismatch(expected: [String], got: [String])
    case diverged(String)

    public var description: String {
        switch self {
        case .dimensionMismatch(let e, let g): return "features have dimension \(g), the router expects \(e)"
        case .nonFiniteInput: return "features contain NaN or infinity"
        case .noTrainingData(let why): return "no training data: \(why)"
        case .invalidConfiguration(let why): return "invalid configuration: \(why)"
        case .modelMismatch(let e, let g): return "models \(g) do not match the router's \(e)"
        case .diverged(let why): return "training diverged: \(why)"
        }
    }
}

/// Training progress reported to a caller (the CLI draws a bar from it).
public struct TrainingProgress: Sendable {
    public var stage: String
    public var step: Int
    public var total: Int
    public var loss: Double?

    public init(stage: String, step: Int, total: Int, loss: Double? = nil) {
        self.stage = stage
        self.step = step
        self.total = total
        self.loss = loss
    }
}

public typealias ProgressHandler = @Sendable (TrainingProgress) -> Void
