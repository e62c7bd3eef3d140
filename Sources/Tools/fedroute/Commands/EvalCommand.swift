import ArgumentParser
import FedRouteEvaluation
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

    func validate() throws {
        guard !router.isEmpty else { throw ValidationError("give at least one --router file") }
    }

    func run() throws {
        try OutputPath.checkWritable(directory: out)
        let (train, test) = try dataOptions.loadTrainTest()
        let pipelines = try router.map { (name: (($0 as NSString).lastPathComponent as NSString).deletingPathExtension, pipeline: try RouterFile.load(path: $0, minilmDirectory: encoderOptions.minilmDirectory)) }
        let report = try RouterComparison.evaluate(pipelines, train: train, test: test, lambdas: sweep.lambdas,
                                                   featurize: { encoderOptions.features($1, encoder: $0) })
        let paths = try ReportWriter.write(report, to: out, title: "Accuracy–cost frontiers: \(dataOptions.data)")
        print(ReportWriter.table(report))
        print("wrote " + paths.joined(separator: ", "))
    }
}
