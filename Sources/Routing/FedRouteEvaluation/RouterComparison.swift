import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters

/// Evaluates routing pipelines (router files) side by side on a test set, with every reference the
/// `Evaluator` adds (oracle, best-single@λ, zero-router, cheapest, random): what `fedroute eval`
/// and the demo report.
public enum RouterComparison {
    /// Encodes texts with a pipeline's encoder; the CLI passes one backed by the feature cache.
    public typealias Featurize = (TextEncoder, [String]) throws -> Matrix

    /// Each pipeline's predictions on the fully labelled test queries, evaluated over `lambdas`; a
    /// safe router (one with a `SafetyGate`) appears as itself and as `NAME (raw)` without its gate.
    /// A pipeline whose models differ from the data's is an error naming both lists.
    public static func evaluate(_ pipelines: [(name: String, pipeline: RoutingPipeline)], train: EvaluationTable, test: EvaluationTable,
                                lambdas: [Double], featurize: Featurize = { $0.encode($1) }) throws -> EvaluationReport {
        let evaluator = try Evaluator(train: train, test: test, lambdas: lambdas)
        let texts = evaluator.test.queries.map(\.text)
        var predictions: [(name: String, predictions: RouterPredictions)] = []
        for p in pipelines {
            guard p.pipeline.router.models == evaluator.test.models else {
                throw RouterError.modelMismatch(expected: p.pipeline.router.models, got: evaluator.test.models)
            }
            let safe = try p.pipeline.predict(features: try featurize(p.pipeline.encoder, texts))
            predictions.append((p.name, safe))
            // A safe router is reported twice: as deployed (with its gate) and raw.
            if safe.safety != nil {
                var raw = safe
                raw.safety = nil
                predictions.append((p.name + " (raw)", raw))
            }
        }
        return try evaluator.evaluate(predictions)
    }
}
