import FedRouteData

/// Each model's mean observed score and cost on a holder's training rows: the control variate of
/// the safety gate's doubly-robust utility estimate (`ValidationStatistics`). Its utility at λ is
/// `meanScore − λ·meanCost`; a model with no training observation has none (0, which leaves that
/// model's term plain inverse-propensity weighting).
public struct UtilityBaseline: Sendable, Equatable {
    public var meanScore: [Double?]
    public var meanCost: [Double?]

    public init(meanScore: [Double?], meanCost: [Double?]) {
        self.meanScore = meanScore
        self.meanCost = meanCost
    }

    /// The per-model means of `table`'s observed cells.
    public init(table: EvaluationTable) {
        let rows = DatasetSummary(table).perModel
        self.init(meanScore: rows.map(\.meanScore), meanCost: rows.map(\.meanCost))
    }

    /// Model `m`'s baseline utility at `lambda` (0 without a training observation).
    public func utility(model m: Int, lambda: Double) -> Double {
        guard let s = meanScore[m], let c = meanCost[m] else { return 0 }
        return s - lambda * c
    }
}
