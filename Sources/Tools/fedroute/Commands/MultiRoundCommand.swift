import ArgumentParser
import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteMultiRound
import FedRouteNumerics
import Foundation

/// `fedroute multi-round`: Router-R1-style multi-round routing and aggregation learned with PPO.
struct MultiRoundCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "multi-round",
        abstract: "Learn a multi-round routing-and-aggregation policy with PPO on stored answers (Router-R1 reward) and compare it with single-round routers, cascades and the hindsight optimum.",
        discussion: """
            Needs RouterBench CSVs with '<model>|model_response' columns. A policy sees the query's features and task, the \\
            models called so far through their descriptors (log price, size, per-task accuracy), whether their answers \\
            agree, steps used and cost spent — never a score — and either calls a model (≤ --max-calls, each once) or \\
            answers (majority or naive-Bayes vote). Reward: −1 invalid; (1−α) + α·R_cost if right, R_cost = 1 − \\
            clip((√cost − p5)/(p95 − p5), 0, 1) over the last 1000 trajectories' √cost; 0 if wrong. One policy per --alphas \\
            value; --held-out models are removed from training and offered to the trained policy by descriptor (zero-shot).
            """)

    @Option(name: .long, help: "RouterBench CSV folder (with stored model responses).") var data = "../shared/data/routerbench-3task"
    @Option(name: .long, parsing: .upToNextOption, help: "Cost weights α of the reward, one PPO policy each.") var alphas: [Double] = MultiRoundExperiment.Settings().alphas
    @Option(name: .long, parsing: .upToNextOption, help: "α values of the zero-shot runs.") var zeroShotAlphas: [Double] = MultiRoundExperiment.Settings().zeroShotAlphas
    @Option(name: .long, parsing: .upToNextOption, help: "Models left out of training and offered by descriptor only.") var heldOut: [String] = MultiRoundExperiment.Settings().heldOut
    @Flag(name: .long, help: "Skip the zero-shot runs (no model is held out).") var noZeroShot = false
    @Option(name: .long, help: "Aggregation of the called answers: majority or bayes.") var rule: AggregationRule = .majority
    @Option(name: .long, help: "Most models one query may call.") var maxCalls = 4
    @Option(name: .long, help: "PPO iterations per policy.") var iterations = PPOConfiguration().iterations
    @Option(name: .long, help: "Trajectories per PPO iteration.") var episodes = PPOConfiguration().episodesPerIteration
    @Option(name: .long, help: "PPO epochs per iteration.") var epochs = PPOConfiguration().epochs
    @Option(name: .long, help: "PPO minibatch (transitions).") var minibatch = PPOConfiguration().minibatchSize
    @Option(name: .long, help: "Adam learning rate.") var learningRate: Float = PPOConfiguration().learningRate
    @Option(name: .long, help: "Entropy bonus coefficient.") var entropy: Float = PPOConfiguration().entropyCoefficient
    @Option(name: .long, help: "Hashed TF-IDF dimension of the query features.") var dimension = 64
    @Option(name: .long, help: "JSON object: parameters in billions by model (closed models may be left out).") var sizes = "examples/model-sizes.json"
    @Option(name: .long, help: "Seed of PPO, the routers and any split.") var seed: UInt64 = 0
    @Option(name: .long, help: "Output folder (result.json, points.csv, training.csv, pareto.svg, summary.txt).") var out = "multi-round-report"

    func validate() throws {
        guard !alphas.isEmpty, (alphas + zeroShotAlphas).allSatisfy({ (0...1).contains($0) }) else { throw ValidationError("α values must lie in [0, 1]") }
        guard maxCalls >= 1, iterations >= 1, episodes >= 1, epochs >= 1, minibatch >= 1, dimension >= 1 else {
            throw ValidationError("--max-calls, --iterations, --episodes, --epochs, --minibatch and --dimension must be at least 1")
        }
    }

    func run() throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        try OutputPath.checkWritable(directory: out)
        var report = LoadReport()
        let loaded = try RouterBenchLoader.loadWithResponses(path: data, options: LoadOptions(), report: &report)
        for note in report.notes { Console.info("note: \(note)") }
        let table = try AnswerTable(table: loaded.table, responses: loaded.responses)
        Console.info("\(table.rowCount) queries with every model's score and answer (\(table.dropped) left out), \(table.modelCount) models, tasks \(table.tasks.joined(separator: ", "))")
        var settings = MultiRoundExperiment.Settings()
        settings.alphas = alphas
        settings.zeroShotAlphas = noZeroShot ? [] : zeroShotAlphas
        settings.heldOut = noZeroShot ? [] : heldOut
        settings.rule = rule
        settings.maxCalls = maxCalls
        settings.ppo.iterations = iterations
        settings.ppo.episodesPerIteration = episodes
        settings.ppo.epochs = epochs
        settings.ppo.minibatchSize = minibatch
        settings.ppo.learningRate = learningRate
        settings.ppo.entropyCoefficient = entropy
        settings.ppo.seed = seed
        settings.seed = seed
        settings.sizes = try loadSizes()
        // Label-free features fitted on the training queries' text.
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: dimension))
        encoder.fit(table.queries.filter { $0.split != .test }.map(\.text))
        let features = encoder.encode(table.queries.map(\.text))

        let bar = ProgressBar(label: "stages", total: settings.alphas.count + settings.zeroShotAlphas.count + 1)
        let start = Date()
        let result = try MultiRoundExperiment.run(table: table, features: features, settings: settings) { stage, done, _ in
            bar.update(done, detail: stage)
            if !Console.isInteractive { Console.info(String(format: "[%5.0fs] %@", Date().timeIntervalSince(start), stage)) }
        }
        bar.finish()
        print(try MultiRoundReportWriter.write(result, source: data, to: out))
        print("wrote \(out)/result.json, points.csv, training.csv, pareto.svg, summary.txt")
    }

    func loadSizes() throws -> [String: Double] {
        guard FileManager.default.fileExists(atPath: sizes) else {
            if sizes == "examples/model-sizes.json" {
                Console.info("note: \(sizes) not found (run from the repository root); model sizes are treated as unknown")
                return [:]
            }
            throw ValidationError("--sizes: \(sizes) does not exist")
        }
        do {
            return try JSONDecoder().decode([String: Double].self, from: Data(contentsOf: URL(fileURLWithPath: sizes)))
        } catch {
            throw ValidationError("--sizes: \(sizes) is not a JSON object of numbers (\(error))")
        }
    }
}
