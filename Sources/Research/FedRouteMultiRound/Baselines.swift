import FedRouteRouters
import Foundation

/// One operating point of a routing method on a set of queries.
public struct PolicyEvaluation: Sendable, Codable, Equatable {
    public var method: String
    /// The point's setting (α, λ, threshold and chain…).
    public var setting: String
    /// Mean graded score of the final answers (invalid trajectories score 0).
    public var quality: Double
    /// Mean USD per query, every call counted.
    public var cost: Double
    public var invalidRate: Double
    public var meanCalls: Double
    /// Fraction of queries on which each model was called.
    public var callShare: [String: Double]

    public init(method: String, setting: String, quality: Double, cost: Double, invalidRate: Double, meanCalls: Double, callShare: [String: Double]) {
        self.method = method
        self.setting = setting
        self.quality = quality
        self.cost = cost
        self.invalidRate = invalidRate
        self.meanCalls = meanCalls
        self.callShare = callShare
    }
}

/// Runs decision rules over an environment's rows.
public enum MultiRoundEvaluation {
    /// Plays `decide` (state → action index) from the empty state on every row; a rule that does not
    /// stop within `maxCalls + 1` steps is cut off as invalid.
    public static func run(_ env: MultiRoundEnvironment, rows: [Int], method: String, setting: String,
                           decide: (EpisodeState) -> Int) -> PolicyEvaluation {
        var quality = 0.0, cost = 0.0, invalid = 0, calls = 0
        var share = [Double](repeating: 0, count: env.modelCount)
        for r in rows {
            var state = EpisodeState(row: r)
            var outcome: EpisodeOutcome?
            var steps = 0
            while outcome == nil {
                steps += 1
                outcome = steps > env.maxCalls + 1 ? .invalid(cost: state.cost) : env.step(&state, env.action(decide(state)))
            }
            quality += outcome!.score
            cost += outcome!.cost
            if !outcome!.isValid { invalid += 1 }
            calls += state.called.count
            for k in state.called { share[k] += 1 }
        }
        let n = Double(max(rows.count, 1))
        return PolicyEvaluation(method: method, setting: setting, quality: quality / n, cost: cost / n, invalidRate: Double(invalid) / n,
                                meanCalls: Double(calls) / n,
                                callShare: Dictionary(uniqueKeysWithValues: env.table.models.enumerated().map { ($1, share[$0] / n) }))
    }

    /// The greedy policy on `rows`.
    public static func policy(_ policy: MultiRoundPolicy, _ env: MultiRoundEnvironment, rows: [Int], method: String, setting: String) throws -> PolicyEvaluation {
        try policy.check(env)
        return run(env, rows: rows, method: method, setting: setting) { policy.greedyAction(env, $0) }
    }

    /// Every model alone (one call, then answer).
    public static func singleModels(_ env: MultiRoundEnvironment, rows: [Int]) -> [PolicyEvaluation] {
        env.table.models.indices.map { k in
            run(env, rows: rows, method: "single model", setting: env.table.models[k]) { $0.called.isEmpty ? k : env.modelCount }
        }
    }

    /// A single-round router's λ sweep: per row, the one model its routing rule picks (argmax of
    /// predicted score − λ·predicted cost), then answer. `predictions` are row-aligned with `rows`.
    public static func singleRound(_ env: MultiRoundEnvironment, rows: [Int], method: String, predictions: RouterPredictions,
                                   lambdas: [Double]) throws -> [PolicyEvaluation] {
        guard predictions.rows == rows.count, predictions.models == env.table.models else {
            throw MultiRoundError("\(method): predictions cover \(predictions.rows) rows of \(predictions.models); \(rows.count) rows of \(env.table.models) expected")
        }
        let position = Dictionary(uniqueKeysWithValues: rows.enumerated().map { ($1, $0) })
        return lambdas.map { lambda in
            let choice = predictions.choose(lambda: lambda)
            return run(env, rows: rows, method: method, setting: "λ=\(lambda)") { state in
                state.called.isEmpty ? choice[position[state.row]!] : env.modelCount
            }
        }
    }
}

