import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// `train` and `demo`: encode the training queries once, then train routers with a progress bar.
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

    static func train(_ family: RouterFamily, _ data: Featurized, configuration: RouterTrainingConfiguration, seed: UInt64,
                      safety: (validationFraction: Double, lambdas: [Double], standardErrors: Double?)? = nil) throws -> RoutingPipeline {
        let start = Date()
        let bar = ProgressBar(label: family.rawValue, total: 1)
        let progress: ProgressHandler = { bar.update($0.step, of: $0.total, detail: $0.loss.map { String(format: "loss %.4f", $0) } ?? "") }
        let pipeline: RoutingPipeline
        if let safety {
            pipeline = try configuration.trainSafe(family, encoder: data.encoder, features: data.features, table: data.table, seed: seed,
                                                   validationFraction: safety.validationFraction, lambdas: safety.lambdas,
                                                   standardErrors: safety.standardErrors, progress: progress)
        } else {
            pipeline = try RoutingPipeline(encoder: data.encoder, router: try configuration.train(family, features: data.features, table: data.table,
                                                                                                  seed: seed, progress: progress))
        }
        bar.finish()
        Console.info(String(format: "trained %@ router in %.1fs", family.rawValue, Date().timeIntervalSince(start)))
        if let gate = pipeline.safety {
            Console.info("safety gate: best-single@λ in \(gate.fallbackBands) of \(gate.lambdas.count) λ bands (\(gate.validationQueries) validation queries)")
        }
        return pipeline
    }
}
