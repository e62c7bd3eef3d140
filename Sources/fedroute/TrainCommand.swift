import ArgumentParser
import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a router on the training split and save it.")

    @Option(name: .long, help: "Router family: mlp, kmeans or knn.") var router: RouterKind
    @Option(name: .long, help: "Output router file (.safetensors).") var out: String
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var encoderOptions: EncoderOptions
    @OptionGroup var routerOptions: RouterOptions

    func run() throws {
        let (train, _) = try dataOptions.loadTrainTest()
        let featurized = try Training.featurize(train, encoderOptions: encoderOptions)
        let pipeline = try Training.train(router, featurized, routerOptions: routerOptions, seed: dataOptions.seed)
        try RouterFile.save(pipeline, to: out, extraMetadata: ["trained_on": dataOptions.data, "seed": String(dataOptions.seed)])
        print("saved \(router.rawValue) router to \(out)")
    }
}

enum Training {
    /// Training queries encoded once: the fitted encoder, its features and the table.
    struct Featurized {
        var table: EvaluationTable
        var encoder: TextEncoder
        var features: Matrix
    }

    static func featurize(_ train: EvaluationTable, encoderOptions: EncoderOptions) throws -> Featurized {
        let texts = train.queries.map(\.text)
        let encoder = try encoderOptions.fittedEncoder(on: texts)
        return Featurized(table: train, encoder: encoder, features: encoderOptions.features(texts, encoder: encoder))
    }

    static func train(_ kind: RouterKind, _ data: Featurized, routerOptions: RouterOptions, seed: UInt64) throws -> RoutingPipeline {
        let start = Date()
        let router = try routerOptions.train(kind, features: data.features, table: data.table, seed: seed, label: kind.rawValue)
        Console.info(String(format: "trained %@ router in %.1fs", kind.rawValue, Date().timeIntervalSince(start)))
        return try RoutingPipeline(encoder: data.encoder, router: router)
    }
}
