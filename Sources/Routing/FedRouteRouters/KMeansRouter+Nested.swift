import FedRouteNumerics

/// `KMeansCombination.nested`: the strengths derived once in `init` and the coarse-to-fine estimate.
extension KMeansRouter {
    /// κ of one clustering's cells towards `parent` (the coarser estimate at its centres), per model:
    /// σ²/τ² with τ² by the method of moments (see `KMeansCombination.nested`); ∞ when the cells do
    /// not differ from the parent beyond noise or fewer than two observed cells tell, 0 for a model
    /// without noise (the cells' raw means).
    static func nestedStrengths(statistics: ClusterStatistics, parent: (score: [Double], cost: [Double], available: [Bool]),
                                prior: ScoreShrinkage.Prior, models m: Int) -> [Double] {
        (0..<m).map { j in
            let mu = prior.meanScore[j]
            let within = mu * (1 - mu)
            guard within > 0 else { return 0 }
            var spread = 0.0, n = 0.0, cells = 0.0
            for g in 0..<statistics.clusters where statistics.count[g * m + j] > 0 && parent.available[g * m + j] {
                let i = g * m + j
                let d = statistics.scoreSum[i] / statistics.count[i] - parent.score[i]
                spread += statistics.count[i] * d * d
                n += statistics.count[i]
                cells += 1
            }
            guard cells >= 2 else { return .infinity }
            let tau2 = max(0, (spread - cells * within) / n)
            return tau2 > 0 ? within / tau2 : .infinity
        }
    }

    /// The `.nested` estimates of `features`' rows through the clusterings `order` (coarse to fine)
    /// with `strengths[position]` for every position after the first.
    static func nestedEstimates(features: Matrix, resolutions: [KMeansResolution], priors: [ScoreShrinkage.Prior], order: [Int],
                                strengths: [[Double]], shrinkage: ScoreShrinkage) -> (score: [Double], cost: [Double], available: [Bool]) {
        let m = priors[0].meanScore.count
        var score = [Double](repeating: 0, count: features.rows * m)
        var cost = score
        var available = [Bool](repeating: false, count: features.rows * m)
        for (position, r) in order.enumerated() {
            let statistics = resolutions[r].statistics
            let prior = priors[r]
            let (assignments, _) = KMeans.assign(points: features, centroids: resolutions[r].centroids)
            for row in 0..<features.rows {
                let k = assignments[row]
                let clusterEmpty = (0..<m).allSatisfy { statistics.count[k * m + $0] == 0 }
                if position > 0 && clusterEmpty { continue }   // nothing new here: the coarser estimate stands
                for j in 0..<m {
                    let i = row * m + j
                    if position == 0 || !available[i] {
                        // The coarsest clustering, or the first to observe the model here: its cell
                        // shrunk towards the model's global mean, as one clustering alone.
                        let (n, s, c) = clusterEmpty
                            ? (prior.count[j], prior.meanScore[j] * prior.count[j], prior.meanCost[j] * prior.count[j])
                            : (statistics.count[k * m + j], statistics.scoreSum[k * m + j], statistics.costSum[k * m + j])
                        if let e = prior.estimate(model: j, n: n, s: s, c: c, shrinkage: shrinkage) {
                            (score[i], cost[i], available[i]) = (e.score, e.cost, true)
                        }
                        continue
                    }
                    let n = statistics.count[k * m + j]
                    guard n > 0 else { continue }   // the model unobserved here: the coarser estimate stands
                    let kappa = shrinkage == .none ? 0 : strengths[position][j]
                    guard kappa.isFinite else { continue }
                    score[i] = (statistics.scoreSum[k * m + j] + kappa * score[i]) / (n + kappa)
                    cost[i] = (statistics.costSum[k * m + j] + kappa * cost[i]) / (n + kappa)
                }
            }
        }
        return (score, cost, available)
    }
}
