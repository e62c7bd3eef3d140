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
    /// A safe router's gate: in its fallback bands best-single@λ comes first (see `SafetyGate`).
    public var safety: SafetyGate?

    public init(models: [String], rows: Int, score: [Double], cost: [Double], available: [Bool], safety: SafetyGate? = nil) {
        precondition(score.count == rows * models.count && cost.count == score.count && available.count == score.count,
                     "prediction arrays must be rows × models")
        self.models = models
        self.rows = rows
        self.score = score
        self.cost = cost
        self.available = available
        self.safety = safety
    }

    /// Whether λ is a usable willingness to pay: finite and ≥ 0. Every command, models.yaml and the
    /// gateway's `route:<λ>` model check λ with this.
    public static func isValid(lambda: Double) -> Bool { lambda.isFinite && lambda >= 0 }

    /// Throws `RouterError.invalidLambda` unless `isValid(lambda:)`.
    public static func validate(lambda: Double) throws {
        guard isValid(lambda: lambda) else { throw RouterError.invalidLambda(lambda) }
    }

    /// The utility Â − λ·Ĉ of model `j` for row `r`.
    public func utility(row r: Int, model j: Int, lambda: Double) -> Double {
        let i = r * models.count + j
        return score[i] - lambda * cost[i]
    }

    /// The routing rule, as an order on the models of row `r`: available models before unavailable
    /// ones; among available ones the higher utility Â − λ·Ĉ, then the lower predicted cost; among
    /// unavailable ones the lower predicted cost; then the lower model index.
    /// `choose`, `ranked` and everything that routes (the CLI, the gateway) use this one order.
    public func precedes(_ a: Int, _ b: Int, row r: Int, lambda: Double) -> Bool {
        if a != b, let f = safety?.fallbackModel(at: lambda), a == f || b == f { return a == f }
        let m = models.count
        let (ia, ib) = (r * m + a, r * m + b)
        if available[ia] != available[ib] { return available[ia] }
        if available[ia] {
            let ua = score[ia] - lambda * cost[ia], ub = score[ib] - lambda * cost[ib]
            if ua != ub { return ua > ub }
        }
        if cost[ia] != cost[ib] { return cost[ia] < cost[ib] }
        return a < b
    }

    /// For each query, the first model of the routing rule (`precedes`): the argmax over available
    /// models of Â − λ·Ĉ, or the cheapest predicted model when none is available.
    public func choose(lambda: Double) -> [Int] {
        (0..<rows).map { r in
            var best = 0
            for j in 1..<max(1, models.count) where precedes(j, best, row: r, lambda: lambda) { best = j }
            return best
        }
    }

    /// The predictions of one row.
    public func row(_ r: Int) -> RouterPredictions {
        let m = models.count
        return RouterPredictions(models: models, rows: 1, score: Array(score[r * m..<(r + 1) * m]),
                                 cost: Array(cost[r * m..<(r + 1) * m]), available: Array(available[r * m..<(r + 1) * m]), safety: safety)
    }

    /// Every model for row `row`, best first under the routing rule (`precedes`). The gateway falls
    /// back along this order; `fedroute route` prints it.
    public func ranked(row r: Int, lambda: Double) -> [Int] {
        models.indices.sorted { precedes($0, $1, row: r, lambda: lambda) }
    }
}
