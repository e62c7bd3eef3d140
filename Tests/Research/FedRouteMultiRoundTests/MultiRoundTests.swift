import FedRouteData
import FedRouteEvaluation
@testable import FedRouteMultiRound
import FedRouteNumerics
import Foundation
import Testing

@Suite struct MultiRoundTests {
    static let mcPrompt = "Which one?\nA) one\nB) two\nPrint only a single choice from \"A\" or \"B\" without explanation. Answer:"

    /// Two tasks: on "easy" the cheap model answers right, on "hard" it answers wrong; the pricey model
    /// is always right; a third "noisy" model is right half the time. Options A/B, the right one random.
    static func syntheticTable(rows: Int, seed: UInt64) throws -> AnswerTable {
        var rng = SeededRandom(seed: seed)
        let models = ["cheap", "noisy", "pricey"]
        var queries: [Query] = [], scores: [Double] = [], costs: [Double] = [], responses: [[String?]] = []
        for r in 0..<rows {
            let hard = r % 2 == 1
            let right = rng.nextInt(below: 2)
            let letters = ["A", "B"]
            let cheapRight = !hard, noisyRight = rng.nextDouble() < 0.5
            queries.append(Query(id: "q\(r)", text: "\(hard ? "hard" : "easy") question \(r)\n" + mcPrompt, task: hard ? "hard" : "easy",
                                 split: r < rows * 7 / 10 ? .train : .test))
            let correct = [cheapRight, noisyRight, true]
            scores += correct.map { $0 ? 1 : 0 }
            costs += [1e-4, 3e-4, 1e-2]
            responses.append(correct.map { ok in letters[ok ? right : 1 - right] + "\n" })
        }
        let table = try EvaluationTable(models: models, queries: queries, scores: scores, costs: costs, observed: Array(repeating: true, count: scores.count))
        return try AnswerTable(table: table, responses: responses)
    }

    static func environment(_ table: AnswerTable, rule: AggregationRule = .majority) throws -> MultiRoundEnvironment {
        let descriptors = try ModelDescriptor.measure(on: table, rows: table.rowIndices(split: .train), sizes: ["cheap": 7])
        var features = Matrix(rows: table.rowCount, cols: 2)
        for r in 0..<table.rowCount { features[r, 0] = 1; features[r, 1] = Float(r % 3) / 3 }
        return try MultiRoundEnvironment(table: table, descriptors: descriptors, scaler: DescriptorScaler(fitting: descriptors),
                                         queryFeatures: features, knownTasks: table.tasks, rule: rule)
    }

    @Test func extractsOptionsAndChoices() {
        let options = AnswerExtraction.options(inPrompt: "Q?\nPrint only a single choice  from \"A\" or \"B\" or \"C\" or \"D\" without explanation.\nAnswer:")
        #expect(options == ["A", "B", "C", "D"])
        #expect(AnswerExtraction.options(inPrompt: "Write a function to find the intersection of two arrays.").isEmpty)
        #expect(AnswerExtraction.choice(in: "C", options: options) == 2)
        #expect(AnswerExtraction.choice(in: "B\n", options: options) == 1)
        #expect(AnswerExtraction.choice(in: "A) Jeffrey", options: options) == 0)
        #expect(AnswerExtraction.choice(in: "The answer is (D).", options: options) == 3)
        #expect(AnswerExtraction.choice(in: "Okay,", options: options) == nil)
        #expect(AnswerExtraction.choice(in: "I do not know", options: options) == nil)
        #expect(AnswerExtraction.choice(in: "def f(): return A", options: []) == nil)
    }

