import ArgumentParser
import FedRouteNumerics
import FedRouteRouters
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a router on the training split and save it.")

    @Option(name: .long, help: "Router family.") var router: RouterFamily
    @Option(name: .long, help: "Output router file (.safetensors).") var out: String
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var encoderOptions: EncoderOptions
    @OptionGroup var routerOptions: RouterOptions

    func run() throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        try OutputPath.checkWritable(file: out)
        let (train, _) = try dataOptions.loadTrainTest()
        let featurized = try Training.featurize(train, encoderOptions: encoderOptions)
        let pipeline = try Training.train(router, featurized, configuration: routerOptions.configuration, seed: dataOptions.seed, safety: routerOptions.safety)
        try RouterFile.save(pipeline, to: out, extraMetadata: ["trained_on": dataOptions.data, "seed": String(dataOptions.seed)])
        print("saved \(router.rawValue) router to \(out)")
    }
}
