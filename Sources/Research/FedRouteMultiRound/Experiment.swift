import FedRouteData
import FedRouteEvaluation
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// The multi-round routing experiment: PPO policies over an α sweep against single-round routers,
/// cascades and the hindsight optimum, plus zero-shot use of held-out models through descriptors.
public enum MultiRoundExperiment {
    public struct Settings: Sendable, Codable, Equatable {
        /// Cost weights α of the reward; one policy per value.
        public var alphas: [Double] = [0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]
        public var ppo = PPOConfiguration()
        /// Models removed from training and offered to the trained policy by descriptor only.
        public var heldOut: [String] = ["zero-one-ai/Yi-34B-Chat", "claude-v2"]
        /// α values at which the zero-shot policies are trained (a subset of `alphas` keeps runs short).
        public var zeroShotAlphas: [Double] = [0.2, 0.3]
        public var rule: AggregationRule = .majority
        public var maxCalls = 4
        /// λ grid (per USD) of the single-round routers and the hindsight optimum.
        public var lambdas: [Double] = [0] + FrontierMetrics.geomspace(1, 1e4, count: 40)
        /// Escalation thresholds of the cascades.
        public var thresholds: [Double] = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.999]
        /// Neighbours of the kNN single-round router.
        public var knnK = 40
        public var mlp = MLPTrainingConfiguration()
        /// Parameters in billions by model name (absent = not published).
        public var sizes: [String: Double] = [:]
        /// Budgets (USD per query) at which every method's hull is read off.
        public var budgets: [Double] = [1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3]
        public var seed: UInt64 = 0