    @Test func rewardFollowsRouterR1() throws {
        // Percentiles as NumPy's default (linear) interpolation.
        #expect(abs(CostAwareReward.percentile([1, 2, 3, 4], 5) - 1.15) < 1e-12)
        #expect(abs(CostAwareReward.percentile([1, 2, 3, 4], 95) - 3.85) < 1e-12)
        var reward = try CostAwareReward(alpha: 0.4, capacity: 3)
        #expect(reward.reward(cost: nil, correct: true) == -1)
        #expect(reward.reward(cost: 0.01, correct: true) == 1)  // one value: p95 = p5, cost term 1
        #expect(reward.reward(cost: 0.04, correct: false) == 0)
        // Window √cost = [0.1, 0.2, 0.3]: p5 = 0.11, p95 = 0.29; √0.09 = 0.3 clips to R_cost = 0.
        #expect(abs(reward.reward(cost: 0.09, correct: true) - 0.6) < 1e-12)
        // Capacity 3: 0.1 leaves, window {0.15, 0.2, 0.3} → p5 = 0.155, p95 = 0.29; 0.15 < p5 gives R_cost = 1.
        #expect(abs(reward.reward(cost: 0.0225, correct: true) - 1) < 1e-12)
        // Against that window √cost = 0.25 gives R_cost = 1 − (0.25 − 0.155)/(0.29 − 0.155).
        #expect(abs(reward.costTerm(0.25) - (1 - (0.25 - 0.155) / (0.29 - 0.155))) < 1e-12)
        #expect(throws: MultiRoundError.self) { try CostAwareReward(alpha: 1.5) }
    }

    @Test func aggregatesByVoteAndAccuracy() throws {
        let table = try Self.syntheticTable(rows: 4, seed: 1)
        // Row 1 is hard: cheap is wrong, pricey right.
        let r = 1
        let majority = Aggregator.aggregate(row: r, called: [0, 2], accuracy: [0.5, 0.9], table: table, rule: .majority)
        #expect(majority.model == 2 && majority.distinct == 2 && majority.support == 1)  // tie 1–1 → more accurate
        let bayes = Aggregator.aggregate(row: r, called: [0, 2], accuracy: [0.5, 0.9], table: table, rule: .bayes)
        #expect(bayes.model == 2 && abs(bayes.confidence - 0.9) < 1e-9)
        // Two cheap, weak voters outvote a strong one under majority but not under Bayes weights.
        let three = Aggregator.aggregate(row: r, called: [0, 0, 2], accuracy: [0.6, 0.6, 0.95], table: table, rule: .majority)
        #expect(three.model == 0 && three.support == 2)
        let threeBayes = Aggregator.aggregate(row: r, called: [0, 0, 2], accuracy: [0.6, 0.6, 0.95], table: table, rule: .bayes)
        #expect(threeBayes.model == 2)
    }

