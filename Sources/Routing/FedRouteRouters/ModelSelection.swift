import FedRouteData
import FedRouteNumerics

/// Model selection on held-out rows (issue 16, item 2), the centralized and client-local
/// counterpart of the federation's: the criterion is the Brier score of the predicted scores on the
/// observed validation cells (`ValidationStatistics.brier`), which clients can sum.
public enum ModelSelection {
    /// Held-out rows: features row-aligned with the table.
    public typealias Validation = (features: Matrix, table: EvaluationTable)

    /// The router's Brier score on `validation`, or nil without an observed validation cell.
    public static func brier(_ router: any Router, on validation: Validation) throws -> Double? {
        guard validation.table.queryCount > 0 else { return nil }
        return try ValidationStatistics(predictions: router.predict(features: validation.features), table: validation.table).brier
    }

    /// The K-Means-Router over the cluster counts `candidates` (each capped by the number of
    /// training queries): with `.average` or `.nested`, one clustering per count, combined so; with
    /// `.select`, the count that scores best on `validation` (with no validation cell,
    /// `configuration.clusters`). Either way the statistics then pool the validation rows too
    /// (unless `poolValidation` is false: a router a gate is calibrated on must not have seen its
    /// rows), and `brier` holds each count's validation Brier score (empty without validation cells).
    public static func kmeans(features: Matrix, table: EvaluationTable, configuration: KMeansConfiguration, candidates: [Int],
                              policy: ClusterCountPolicy = .average, validation: Validation?,
                              poolValidation: Bool = true) throws -> (router: KMeansRouter, brier: [Int: Double]) {
        let usable = usableRows(validation)
        let requested = policy == .select && usable == nil ? [configuration.clusters] : candidates
        let ks = Array(Set(requested.map { min($0, features.rows) }.filter { $0 >= 1 })).sorted()
        guard !ks.isEmpty else { throw RouterError.noTrainingData("no cluster count fits \(features.rows) training queries") }
        let train = { (k: Int) throws -> KMeansRouter in
            var c = configuration
            c.clusters = k
            return try KMeansRouter.train(features: features, table: table, configuration: c)
        }
        let routers: [KMeansRouter]
        let scores: [Int: Double]
        switch policy {
        case .select:
            let (chosen, s) = try lowestBrier(ks, on: usable, train: train)
            (routers, scores) = ([chosen], s)
        case .average, .nested:
            routers = try ks.map(train)
            var s: [Int: Double] = [:]
            if let usable, ks.count > 1 { for (k, r) in zip(ks, routers) { s[k] = try brier(r, on: usable) } }
            scores = s
        }
        let resolutions = routers.flatMap(\.resolutions)
        let combined = try KMeansRouter(models: table.models, resolutions: resolutions, combination: policy.combination)
        guard poolValidation, let usable else { return (combined, scores) }
        // The counts are settled: the router's statistics pool the validation rows too (as the
        // federation's final pass 2 does).
        return (try addingHeldOut(combined, validation: usable), scores)
    }

    /// The K-Means-Router with `validation`'s observed cells added to every clustering's statistics.
    public static func addingHeldOut(_ router: KMeansRouter, validation: Validation) throws -> KMeansRouter {
        try router.adding(router.resolutions.map { try ClusterStatistics(centroids: $0.centroids, features: validation.features, table: validation.table) })
    }

    /// The kNN-Router with `validation`'s rows joining `training`'s in its reference set.
    public static func addingHeldOut(_ router: KNNRouter, training: Validation, validation: Validation) throws -> KNNRouter {
        let all = try EvaluationTable.concatenate([training.table, validation.table])
        let x = Matrix(rows: all.queryCount, cols: training.features.cols, data: training.features.data + validation.features.data)
        return try KNNRouter.train(features: x, table: all, k: router.k)
    }

    /// A nonparametric router (K-Means, kNN) with the held-out rows added once they served their
    /// purpose (selection, a safety gate); a router of another family unchanged.
    public static func addingHeldOut(_ router: AnyRouter, training: Validation, validation: Validation) throws -> AnyRouter {
        guard validation.table.queryCount > 0 else { return router }
        if let r = router.as(KMeansRouter.self) { return AnyRouter(try addingHeldOut(r, validation: validation)) }
        if let r = router.as(KNNRouter.self) { return AnyRouter(try addingHeldOut(r, training: training, validation: validation)) }
        return router
    }

    /// The kNN-Router with the neighbour count among `candidates` that scores best on `validation`,
    /// retrained with the validation rows in its reference set unless `poolValidation` is false (with
    /// no validation cell, the first candidate on the training rows).
    public static func knn(features: Matrix, table: EvaluationTable, candidates: [Int], validation: Validation?,
                           poolValidation: Bool = true) throws -> (router: KNNRouter, brier: [Int: Double]) {
        let usable = usableRows(validation)
        let ks = usable == nil ? Array(candidates.filter { $0 >= 1 }.prefix(1)) : Array(Set(candidates.filter { $0 >= 1 })).sorted()
        guard !ks.isEmpty else { throw RouterError.invalidConfiguration("no neighbour count ≥ 1 to choose from") }
        let (chosen, scores) = try lowestBrier(ks, on: usable) { try KNNRouter.train(features: features, table: table, k: $0) }
        guard poolValidation, let usable, !scores.isEmpty else { return (chosen, scores) }
        // The count is chosen: the validation rows join the reference set.
        return (try addingHeldOut(chosen, training: (features, table), validation: usable), scores)
    }

    /// The held-out rows, or nil when none of their cells is observed (nothing to select on).
    static func usableRows(_ validation: Validation?) -> Validation? {
        validation.flatMap { $0.table.observed.contains(true) ? $0 : nil }
    }

    /// Trains a router per count in `ks` (ascending) and keeps the one with the lowest Brier score
    /// on `validation`; with one count or no validation, that first router and no scores.
    static func lowestBrier<R: Router>(_ ks: [Int], on validation: Validation?, train: (Int) throws -> R) throws -> (R, [Int: Double]) {
        var best: (router: R, brier: Double)?
        var scores: [Int: Double] = [:]
        for k in ks {
            let router = try train(k)
            guard ks.count > 1, let validation, let b = try brier(router, on: validation) else { return (router, [:]) }
            scores[k] = b
            if b < best?.brier ?? .infinity { best = (router, b) }
        }
        return (best!.router, scores)
    }
}
