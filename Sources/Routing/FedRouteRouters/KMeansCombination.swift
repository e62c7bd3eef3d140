/// How a K-Means-Router of several clusterings turns their cells into one estimate per query.
public enum KMeansCombination: String, Sendable, Codable, CaseIterable {
    /// The mean of every clustering's estimate (each cell shrunk towards the model's global mean),
    /// over the clusterings that observed the model in the query's cluster. Routers written before
    /// `nested` existed load with this.
    case average
    /// Coarse to fine, each clustering's cell shrinks towards the estimate of the clusterings
    /// coarser than it, by as much as the data say its cells differ from that estimate:
    ///
    ///     θ̂_r(x, m) = (s_r(x, m) + κ_{r,m} · θ̂_{r−1}(x, m)) / (n_r(x, m) + κ_{r,m}),  κ_{r,m} = σ²_m / τ²_{r,m}
    ///
    /// with θ̂_0 the coarsest clustering's cell shrunk towards the model's global mean
    /// (`ScoreShrinkage.empiricalBayes`), s_r, n_r the score sum and count of the query's cell in
    /// clustering r, σ²_m = μ_m(1 − μ_m) and τ²_{r,m} the variance of clustering r's true cell means
    /// around the coarser estimate at its centres, by the method of moments over its G observed
    /// cells: τ² = max(0, (Σ n_g d_g² − G σ²) / Σ n_g), d_g = x̄_g − θ̂_{r−1}(centre g, m). Thin
    /// cells (small n against κ) follow the coarser clusterings; a fine clustering with plenty of
    /// grades per cell decides for itself, so coarse clusterings that merge topics cannot outvote
    /// fine ones that separate them (which `average`, one vote each, lets them do). Costs follow
    /// the same weights. A cell that never observed the model leaves the coarser estimate as it is;
    /// the model is available for a query where some clustering observed it in the query's cluster
    /// (or, when the query's coarsest cluster observed nothing at all, where the data hold it).
    /// Everything comes from the pooled counts and sums, so a federation gets exactly the
    /// centralized estimate.
    case nested
}