    @Test func environmentRefusesInvalidTrajectoriesAndHidesScores() throws {
        let table = try Self.syntheticTable(rows: 10, seed: 2)
        let env = try Self.environment(table)
        var s = EpisodeState(row: 0)
        #expect(env.step(&s, .answer) == .invalid(cost: 0))
        s = EpisodeState(row: 0)
        #expect(env.step(&s, .call(0)) == nil)
        #expect(env.step(&s, .call(0)) == .invalid(cost: 1e-4))
        s = EpisodeState(row: 0)
        for k in [0, 1, 2] { #expect(env.step(&s, .call(k)) == nil) }
        #expect(env.step(&s, .answer)?.isValid == true)
        // A fifth call is invalid with maxCalls 4 (only 3 models here: use a 2-call budget).
        let short = try MultiRoundEnvironment(table: table, descriptors: env.descriptors, scaler: env.scaler, queryFeatures: env.queryFeatures,
                                              knownTasks: table.tasks, maxCalls: 2)
        s = EpisodeState(row: 0)
        _ = short.step(&s, .call(0)); _ = short.step(&s, .call(1))
        #expect(short.step(&s, .call(2))?.isValid == false)
        // Observations do not change when scores change but answers do not.
        let flipped = AnswerTable(models: table.models, tasks: table.tasks, queries: table.queries, taskOf: table.taskOf, choices: table.choices,
                                  scores: table.scores.map { 1 - $0 }, costs: table.costs, answers: table.answers)
        let other = try MultiRoundEnvironment(table: flipped, descriptors: env.descriptors, scaler: env.scaler, queryFeatures: env.queryFeatures,
                                              knownTasks: table.tasks)
        var a = EpisodeState(row: 3), b = EpisodeState(row: 3)
        for k in [0, 2] {
            #expect(env.observe(a).global == other.observe(b).global && env.observe(a).candidates == other.observe(b).candidates)
            _ = env.step(&a, .call(k)); _ = other.step(&b, .call(k))
        }
        #expect(env.observe(a).global == other.observe(b).global)
    }

    @Test func hindsightDPMatchesBruteForce() throws {
        // A random table with 5 models and 4 options: DP over sets equals enumerating every sequence.
        var rng = SeededRandom(seed: 3)
        let models = (0..<5).map { "m\($0)" }
        var queries: [Query] = [], scores: [Double] = [], costs: [Double] = [], responses: [[String?]] = []
        let prompt = "Q\nPrint only a single choice from \"A\" or \"B\" or \"C\" or \"D\". Answer:"
        for r in 0..<40 {
            let right = rng.nextInt(below: 4)
            queries.append(Query(id: "q\(r)", text: prompt, task: "t", split: .test))
            var row: [String?] = []
            for _ in models {
                let answer = rng.nextDouble() < 0.5 ? right : rng.nextInt(below: 4)
                row.append(["A", "B", "C", "D"][answer])
                scores.append(answer == right ? 1 : 0)
                costs.append(rng.nextDouble() * 1e-3)
            }
            responses.append(row)
        }
        let table = try AnswerTable(table: EvaluationTable(models: models, queries: queries, scores: scores, costs: costs,
                                                           observed: Array(repeating: true, count: scores.count)), responses: responses)
        let descriptors = try ModelDescriptor.measure(on: table, rows: Array(0..<40), sizes: [:])
        let env = try MultiRoundEnvironment(table: table, descriptors: descriptors, scaler: DescriptorScaler(fitting: descriptors),
                                           queryFeatures: Matrix(rows: 40, cols: 1), knownTasks: table.tasks, maxCalls: 3)
        for lambda in [0.0, 200, 2000] {
            var brute = 0.0
            for r in 0..<40 {
                var best = -Double.infinity
                func go(_ called: [Int]) {
                    if !called.isEmpty {
                        var s = EpisodeState(row: r)
                        for k in called { _ = env.step(&s, .call(k)) }
                        let o = env.step(&s, .answer)!
                        best = max(best, o.score - lambda * o.cost)
                    }
                    guard called.count < 3 else { return }
                    for k in 0..<5 where !called.contains(k) { go(called + [k]) }
                }
                go([])
                brute += best
            }
            let dp = try HindsightOptimum.frontier(env, rows: Array(0..<40), lambdas: [lambda])[0]
            #expect(abs((dp.quality - lambda * dp.cost) - brute / 40) < 1e-9)
        }
        // λ = 0: right whenever any model is right.
        let oracle = (0..<40).filter { r in (0..<5).contains { table.score(r, $0) == 1 } }.count
        #expect(abs(try HindsightOptimum.frontier(env, rows: Array(0..<40), lambdas: [0])[0].quality - Double(oracle) / 40) < 1e-12)
    }

    @Test func ppoLearnsToEscalateOnlyWhereNeededAndIsDeterministic() throws {
        let table = try Self.syntheticTable(rows: 200, seed: 4)
        let env = try Self.environment(table)
        var c = PPOConfiguration()
        c.alpha = 0.5
        c.iterations = 40
        c.episodesPerIteration = 128
        c.minibatchSize = 128
        c.hidden = 16
        c.candidateHidden = 8
        c.valueHidden = 16
        c.learningRate = 3e-3
        c.seed = 9
        let train = table.rowIndices(split: .train), test = table.rowIndices(split: .test)
        let (policy, log) = try PPOTrainer.train(environment: env, rows: train, configuration: c)
        let result = try MultiRoundEvaluation.policy(policy, env, rows: test, method: "ppo", setting: "")
        // Optimal: cheap on easy, pricey on hard → quality 1 at half the pricey cost.
        #expect(result.quality >= 0.95, "quality \(result.quality)")
        #expect(result.cost < 0.75 * 1e-2, "cost \(result.cost)")
        #expect(result.invalidRate == 0)
        #expect(log.last!.meanReward > log.first!.meanReward)
        let (again, _) = try PPOTrainer.train(environment: env, rows: train, configuration: c)
        #expect(again.network == policy.network)
    }

    @Test func descriptorsLetAPolicyUseAnUnseenModel() throws {
        let table = try Self.syntheticTable(rows: 40, seed: 5)
        let env = try Self.environment(table)
        let policy = MultiRoundPolicy(network: PolicyNetwork(globalDimension: env.globalDimension, candidateDimension: env.candidateDimension, seed: 1),
                                      alpha: 0.5, models: table.models)
        // Offer a copy of "pricey" under a new name: it is scored exactly like the original.
        let twin = AnswerTable(models: table.models + ["pricey-twin"], tasks: table.tasks, queries: table.queries, taskOf: table.taskOf, choices: table.choices,
                               scores: (0..<table.rowCount).flatMap { r in (0..<3).map { table.score(r, $0) } + [table.score(r, 2)] },
                               costs: (0..<table.rowCount).flatMap { r in (0..<3).map { table.cost(r, $0) } + [table.cost(r, 2)] },
                               answers: (0..<table.rowCount).flatMap { r in (0..<3).map { table.answer(r, $0) } + [table.answer(r, 2)] })
        var twinDescriptor = env.descriptors[2]
        twinDescriptor.model = "pricey-twin"
        let bigger = try MultiRoundEnvironment(table: twin, descriptors: env.descriptors + [twinDescriptor], scaler: env.scaler,
                                               queryFeatures: env.queryFeatures, knownTasks: table.tasks)
        try policy.check(bigger)
        let logits = policy.network.forward(bigger.observe(EpisodeState(row: 0)), models: 4).logits
        #expect(logits[2] == logits[3])
        let evaluation = try MultiRoundEvaluation.policy(policy, bigger, rows: Array(0..<40), method: "zero-shot", setting: "")
        #expect(evaluation.callShare.keys.contains("pricey-twin"))
        // A descriptor list that does not match the table is refused.
        #expect(throws: MultiRoundError.self) {
            try MultiRoundEnvironment(table: twin, descriptors: env.descriptors, scaler: env.scaler, queryFeatures: env.queryFeatures, knownTasks: table.tasks)
        }
    }

