import ArgumentParser
import FedRouteRouters
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "End to end: train MLP-, K-Means- and kNN-routers, evaluate them against references, write report and plot.")

    @Option(name: .long, help: "Output folder for routers and the report.") var out = "demo-report"
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var encoderOptions: EncoderOptions
    @OptionGroup var routerOptions: RouterOptions
    @OptionGroup var sweep: SweepOptions

    func run() throws {
        let (train, test) = try dataOptions.loadTrainTest()
        let featurized = try Training.featurize(train, encoderOptions: encoderOptions)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var pipelines: [(name: String, pipeline: RoutingPipeline)] = []
        for kind in [RouterKind.mlp, .kmeans, .knn] {
            let p = try Training.train(kind, featurized, routerOptions: routerOptions, seed: dataOptions.seed)
            let path = (out as NSString).appendingPathComponent("\(kind.rawValue)-router.safetensors")
            try RouterFile.save(p, to: path, extraMetadata: ["trained_on": dataOptions.data, "seed": String(dataOptions.seed)])
            pipelines.append(("\(kind.rawValue)-router", p))
        }
        try Reporting.evaluate(pipelines, train: train, test: test, sweep: sweep, encoderOptions: encoderOptions, out: out,
                               title: "fedroute demo: \((dataOptions.data as NSString).lastPathComponent), centralized routers")
    }
}
