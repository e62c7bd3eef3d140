import ArgumentParser
import FedRouteEvaluation
import FedRouteNumerics
import FedRouteRouters
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "End to end: train a router of every family, evaluate them against references, write report and plot.")

    @Option(name: .long, help: "Output folder for routers and the report.") var out = "demo-report"
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var encoderOptions: EncoderOptions
    @OptionGroup var routerOptions: RouterOptions
    @OptionGroup var sweep: SweepOptions

    func run() throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        try OutputPath.checkWritable(directory: out)
        let (train, test) = try dataOptions.loadTrainTest()
        let featurized = try Training.featurize(train, encoderOptions: encoderOptions)
        var pipelines: [(name: String, pipeline: RoutingPipeline)] = []
        for family in RouterFamily.allCases {
            let p = try Training.train(family, featurized, configuration: routerOptions.configuration, seed: dataOptions.seed, safety: routerOptions.safety)
            let path = (out as NSString).appendingPathComponent("\(family.rawValue)-router.safetensors")
            try RouterFile.save(p, to: path, extraMetadata: ["trained_on": dataOptions.data, "seed": String(dataOptions.seed)])
            pipelines.append(("\(family.rawValue)-router", p))
        }
        let report = try RouterComparison.evaluate(pipelines, train: train, test: test, lambdas: sweep.lambdas,
                                                   featurize: { encoderOptions.features($1, encoder: $0) })
        let paths = try ReportWriter.write(report, to: out, title: "fedroute demo: \((dataOptions.data as NSString).lastPathComponent), centralized routers")
        print(ReportWriter.table(report))
        print("wrote " + paths.joined(separator: ", "))
    }
}
