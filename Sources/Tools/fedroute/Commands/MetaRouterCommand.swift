import ArgumentParser
import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteMetaRouter
import FedRouteNumerics
import Foundation

/// `fedroute meta-router`: the Meta-Router experiment (few gold labels + many biased judge labels).
struct MetaRouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meta-router",
        abstract: "Learn a primary-vs-alternative router from few gold and many judge labels (R/DR-learner bias correction) and compare estimators over random splits.",
        discussion: """
            Gold gains come from the data (primary score − alternative score). Judge labels are simulated with a documented, \\
            query-dependent bias (see JudgedPair): y = a·(ψ − Δ(q)) + b + noise, Δ(q) = per-task bias + length bias. \\
            For every split and gold size, every estimator is fitted on n gold and m judge rows and scored by its efficiency \\
            gain over random routing at each primary-usage ratio on the held-out rows; medians over splits are reported. \\
            The federated R/DR learners spread the same rows over --clients parties and aggregate only sufficient statistics.
            """)

    @Option(name: .long, help: "Evaluation data with both models (RouteLLM's MMLU + GSM8K by default).") var data = "../shared/data/routellm-pair"
    @Option(name: .long, help: "Data format; detected when omitted.") var format: DataFormat?
    @Option(name: .long, help: "The expensive model.") var primary = "gpt-4-1106-preview"
    @Option(name: .long, help: "The cheaper model.") var alternative = "mistralai/Mixtral-8x7B-Instruct-v0.1"
    @Option(name: .long, parsing: .upToNextOption, help: "Gold-label set sizes n.") var gold: [Int] = [50, 100, 200]
    @Option(name: .long, help: "Judge-label set size m.") var judge = 4000
    @Option(name: .long, help: "Random splits (medians are reported).") var splits = 50
    @Option(name: .long, help: "Scale alignment: none, variance-ratio, quantile.") var alignment: ScaleAlignment = .varianceRatio
    @Option(name: .long, help: "Propensity: constant or logistic.") var propensity: PropensityModel = .constant
    @Option(name: .long, help: "Cross-fitting folds.") var folds = 5
    @Option(name: .long, help: "Ridge penalty of the outcome and final regressions.") var ridge = 1e-3
    @Option(name: .long, help: "Ridge penalty of the bias regression Δ̂.") var biasRidge = 0.1
    @Option(name: .long, help: "Clients of the federated variant.") var clients = 5
    @Option(name: .long, help: "Hashed TF-IDF feature dimension.") var dimension = 256
    @Option(name: .long, help: "Judge simulation: mean of the per-task bias (gold scale).") var judgeBiasMean = JudgedPair.JudgeModel().taskBiasMean
    @Option(name: .long, help: "Judge simulation: spread of the per-task bias.") var judgeBiasSd = JudgedPair.JudgeModel().taskBiasSD
    @Option(name: .long, help: "Judge simulation: bias per standard deviation of log query length.") var judgeLengthBias = JudgedPair.JudgeModel().lengthBias
    @Option(name: .long, help: "Judge simulation: noise (gold scale).") var judgeNoise = JudgedPair.JudgeModel().noise
    @Flag(name: .long, inversion: .prefixedNo, help: "Append the query's standardised log length to every method's features (hashed TF-IDF is length-normalised).") var lengthFeature = true
    @Option(name: .long, help: "Design of the R/DR bias regression: features (general CATE) or length (intercept + log length: bias simpler than gain).") var biasBasis: MetaRouterExperiment.BiasBasis = .features
    @Option(name: .long, help: "Seed of the judge simulation and the splits.") var seed: UInt64 = 0
    @Option(name: .long, parsing: .upToNextOption, help: "M-model mode: candidate models, each debiased against --reference; routes by ψ̂_j − w·Δcost_j.") var candidates: [String] = []
    @Option(name: .long, help: "M-model mode: the reference model every candidate's gain is measured against.") var reference = "mistralai/mistral-7b-chat"
    @Option(name: .long, help: "Output folder (result.json, curves.csv, curves-n<gold>.svg, summary.txt).") var out = "meta-router-report"

    func validate() throws {
        guard !gold.isEmpty, gold.allSatisfy({ $0 >= 2 }) else { throw ValidationError("--gold needs sizes ≥ 2") }
        guard judge >= 2, splits >= 1, folds >= 2, clients >= 1, dimension >= 1 else { throw ValidationError("--judge ≥ 2, --splits ≥ 1, --folds ≥ 2, --clients ≥ 1 and --dimension ≥ 1 are required") }
    }

    func run() throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        try OutputPath.checkWritable(directory: out)
        let table = try DataOptions.load(path: data, format: format, skipInvalid: false).table
        var judgeModel = JudgedPair.JudgeModel()
        judgeModel.taskBiasMean = judgeBiasMean
        judgeModel.taskBiasSD = judgeBiasSd
        judgeModel.lengthBias = judgeLengthBias
        judgeModel.noise = judgeNoise
        if !candidates.isEmpty { return try runMany(table: table, judge: judgeModel) }
        let pair = try JudgedPair(table: table, primary: primary, alternative: alternative, judge: judgeModel, seed: seed)
        let features = MetaRouterReportWriter.features(pair.texts, dimension: dimension)
        let settings = applyOptions(to: MetaRouterExperiment.Settings())
        Console.info("\(pair.count) queries; primary \(primary), alternative \(alternative); mean gold gain \(String(format: "%.3f", pair.gold.reduce(0, +) / Double(pair.count)))")
        let bar = ProgressBar(label: "splits", total: splits * gold.count)
        let result = try MetaRouterExperiment.run(pair: pair, features: features, settings: settings) { done, _ in bar.update(done) }
        bar.finish()

        let text = try MetaRouterReportWriter.write(result, queries: pair.count, source: data, to: out)
        print(text)
        print("wrote \(out)/result.json, curves.csv, curves-n*.svg, summary.txt")
    }
}

extension MetaRouterCommand {
    /// The split and estimator options, shared by the two-model and the M-model experiment.
    func applyOptions<S: MetaRouterSplitSettings>(to base: S) -> S {
        var settings = base
        settings.goldSizes = gold
        settings.judgeSize = judge
        settings.splits = splits
        settings.seed = seed
        settings.clients = clients
        settings.lengthFeature = lengthFeature
        settings.biasBasis = biasBasis
        settings.configuration.alignment = alignment
        settings.configuration.propensity = propensity
        settings.configuration.folds = folds
        settings.configuration.ridge = ridge
        settings.configuration.biasRidge = biasRidge
        return settings
    }

    /// The M-model experiment: every candidate's gain over the reference is learned separately.
    func runMany(table: EvaluationTable, judge judgeModel: JudgedPair.JudgeModel) throws {
        let models = try JudgedModels(table: table, reference: reference, candidates: candidates, judge: judgeModel, seed: seed)
        let features = MetaRouterReportWriter.features(models.texts, dimension: dimension)
        let settings = applyOptions(to: MultiModelMetaRouter.Settings())
        Console.info("\(models.count) queries; reference \(reference), candidates \(candidates.joined(separator: ", "))")
        let bar = ProgressBar(label: "splits", total: splits * gold.count)
        let result = try MultiModelMetaRouter.run(models: models, features: features, settings: settings) { done, _ in bar.update(done) }
        bar.finish()
        let text = try MetaRouterReportWriter.write(result, queries: models.count, source: data, to: out)
        print(text)
        print("wrote \(out)/result-many.json, summary-many.txt")
    }
}