    @Test func routerBenchAnswersAgreeExactlyWhenScoresDo() throws {
        let path = "../shared/data/routerbench-3task"
        guard FileManager.default.fileExists(atPath: path) else { return }
        var report = LoadReport()
        let loaded = try RouterBenchLoader.loadWithResponses(path: path, options: LoadOptions(), report: &report)
        #expect(loaded.responses.count == loaded.table.queryCount)
        let table = try AnswerTable(table: loaded.table, responses: loaded.responses)
        #expect(table.rowCount + table.dropped == loaded.table.queryCount)
        #expect(table.rowCount > 3000 && Set(table.tasks) == ["arc-challenge", "mbpp", "winogrande"])
        // Models giving the same option always got the same grade: agreement is a faithful signal.
        var groups = 0
        for r in 0..<table.rowCount where table.choices[r] > 0 {
            var grade: [Int: Double] = [:]
            for k in 0..<table.modelCount where table.answer(r, k) >= 0 {
                if let g = grade[table.answer(r, k)] { #expect(g == table.score(r, k)) } else { grade[table.answer(r, k)] = table.score(r, k); groups += 1 }
            }
        }
        #expect(groups > 5000)
        // Exactly the code-writing task is open-ended.
        #expect((0..<table.rowCount).allSatisfy { (table.choices[$0] == 0) == (table.tasks[table.taskOf[$0]] == "mbpp") })
    }
}
