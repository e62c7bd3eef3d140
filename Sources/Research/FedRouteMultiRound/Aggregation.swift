import Foundation

/// How the answers of the called models become one final answer.
public enum AggregationRule: String, Sendable, Codable, CaseIterable {
    /// Most frequent option among called models; ties go to the option whose models have the higher
    /// summed historical accuracy.
    case majority
    /// Naive-Bayes vote: each model's option weighted by the log-odds of its historical accuracy on
    /// the task (the optimal weighted vote for independent voters), uninformative answers ignored.
    case bayes
}

/// The final answer of a trajectory: whose stored answer is returned, and how sure the vote is.
public struct AggregateAnswer: Sendable, Equatable {
    /// The called model whose answer is returned (the most accurate one among those giving the winning option).
    public var model: Int
    /// Naive-Bayes posterior that the returned answer is right (for open-ended answers: the
    /// returning model's historical accuracy).
    public var confidence: Double
    /// Called models that gave the returned option (1 for open-ended answers).
    public var support: Int
    /// Distinct answers among the called models (every open-ended answer counts as its own).
    public var distinct: Int
}

/// Combines called models' answers; reads answer classes and descriptor accuracies, never scores.
public enum Aggregator {
    /// The final answer for `row` after calling `called` (non-empty), whose historical accuracies on
    /// the row's task are `accuracy` (same order).
    public static func aggregate(row: Int, called: [Int], accuracy: [Double], table: AnswerTable, rule: AggregationRule) -> AggregateAnswer {
        precondition(!called.isEmpty && called.count == accuracy.count, "aggregate needs one accuracy per called model")
        let acc = accuracy.map { min(max($0, 0.02), 0.98) }
        let options = table.choices[row]
        let answers = called.map { table.answer(row, $0) }
        var distinctOptions = Set<Int>()
        for a in answers where a >= 0 { distinctOptions.insert(a) }
        let distinct = distinctOptions.count + answers.filter { $0 < 0 }.count
        func bestIn(_ indices: [Int]) -> Int { indices.max { acc[$0] < acc[$1] || (acc[$0] == acc[$1] && $0 > $1) }! }

        guard options >= 2, !distinctOptions.isEmpty else {
            let i = bestIn(Array(called.indices))
            return AggregateAnswer(model: called[i], confidence: acc[i], support: 1, distinct: distinct)
        }
        // Naive-Bayes posterior over the options.
        var logScore = [Double](repeating: 0, count: options)
        for (i, a) in answers.enumerated() where a >= 0 && a < options {
            let right = log(acc[i]), wrong = log((1 - acc[i]) / Double(options - 1))
            for o in 0..<options { logScore[o] += o == a ? right : wrong }
        }
        let top = logScore.max()!
        let total = logScore.reduce(0) { $0 + exp($1 - top) }
        func posterior(_ o: Int) -> Double { o < options ? exp(logScore[o] - top) / total : 0 }

        let winner: Int
        switch rule {
        case .bayes:
            winner = distinctOptions.max { (logScore[$0], -$0) < (logScore[$1], -$1) }!
        case .majority:
            func votes(_ o: Int) -> (Int, Double) {
                let members = answers.indices.filter { answers[$0] == o }
                return (members.count, members.reduce(0) { $0 + acc[$1] })
            }
            winner = distinctOptions.max { a, b in
                let va = votes(a), vb = votes(b)
                return va.0 != vb.0 ? va.0 < vb.0 : (va.1 != vb.1 ? va.1 < vb.1 : a > b)
            }!
        }
        let members = answers.indices.filter { answers[$0] == winner }
        let i = bestIn(members)
        return AggregateAnswer(model: called[i], confidence: posterior(winner), support: members.count, distinct: distinct)
    }
}

/// Router-R1's cost-aware reward.
///
/// −1 for an invalid trajectory; 0 for a wrong answer; (1 − α) + α·R_cost for a right one, where
/// R_cost = 1 − clip((√cost − p5) / (p95 − p5), 0, 1) and p5, p95 are the 5th and 95th percentiles
/// (linear interpolation) of √cost over the last `capacity` valid trajectories, this one included.
/// Invalid trajectories do not enter the window. With p95 = p5 the cost term is 1.
public struct CostAwareReward: Sendable {
    public let alpha: Double
    public let capacity: Int
    private var window: [Double] = []
    private var next = 0

    public init(alpha: Double, capacity: Int = 1000) throws {
        guard (0...1).contains(alpha) else { throw MultiRoundError("α = \(alpha); it must lie in [0, 1]") }
        guard capacity >= 1 else { throw MultiRoundError("the cost window needs at least one slot") }
        self.alpha = alpha
        self.capacity = capacity
        window.reserveCapacity(capacity)
    }

    /// The reward of a finished trajectory (nil cost = invalid), updating the window.
    public mutating func reward(cost: Double?, correct: Bool) -> Double {
        guard let cost else { return -1 }
        let root = max(cost, 0).squareRoot()
        if window.count < capacity { window.append(root) } else { window[next] = root }
        next = (next + 1) % capacity
        guard correct else { return 0 }
        return (1 - alpha) + alpha * costTerm(root)
    }

    /// R_cost of a trajectory whose √cost is `root`, against the current window.
    public func costTerm(_ root: Double) -> Double {
        let sorted = window.sorted()
        let p5 = Self.percentile(sorted, 5), p95 = Self.percentile(sorted, 95)
        guard p95 - p5 > 0 else { return 1 }
        return 1 - min(max((root - p5) / (p95 - p5), 0), 1)
    }

    /// The q-th percentile of sorted values with linear interpolation between ranks (NumPy's default).
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let position = q / 100 * Double(sorted.count - 1)
        let lo = Int(position.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (position - Double(lo)) * (sorted[hi] - sorted[lo])
    }
}
