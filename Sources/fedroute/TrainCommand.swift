import ArgumentParser
import FedRouteData
import FedRouteFeatures
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
        let loaded = try dataOptions.load()
        let (train, test) = try dataOptions.split(loaded.table)
        Console.info("train \(train.queryCount) queries, test \(test.queryCount) held out; \(train.modelCount) models")
        let pipeline = try Training.train(router, train: train, encoderOptions: encoderOptions, routerOptions: routerOptions, seed: dataOptions.seed)
        try RouterFile.save(pipeline, to: out, extraMetadata: ["trained_on": dataOptions.data, "seed": String(dataOptions.seed)])
        print("saved \(router.rawValue) router to \(out)")
    }
}

enum Training {
    static func train(_ kind: RouterKind, train: EvaluationTable, encoderOptions: EncoderOptions, routerOptions: RouterOptions, seed: UInt64) throws -> RoutingPipeline {
        let texts = train.queries.map(\.text)
        let encoder = try encoderOptions.fittedEncoder(on: texts)
        let features = encoderOptions.features(texts, encoder: encoder)
        let start = Date()
        let router = try routerOptions.train(kind, features: features, table: train, seed: seed, label: kind.rawValue)
        Console.info(String(format: "trained %@ router in %.1fs", kind.rawValue, Date().timeIntervalSince(start)))
        return try RoutingPipeline(encoder: encoder, router: router)
    }
}