        public init() {}
    }

    /// A method's points reduced to its hull and figures.
    public struct MethodSummary: Sendable, Codable, Equatable {
        public var method: String
        public var hull: [CostQuality]
        /// Hull quality at each of `Settings.budgets` (0 where the method cannot run that cheaply).
        public var qualityAtBudget: [Double]
        /// Normalised area under the hull over the single models' cost range.
        public var area: Double
        public var maxQuality: Double
    }

    public struct ZeroShot: Sendable, Codable, Equatable {
        public var alpha: Double
        /// The policy trained without the held-out models, on the models it knows.
        public var withoutHeldOut: PolicyEvaluation
        /// The same policy offered every model, the held-out ones by descriptor only.
        public var zeroShot: PolicyEvaluation
        /// A policy trained with every model, for reference.
        public var trainedWithAll: PolicyEvaluation?
    }

    public struct Result: Sendable, Codable {
        public var settings: Settings
        public var trainQueries: Int
        public var testQueries: Int
        public var models: [String]
        public var descriptors: [ModelDescriptor]
        /// Every operating point on the test queries.
        public var points: [PolicyEvaluation]
        public var summaries: [MethodSummary]
        public var zeroShot: [ZeroShot]
        /// PPO training curves by α (and "zero-shot α" for the held-out runs).
        public var training: [String: [PPOIterationLog]]
        public var costRange: ClosedRange<Double>
    }

    /// Progress: a stage name and how far it is.
    public typealias Progress = @Sendable (String, Int, Int) -> Void

    /// Runs the experiment. `features` are row-aligned with `table`; train and test rows come from
    /// the source split when it exists, otherwise from a seeded 70/30 split.
    public static func run(table: AnswerTable, features: Matrix, settings s: Settings, progress: Progress? = nil) throws -> Result {
        guard features.rows == table.rowCount else { throw MultiRoundError("features have \(features.rows) rows, the table \(table.rowCount)") }
        guard !s.alphas.isEmpty, s.alphas.allSatisfy({ (0...1).contains($0) }) else { throw MultiRoundError("α values must lie in [0, 1]") }
        for name in s.heldOut where !table.models.contains(name) {
            throw MultiRoundError("held-out model '\(name)' is not in the table (\(table.models.joined(separator: ", ")))")
        }
        guard table.modelCount - s.heldOut.count >= 1 else { throw MultiRoundError("holding out \(s.heldOut.count) models leaves none to train on") }
        var sourceTrain = table.rowIndices(split: .train), sourceTest = table.rowIndices(split: .test)
        if sourceTrain.isEmpty || sourceTest.isEmpty {
            var rng = SeededRandom(seed: s.seed ^ 0x5EED)
            let perm = rng.permutation(table.rowCount)
            let cut = table.rowCount * 7 / 10
            sourceTrain = Array(perm[..<cut]).sorted()
            sourceTest = Array(perm[cut...]).sorted()
        }
        let train = sourceTrain, test = sourceTest
        guard !train.isEmpty, !test.isEmpty else { throw MultiRoundError("need both training and test queries") }

        let descriptors = try ModelDescriptor.measure(on: table, rows: train, sizes: s.sizes)
        let env = try MultiRoundEnvironment(table: table, descriptors: descriptors, scaler: DescriptorScaler(fitting: descriptors),
                                            queryFeatures: features, knownTasks: table.tasks, maxCalls: s.maxCalls, rule: s.rule)
        var points: [PolicyEvaluation] = []
        var training: [String: [PPOIterationLog]] = [:]
        let totalStages = s.alphas.count + (s.heldOut.isEmpty ? 0 : s.zeroShotAlphas.count) + 1
        var stage = 0
        progress?("baselines", stage, totalStages)

        // References and baselines.
        points += MultiRoundEvaluation.singleModels(env, rows: test)
        points += try HindsightOptimum.frontier(env, rows: test, lambdas: s.lambdas)
        points += Cascade.frontier(env, selectionRows: train, rows: test, thresholds: s.thresholds, lambdas: s.lambdas)
        let trainTable = try evaluationTable(table, rows: train)
        let trainFeatures = features.gatherRows(train), testFeatures = features.gatherRows(test)
        let knn = try KNNRouter.train(features: trainFeatures, table: trainTable, k: min(s.knnK, train.count))
        points += try MultiRoundEvaluation.singleRound(env, rows: test, method: "kNN router (single round)",
                                                       predictions: knn.predict(features: testFeatures), lambdas: s.lambdas)
        var mlpConfiguration = s.mlp
        mlpConfiguration.seed = s.seed
        let mlp = try MLPTrainer.train(features: trainFeatures, table: trainTable, configuration: mlpConfiguration)
        points += try MultiRoundEvaluation.singleRound(env, rows: test, method: "MLP router (single round)",
                                                       predictions: mlp.predict(features: testFeatures), lambdas: s.lambdas)
        stage += 1

        // PPO over the α sweep, policies trained in parallel (each is deterministic in its seed).
        progress?("PPO over \(s.alphas.count) α values", stage, totalStages)
        let trained = try trainPolicies(env, rows: train, alphas: s.alphas, base: s.ppo, label: "PPO",
                                        counter: StageCounter(start: stage, total: totalStages, progress: progress))
        stage += s.alphas.count
        var policies: [Double: MultiRoundPolicy] = [:]
        for (alpha, (policy, log)) in zip(s.alphas, trained) {
            training["α=\(alpha)"] = log
            policies[alpha] = policy
            points.append(try MultiRoundEvaluation.policy(policy, env, rows: test, method: "multi-round PPO", setting: "α=\(alpha)"))
        }

        // Zero-shot: train without the held-out models, offer them by descriptor.
        var zeroShot: [ZeroShot] = []
        if !s.heldOut.isEmpty, !s.zeroShotAlphas.isEmpty {
            let known = table.models.filter { !s.heldOut.contains($0) }
            let knownTable = try table.selecting(models: known)
            let knownDescriptors = descriptors.filter { known.contains($0.model) }
            let scaler = try DescriptorScaler(fitting: knownDescriptors)
            let knownEnv = try MultiRoundEnvironment(table: knownTable, descriptors: knownDescriptors, scaler: scaler, queryFeatures: features,
                                                     knownTasks: table.tasks, maxCalls: s.maxCalls, rule: s.rule)
            let allEnv = try MultiRoundEnvironment(table: table, descriptors: descriptors, scaler: scaler, queryFeatures: features,
                                                   knownTasks: table.tasks, maxCalls: s.maxCalls, rule: s.rule)
            let runs = try trainPolicies(knownEnv, rows: train, alphas: s.zeroShotAlphas, base: s.ppo, label: "zero-shot PPO",
                                         counter: StageCounter(start: stage, total: totalStages, progress: progress))
            for (alpha, (policy, log)) in zip(s.zeroShotAlphas, runs) {
                training["zero-shot α=\(alpha)"] = log
                let without = try MultiRoundEvaluation.policy(policy, knownEnv, rows: test, method: "PPO without held-out models", setting: "α=\(alpha)")
                let with = try MultiRoundEvaluation.policy(policy, allEnv, rows: test, method: "PPO + held-out models zero-shot", setting: "α=\(alpha)")
                let reference = try policies[alpha].map { try MultiRoundEvaluation.policy($0, env, rows: test, method: "multi-round PPO", setting: "α=\(alpha)") }
                zeroShot.append(ZeroShot(alpha: alpha, withoutHeldOut: without, zeroShot: with, trainedWithAll: reference))
                points += [without, with]
            }
        }
        progress?("done", totalStages, totalStages)

        let singles = points.filter { $0.method == "single model" }
        let range = (singles.map(\.cost).min() ?? 0)...(singles.map(\.cost).max() ?? 1)
        var methods: [String] = []
        for p in points where !methods.contains(p.method) { methods.append(p.method) }
        let summaries = methods.map { method in
            let hull = FrontierMetrics.nonDecreasingConvexHull(points.filter { $0.method == method }.map { CostQuality(cost: $0.cost, quality: $0.quality) })
            return MethodSummary(method: method, hull: hull, qualityAtBudget: s.budgets.map { FrontierMetrics.attainable(hull, at: $0) },
                                 area: FrontierMetrics.normalizedArea(hull, low: range.lowerBound, high: range.upperBound),
                                 maxQuality: hull.map(\.quality).max() ?? 0)
        }
        return Result(settings: s, trainQueries: train.count, testQueries: test.count, models: table.models, descriptors: descriptors,
                      points: points, summaries: summaries, zeroShot: zeroShot, training: training, costRange: range)
    }

    /// One PPO policy per α on `env`, trained in parallel (each is deterministic in its seed), in α order.
    static func trainPolicies(_ env: MultiRoundEnvironment, rows: [Int], alphas: [Double], base: PPOConfiguration, label: String,
                              counter: StageCounter) throws -> [(MultiRoundPolicy, [PPOIterationLog])] {
        try ParallelJobs.map(alphas.count) { i in
            var c = base
            c.alpha = alphas[i]
            let out = try PPOTrainer.train(environment: env, rows: rows, configuration: c)
            counter.finished("\(label) α=\(alphas[i])")
            return out
        }
    }

    /// The rows of an answer table as an evaluation table (for the single-round routers).
    static func evaluationTable(_ table: AnswerTable, rows: [Int]) throws -> EvaluationTable {
        let m = table.modelCount
        return try EvaluationTable(models: table.models, queries: rows.map { table.queries[$0] },
                                   scores: rows.flatMap { r in (0..<m).map { table.score(r, $0) } },
                                   costs: rows.flatMap { r in (0..<m).map { table.cost(r, $0) } },
                                   observed: Array(repeating: true, count: rows.count * m))
    }
}

/// Counts finished parallel stages for the progress callback.
final class StageCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var done: Int
    private let total: Int
    private let progress: MultiRoundExperiment.Progress?
    init(start: Int, total: Int, progress: MultiRoundExperiment.Progress?) {
        done = start
        self.total = total
        self.progress = progress
    }
    func finished(_ stage: String) {
        lock.lock()
        done += 1
        let d = done
        lock.unlock()
        progress?(stage, d, total)
    }
}

/// Runs independent, deterministic jobs on up to all cores and returns their results in order
/// (each job writes only its own slot).
enum ParallelJobs {
    final class Slots<T>: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Result<T, any Error>?>
        let count: Int
        init(count: Int) {
            self.count = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: nil, count: count)
        }
        deinit {
            pointer.deinitialize(count: count)
            pointer.deallocate()
        }
    }

    static func map<T>(_ count: Int, _ job: @Sendable (Int) throws -> T) throws -> [T] {
        let slots = Slots<T>(count: count)
        DispatchQueue.concurrentPerform(iterations: count) { i in
            slots.pointer[i] = Result { try job(i) }
        }
        return try (0..<count).map { try slots.pointer[$0]!.get() }
    }
}
