import Foundation

/// What a policy knows about a model: its price, its size and how often it was right per task.
///
/// Policies see models only through these descriptors, never through a per-model parameter, so a
/// model that was not in training can be offered at inference by describing it.
public struct ModelDescriptor: Sendable, Codable, Equatable {
    public var model: String
    /// Historical mean cost per query, USD.
    public var meanCost: Double
    /// Parameters in billions; nil where the provider does not publish it.
    public var parametersBillions: Double?
    /// Historical accuracy per task name.
    public var taskAccuracy: [String: Double]

    public init(model: String, meanCost: Double, parametersBillions: Double?, taskAccuracy: [String: Double]) {
        self.model = model
        self.meanCost = meanCost
        self.parametersBillions = parametersBillions
        self.taskAccuracy = taskAccuracy
    }

    /// Accuracy on `task`; the mean over known tasks for a task the descriptor does not list.
    public func accuracy(task: String) -> Double {
        if let a = taskAccuracy[task] { return a }
        guard !taskAccuracy.isEmpty else { return 0.5 }
        return taskAccuracy.values.reduce(0, +) / Double(taskAccuracy.count)
    }

    /// Descriptors of every model of `table` measured on `rows` (historical evaluations), with sizes
    /// from `sizes` (billions of parameters by model name; absent = unknown).
    public static func measure(on table: AnswerTable, rows: [Int], sizes: [String: Double]) throws -> [ModelDescriptor] {
        guard !rows.isEmpty else { throw MultiRoundError("descriptors need at least one historical row") }
        return (0..<table.modelCount).map { j in
            var correct = [Double](repeating: 0, count: table.tasks.count), count = correct
            var cost = 0.0
            for r in rows {
                correct[table.taskOf[r]] += table.score(r, j)
                count[table.taskOf[r]] += 1
                cost += table.cost(r, j)
            }
            var accuracy: [String: Double] = [:]
            for (t, name) in table.tasks.enumerated() where count[t] > 0 { accuracy[name] = correct[t] / count[t] }
            return ModelDescriptor(model: table.models[j], meanCost: cost / Double(rows.count),
                                   parametersBillions: sizes[table.models[j]], taskAccuracy: accuracy)
        }
    }
}

/// Turns descriptors into policy inputs, standardised with statistics of the training models only.
public struct DescriptorScaler: Sendable, Codable, Equatable {
    public var logCostMean: Double
    public var logCostSD: Double
    public var logSizeMean: Double
    public var logSizeSD: Double

    /// Features per model: z(log cost), z(log size) or 0, size known, task accuracy, its logit / 4,
    /// mean accuracy over tasks.
    public static let featureCount = 6

    public init(fitting descriptors: [ModelDescriptor]) throws {
        guard !descriptors.isEmpty else { throw MultiRoundError("no descriptors to fit the scaler on") }
        for d in descriptors {
            guard d.meanCost > 0, d.meanCost.isFinite else { throw MultiRoundError("model '\(d.model)' has mean cost \(d.meanCost); a positive cost is needed") }
            if let p = d.parametersBillions, !(p > 0 && p.isFinite) { throw MultiRoundError("model '\(d.model)' has size \(p)B; a positive size is needed") }
            for (task, a) in d.taskAccuracy where !(0...1).contains(a) {
                throw MultiRoundError("model '\(d.model)' has accuracy \(a) on '\(task)'; it must lie in [0, 1]")
            }
        }
        func moments(_ xs: [Double]) -> (Double, Double) {
            guard !xs.isEmpty else { return (0, 1) }
            let mean = xs.reduce(0, +) / Double(xs.count)
            let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
            return (mean, max(variance.squareRoot(), 1e-6))
        }
        (logCostMean, logCostSD) = moments(descriptors.map { log($0.meanCost) })
        (logSizeMean, logSizeSD) = moments(descriptors.compactMap { $0.parametersBillions.map(log) })
    }

    /// The feature vector of `descriptor` for a query of `task`.
    public func features(_ descriptor: ModelDescriptor, task: String) -> [Float] {
        let a = descriptor.accuracy(task: task)
        let clipped = min(max(a, 0.02), 0.98)
        let meanAccuracy = descriptor.taskAccuracy.isEmpty ? 0.5 : descriptor.taskAccuracy.values.reduce(0, +) / Double(descriptor.taskAccuracy.count)
        let size = descriptor.parametersBillions.map { (log($0) - logSizeMean) / logSizeSD }
        return [Float((log(max(descriptor.meanCost, 1e-12)) - logCostMean) / logCostSD),
                Float(size ?? 0), size == nil ? 0 : 1,
                Float(a), Float(log(clipped / (1 - clipped)) / 4), Float(meanAccuracy)]
    }
}
