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
