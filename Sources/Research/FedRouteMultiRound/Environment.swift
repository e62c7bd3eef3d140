import FedRouteNumerics
import Foundation

/// One step's choice: call a model (index into the environment's models) or answer with what was called.
public enum MultiRoundAction: Sendable, Hashable {
    case call(Int)
    case answer
}

/// Where a trajectory stands: its query, the models called so far (in order) and the cost spent.
public struct EpisodeState: Sendable, Equatable {
    public let row: Int
    public var called: [Int] = []
    public var cost: Double = 0
    public init(row: Int) { self.row = row }
}

/// How a trajectory ended.
public enum EpisodeOutcome: Sendable, Equatable {
    /// Answered without any call, called a model twice, or called past the budget.
    case invalid(cost: Double)
    /// Answered; `score` is the returned answer's graded quality.
    case answered(AggregateAnswer, score: Double, cost: Double)

    public var cost: Double {
        switch self {
        case .invalid(let c): c
        case .answered(_, _, let c): c
        }
    }
    public var score: Double {
        if case .answered(_, let s, _) = self { return s }
        return 0
    }
    public var isValid: Bool {
        if case .answered = self { return true }
        return false
    }
}

/// What a policy sees at one step: global features and one feature row per model it may call.
public struct Observation: Sendable {
    public var global: [Float]
    /// Row-major `models × candidateDimension`.
    public var candidates: [Float]
}

/// The offline multi-round routing environment over an `AnswerTable`.
///
/// State: the query's features and task, the models called so far (through their descriptors), the
/// agreement among their answers, steps used and cost spent — never a score. Actions: call one of
/// the models (at most `maxCalls`, each once) or answer; the final answer is aggregated by `rule`.
public struct MultiRoundEnvironment: Sendable {
    public let table: AnswerTable
    public let descriptors: [ModelDescriptor]
    public let scaler: DescriptorScaler
    /// Query features, rows aligned with `table`.
    public let queryFeatures: Matrix
    public let maxCalls: Int
    public let rule: AggregationRule
    /// Tasks the policy's one-hot knows (those of training); others get a zero vector.
    public let knownTasks: [String]
    private let accuracy: [Double]          // tasks × models
    private let descriptorFeatures: [Float] // tasks × models × DescriptorScaler.featureCount

    public static let agreementFeatureCount = 7
    public static let extraCandidateFeatures = 2

    public var modelCount: Int { table.modelCount }
    public var actionCount: Int { table.modelCount + 1 }
    public var globalDimension: Int { queryFeatures.cols + knownTasks.count + maxCalls + 2 + Self.agreementFeatureCount }
    public var candidateDimension: Int { DescriptorScaler.featureCount + Self.extraCandidateFeatures }

    public init(table: AnswerTable, descriptors: [ModelDescriptor], scaler: DescriptorScaler, queryFeatures: Matrix,
                knownTasks: [String], maxCalls: Int = 4, rule: AggregationRule = .majority) throws {
        guard descriptors.map(\.model) == table.models else {
            throw MultiRoundError("descriptors describe \(descriptors.map(\.model)), the table has \(table.models)")
        }
        guard queryFeatures.rows == table.rowCount else {
            throw MultiRoundError("query features have \(queryFeatures.rows) rows, the table \(table.rowCount)")
        }
        guard queryFeatures.isFinite else { throw MultiRoundError("query features contain NaN or infinity") }
        guard maxCalls >= 1 else { throw MultiRoundError("maxCalls must be at least 1") }
        self.table = table
        self.descriptors = descriptors
        self.scaler = scaler
        self.queryFeatures = queryFeatures
        self.maxCalls = maxCalls
        self.rule = rule
        self.knownTasks = knownTasks
        var accuracy: [Double] = [], features: [Float] = []
        for task in table.tasks {
            for d in descriptors {
                accuracy.append(d.accuracy(task: task))
                features += scaler.features(d, task: task)
            }
        }
        self.accuracy = accuracy
        descriptorFeatures = features
    }

    /// Historical accuracy of `model` on the task of `row`.
    public func accuracy(row: Int, model: Int) -> Double { accuracy[table.taskOf[row] * modelCount + model] }

    /// The current aggregate of a state with at least one call.
    public func aggregate(_ state: EpisodeState) -> AggregateAnswer {
        Aggregator.aggregate(row: state.row, called: state.called, accuracy: state.called.map { accuracy(row: state.row, model: $0) },
                             table: table, rule: rule)
    }

    /// Applies `action`; returns the outcome when the trajectory ends.
    public func step(_ state: inout EpisodeState, _ action: MultiRoundAction) -> EpisodeOutcome? {
        switch action {
        case .answer:
            guard !state.called.isEmpty else { return .invalid(cost: state.cost) }
            let final = aggregate(state)
            return .answered(final, score: table.score(state.row, final.model), cost: state.cost)
        case .call(let k):
            guard k >= 0, k < modelCount, !state.called.contains(k), state.called.count < maxCalls else { return .invalid(cost: state.cost) }
            state.called.append(k)
            state.cost += table.cost(state.row, k)
            return nil
        }
    }

    /// The action of index `i` (`0..<models` call, `models` answer).
    public func action(_ i: Int) -> MultiRoundAction { i == modelCount ? .answer : .call(i) }

    /// Features of `state` for a policy.
    public func observe(_ state: EpisodeState) -> Observation {
        let r = state.row
        var g = [Float](repeating: 0, count: globalDimension)
        var o = 0
        queryFeatures.data.withUnsafeBufferPointer { q in
            for c in 0..<queryFeatures.cols { g[c] = q[r * queryFeatures.cols + c] }
        }
        o += queryFeatures.cols
        if let t = knownTasks.firstIndex(of: table.tasks[table.taskOf[r]]) { g[o + t] = 1 }
        o += knownTasks.count
        g[o + min(state.called.count, maxCalls)] = 1
        o += maxCalls + 1
        g[o] = Float((state.cost / exp(scaler.logCostMean)).squareRoot())
        o += 1
        var confidence = 0.0
        if !state.called.isEmpty {
            let current = aggregate(state)
            confidence = current.confidence
            let n = Double(state.called.count)
            var anyAgree = false
            for i in 0..<state.called.count { for j in 0..<i where table.agree(r, state.called[i], state.called[j]) { anyAgree = true } }
            g[o] = Float(confidence)
            g[o + 1] = Float(Double(current.support) / n)
            g[o + 2] = Float(Double(current.distinct) / n)
            g[o + 3] = Float(state.called.map { accuracy(row: r, model: $0) }.max()!)
            g[o + 4] = anyAgree ? 1 : 0
        }
        g[o + 5] = table.choices[r] >= 2 ? 1 : 0
        g[o + 6] = Float(table.choices[r]) / 5
        let f = DescriptorScaler.featureCount, c = candidateDimension
        var candidates = [Float](repeating: 0, count: modelCount * c)
        let base = table.taskOf[r] * modelCount * f
        for k in 0..<modelCount {
            for i in 0..<f { candidates[k * c + i] = descriptorFeatures[base + k * f + i] }
            candidates[k * c + f] = state.called.contains(k) ? 1 : 0
            candidates[k * c + f + 1] = Float(accuracy(row: r, model: k) - confidence)
        }
        return Observation(global: g, candidates: candidates)
    }
}
