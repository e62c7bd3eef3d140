import ArgumentParser
import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteRouters
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate routers on the test split: frontiers, AUC, AIQ, references; writes JSON, CSV and SVG.")

    @Option(name: .long, parsing: .upToNextOption, help: "Router files to evaluate.") var router: [String]
    @Option(name: .long, help: "Output folder for report.json, frontier.csv, frontier.svg, summary.txt.") var out: String
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var encoderOptions: EncoderOptions
    @OptionGroup var sweep: SweepOptions

    func run() throws {
        let (train, test) = try dataOptions.loadTrainTest()
        let pipelines = try router.map { (name: (($0 as NSString).lastPathComponent as NSString).deletingPathExtension, pipeline: try RouterFile.load(path: $0, minilmDirectory: encoderOptions.minilmDirectory)) }
        try Reporting.evaluate(pipelines, train: train, test: test, sweep: sweep, encoderOptions: encoderOptions, out: out, title: "Accuracy–cost frontiers: \(dataOptions.data)")
    }
}

struct SweepOptions: ParsableArguments {
    @Option(name: .long, help: "Smallest λ of the sweep.") var lambdaMin = 1e-2
    @Option(name: .long, help: "Largest λ of the sweep.") var lambdaMax = 1e7
    @Option(name: .long, help: "Number of λ values (log-spaced).") var lambdaCount = 100

    var lambdas: [Double] { FrontierMetrics.geomspace(lambdaMin, lambdaMax, count: lambdaCount) }
}

enum Reporting {
    static func evaluate(_ pipelines: [(name: String, pipeline: RoutingPipeline)], train: EvaluationTable, test: EvaluationTable,
                         sweep: SweepOptions, encoderOptions: EncoderOptions, out: String, title: String) throws {
        guard sweep.lambdaMin > 0, sweep.lambdaMax >= sweep.lambdaMin, sweep.lambdaCount >= 1 else {
            throw ValidationError("λ sweep needs 0 < --lambda-min ≤ --lambda-max and --lambda-count ≥ 1")
        }
        let evaluator = try Evaluator(train: train, test: test, lambdas: sweep.lambdas)
        let texts = evaluator.test.queries.map(\.text)
        let predictions = try pipelines.map { p -> (name: String, predictions: RouterPredictions) in
            guard p.pipeline.router.models == evaluator.test.models else {
                throw RouterError.modelMismatch(expected: evaluator.test.models, got: p.pipeline.router.models)
            }
            return (p.name, try p.pipeline.router.predict(features: encoderOptions.features(texts, encoder: p.pipeline.encoder)))
        }
        let report = try evaluator.evaluate(predictions)
        let paths = try ReportWriter.write(report, to: out, title: title)
        print(ReportWriter.table(report))
        print("wrote " + paths.joined(separator: ", "))
    }
}