/// The exact optimum with hindsight: for each query, the trajectory (≤ `maxCalls` distinct calls,
/// then the aggregated answer) maximising score − λ·cost, found by dynamic programming over the
/// sets of called models. No policy that sees only the query and the answers so far can beat it.
public enum HindsightOptimum {
    /// Score and cost of answering after calling each set of ≤ maxCalls models, indexed by the set's
    /// bit mask, plus those masks from the largest sets down.
    struct Outcomes {
        var score: [Double]
        var cost: [Double]
        var masks: [Int]
    }

    static func outcomes(_ env: MultiRoundEnvironment, row: Int) -> Outcomes {
        var o = Outcomes(score: [Double](repeating: 0, count: 1 << env.modelCount), cost: [Double](repeating: 0, count: 1 << env.modelCount), masks: [])
        func visit(_ mask: Int, from: Int, called: [Int]) {
            if !called.isEmpty {
                var state = EpisodeState(row: row)
                for k in called { _ = env.step(&state, .call(k)) }
                let final = env.aggregate(state)
                o.score[mask] = env.table.score(row, final.model)
                o.cost[mask] = state.cost
                o.masks.append(mask)
            }
            guard called.count < env.maxCalls else { return }
            for k in from..<env.modelCount { visit(mask | (1 << k), from: k + 1, called: called + [k]) }
        }
        visit(0, from: 0, called: [])
        o.masks.sort { ($0.nonzeroBitCount, $0) > ($1.nonzeroBitCount, $1) }
        return o
    }

    /// V(S) = max(answer now, max over uncalled k of V(S ∪ {k})), solved from the largest sets down;
    /// the empty set must call, so its value is its best child's.
    static func solve(_ o: Outcomes, lambda: Double, models: Int, maxCalls: Int) -> (score: Double, cost: Double, mask: Int) {
        var value = [Double](repeating: -.infinity, count: o.score.count)
        var choice = [Int](repeating: 0, count: o.score.count)  // the set whose answer V(S) takes
        for mask in o.masks {
            var best = o.score[mask] - lambda * o.cost[mask], at = mask
            if mask.nonzeroBitCount < maxCalls {
                for k in 0..<models where mask & (1 << k) == 0 {
                    let child = mask | (1 << k)
                    if value[child] > best { best = value[child]; at = choice[child] }
                }
            }
            value[mask] = best
            choice[mask] = at
        }
        var root = -1
        for k in 0..<models where root < 0 || value[1 << k] > value[1 << root] { root = k }
        let m = choice[1 << root]
        return (o.score[m], o.cost[m], m)
    }

    /// One operating point per λ (up to 16 models: the sets are indexed by bit mask).
    public static func frontier(_ env: MultiRoundEnvironment, rows: [Int], lambdas: [Double]) throws -> [PolicyEvaluation] {
        guard env.modelCount <= 16 else { throw MultiRoundError("the hindsight optimum enumerates call sets by bit mask: at most 16 models, not \(env.modelCount)") }
        let all = rows.map { outcomes(env, row: $0) }
        return lambdas.map { lambda in
            var quality = 0.0, cost = 0.0, calls = 0
            var share = [Double](repeating: 0, count: env.modelCount)
            for o in all {
                let s = solve(o, lambda: lambda, models: env.modelCount, maxCalls: env.maxCalls)
                quality += s.score
                cost += s.cost
                calls += s.mask.nonzeroBitCount
                for k in 0..<env.modelCount where s.mask & (1 << k) != 0 { share[k] += 1 }
            }
            let n = Double(max(rows.count, 1))
            return PolicyEvaluation(method: "hindsight optimum (DP)", setting: "λ=\(lambda)", quality: quality / n, cost: cost / n, invalidRate: 0,
                                    meanCalls: Double(calls) / n,
                                    callShare: Dictionary(uniqueKeysWithValues: env.table.models.enumerated().map { ($1, share[$0] / n) }))
        }
    }
}

