import FedRouteNumerics

extension EvaluationTable {
    /// Splits into (train, test): uses the source's split labels where every query has one, else a
    /// seeded random split with `testFraction` of the queries in test.
    public func trainTestSplit(testFraction: Double, seed: UInt64, ignoreSourceSplit: Bool = false) -> (train: EvaluationTable, test: EvaluationTable) {
        if !ignoreSourceSplit, queries.allSatisfy({ $0.split != nil }), queries.contains(where: { $0.split == .test }) {
            return (filter { queries[$0].split == .train }, filter { queries[$0].split == .test })
        }
        var rng = SeededRandom(seed: seed)
        let order = rng.permutation(queryCount)
        let nTest = Int((Double(queryCount) * testFraction).rounded())
        return (subset(Array(order[nTest...]).sorted()), subset(Array(order[..<nTest]).sorted()))
    }
}

extension EvaluationTable {
    /// A seeded validation hold-out: the ascending row indices kept for fitting and held out. A
    /// fraction of 0 holds nothing out; otherwise at least one row is held out and one kept (a
    /// table of one row keeps it). The training paths that select a model or calibrate a safety gate
    /// on held-out rows (`simulate`, `fedroute client --validation-fraction`, `train --safe`) use it.
    public func holdOutRows(fraction: Double, seed: UInt64) -> (fit: [Int], validation: [Int]) {
        guard fraction > 0, queryCount >= 2 else { return (Array(0..<queryCount), []) }
        var rng = SeededRandom(seed: seed)
        let order = rng.permutation(queryCount)
        let held = min(queryCount - 1, max(1, Int((Double(queryCount) * min(1, fraction)).rounded())))
        return (Array(order[held...]).sorted(), Array(order[..<held]).sorted())
    }
}
