/// How the nonparametric routers (K-Means, kNN) turn the observed scores of a group of training
/// queries (a cluster, a query's neighbours) into a model's estimated score.
///
/// Under sparse labels most groups hold a model's score from one or two queries, and a raw mean
/// of one binary grade says 0 or 1. Empirical Bayes pulls each group mean towards the model's
/// global mean by as much as the data say groups really differ:
///
///     θ̂(g, m) = (s(g, m) + κ_m · μ_m) / (n(g, m) + κ_m),  κ_m = σ²_m / τ²_m
///
/// with μ_m the model's mean observed score over all groups, σ²_m = μ_m(1 − μ_m) the within-group
/// variance of a [0, 1] score (exact for 0/1 grades, an upper bound otherwise) and τ²_m the
/// between-group variance of the true group means, estimated by one-way random-effects ANOVA
/// (method of moments): τ² = max(0, (MS_between − σ²) / n₀), MS_between = Σ n_g (x̄_g − μ)² / (G − 1),
/// n₀ = (N − Σ n_g² / N) / (G − 1) over the G groups that observed the model. With no real spread
/// (τ² = 0) every group says μ_m: the router degrades to the model's global mean, i.e. to
/// best-single@λ, instead of below it. A group that never observed a model still has no estimate
/// for it (the model is unavailable there): labels are not missing at random — a model evaluated
/// only on one kind of query says nothing about the others. Everything is computed from counts and sums, so a federation that pools those gets exactly the
/// centralized estimate.
public enum ScoreShrinkage: String, Sendable, Codable, CaseIterable {
    /// Raw group means (routers written before shrinkage existed load with this).
    case none
    /// Shrinkage towards each model's global mean with the empirical-Bayes strength above.
    case empiricalBayes = "empirical-bayes"

    /// Per model: the global mean score μ_m, the prior strength κ_m (∞ when groups do not differ
    /// beyond noise, 0 when there is nothing to pool) and the global mean cost.
    public struct Prior: Sendable, Equatable {
        public var meanScore: [Double]
        public var strength: [Double]
        public var meanCost: [Double]
        /// Observed cells per model over all groups.
        public var count: [Double]

        /// The estimated (score, cost) of a group with `n` observations summing to `s` (score) and
        /// `c` (cost), or nil when the model has no observation anywhere.
        public func estimate(model m: Int, n: Double, s: Double, c: Double, shrinkage: ScoreShrinkage) -> (score: Double, cost: Double)? {
            switch shrinkage {
            case .none:
                return n > 0 ? (s / n, c / n) : nil
            case .empiricalBayes:
                guard n > 0 else { return nil }
                let k = strength[m]
                return (k.isInfinite ? meanScore[m] : (s + k * meanScore[m]) / (n + k), c / n)
            }
        }
    }

    /// The prior of `models` models from per-(group, model) counts and sums, row-major `groups × models`.
    public static func prior(groups: Int, models: Int, count: [Double], scoreSum: [Double], costSum: [Double]) -> Prior {
        var prior = Prior(meanScore: .init(repeating: 0, count: models), strength: .init(repeating: 0, count: models),
                          meanCost: .init(repeating: 0, count: models), count: .init(repeating: 0, count: models))
        for m in 0..<models {
            var n = 0.0, s = 0.0, c = 0.0, nSquared = 0.0, observedGroups = 0.0
            for g in 0..<groups where count[g * models + m] > 0 {
                let i = g * models + m
                n += count[i]; s += scoreSum[i]; c += costSum[i]; nSquared += count[i] * count[i]; observedGroups += 1
            }
            prior.count[m] = n
            guard n > 0 else { continue }
            let mu = s / n
            prior.meanScore[m] = mu
            prior.meanCost[m] = c / n
            let within = mu * (1 - mu)
            guard observedGroups >= 2, within > 0 else { continue }   // nothing to pool, or no noise: raw means
            var between = 0.0
            for g in 0..<groups where count[g * models + m] > 0 {
                let i = g * models + m
                let d = scoreSum[i] / count[i] - mu
                between += count[i] * d * d
            }
            let msBetween = between / (observedGroups - 1)
            let n0 = (n - nSquared / n) / (observedGroups - 1)
            let tau2 = n0 > 0 ? max(0, (msBetween - within) / n0) : 0
            prior.strength[m] = tau2 > 0 ? within / tau2 : .infinity
        }
        return prior
    }
}