/// Cheapest-first cascades with escalation: call the chain's models in order of price and stop as
/// soon as the aggregated answer's naive-Bayes confidence reaches the threshold (or the chain ends).
public enum Cascade {
    public struct Configuration: Sendable, Codable, Equatable, Hashable {
        /// Model indices, cheapest first.
        public var chain: [Int]
        public var threshold: Double
        public init(chain: [Int], threshold: Double) {
            self.chain = chain
            self.threshold = threshold
        }
    }

    /// The cascade's decision in `state`.
    public static func decide(_ env: MultiRoundEnvironment, _ c: Configuration, _ state: EpisodeState) -> Int {
        let i = state.called.count
        if i == 0 { return c.chain[0] }
        if i >= c.chain.count || i >= env.maxCalls || env.aggregate(state).confidence >= c.threshold { return env.modelCount }
        return c.chain[i]
    }

    /// Chains for `task`: every subset (1 … maxCalls models, cheapest first) of the models on that
    /// task's historical accuracy–price Pareto front.
    public static func candidateChains(_ env: MultiRoundEnvironment, task: String) -> [[Int]] {
        let d = env.descriptors
        let byCost = d.indices.sorted { d[$0].meanCost < d[$1].meanCost }
        var front: [Int] = []
        for k in byCost where front.isEmpty || d[k].accuracy(task: task) > d[front.last!].accuracy(task: task) { front.append(k) }
        var chains: [[Int]] = []
        func extend(_ chain: [Int], from: Int) {
            if !chain.isEmpty { chains.append(chain) }
            guard chain.count < env.maxCalls else { return }
            for i in from..<front.count { extend(chain + [front[i]], from: i + 1) }
        }
        extend([], from: 0)
        return chains
    }

    /// The cascade frontier: for each task, every chain × threshold is measured on that task's
    /// `selectionRows`; for each λ, each task takes the configuration maximising quality − λ·cost
    /// there, and the combination is reported on `rows`.
    public static func frontier(_ env: MultiRoundEnvironment, selectionRows: [Int], rows: [Int], thresholds: [Double], lambdas: [Double]) -> [PolicyEvaluation] {
        let tasks = env.table.tasks.indices
        var options: [[(Configuration, PolicyEvaluation)]] = []
        for t in tasks {
            let selection = selectionRows.filter { env.table.taskOf[$0] == t }
            var list: [(Configuration, PolicyEvaluation)] = []
            if !selection.isEmpty {
                for chain in candidateChains(env, task: env.table.tasks[t]) {
                    for threshold in (chain.count == 1 ? [1.0] : thresholds) {
                        let c = Configuration(chain: chain, threshold: threshold)
                        list.append((c, MultiRoundEvaluation.run(env, rows: selection, method: "cascade", setting: "") { decide(env, c, $0) }))
                    }
                }
            }
            options.append(list)
        }
        let cheapest = env.descriptors.indices.min { env.descriptors[$0].meanCost < env.descriptors[$1].meanCost }!
        var seen = Set<[Configuration?]>()
        var out: [PolicyEvaluation] = []
        for lambda in lambdas {
            let picked: [Configuration?] = tasks.map { t in
                options[t].max { a, b in
                    let va = a.1.quality - lambda * a.1.cost, vb = b.1.quality - lambda * b.1.cost
                    return va < vb || (va == vb && a.1.cost > b.1.cost)
                }?.0
            }
            guard seen.insert(picked).inserted else { continue }
            let setting = "λ=\(lambda): " + tasks.compactMap { t in
                picked[t].map { c in "\(env.table.tasks[t]) τ=\(c.threshold) " + c.chain.map { env.table.models[$0] }.joined(separator: " → ") }
            }.joined(separator: "; ")
            out.append(MultiRoundEvaluation.run(env, rows: rows, method: "cascade", setting: setting) { state in
                // A task with no selection rows gets the cheapest model.
                guard let c = picked[env.table.taskOf[state.row]] else { return state.called.isEmpty ? cheapest : env.modelCount }
                return decide(env, c, state)
            })
        }
        return out
    }
}
