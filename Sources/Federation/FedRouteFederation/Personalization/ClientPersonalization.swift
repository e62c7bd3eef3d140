import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteRouters
import Foundation

/// What a client does with the federation's routers once training is over: keep them, fine-tune
/// each on its local data (`Personalization.fineTune`), and — given a local test set — compare the
/// two on it. Files: `federated-<family>.safetensors`, `personalized-<family>.safetensors` and
/// `personalization.json` (AUC by family and router).
public struct ClientPersonalization: Sendable {
    public var settings: Personalization.FineTuning
    /// The λ sweep of the comparison.
    public var lambdas = FrontierMetrics.geomspace(1e-2, 1e7, count: 100)

    public init(settings: Personalization.FineTuning) { self.settings = settings }

    /// One family's result.
    public struct FamilyOutcome: Sendable, Equatable {
        public var family: String
        public var federatedFile: String
        public var personalizedFile: String
        /// AUC of `federated` and `fine-tuned` on the local test set (nil without one).
        public var auc: [String: Double]?
    }

    /// Writes the routers (safetensors bytes by family) and their fine-tuned versions to `directory`.
    public func run(routers: [String: Data], train: EvaluationTable, test: EvaluationTable?, into directory: String) throws -> [FamilyOutcome] {
        guard !routers.isEmpty else { throw FederationError.invalidConfiguration("the coordinator sent no routers to personalise") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var outcomes: [FamilyOutcome] = []
        for (family, bytes) in routers.sorted(by: { $0.key < $1.key }) {
            let global = (directory as NSString).appendingPathComponent("federated-\(family).safetensors")
            try bytes.write(to: URL(fileURLWithPath: global), options: .atomic)
            let pipeline = try RouterFile.load(path: global)
            let features = pipeline.encoder.encode(train.queries.map(\.text))
            let tuned = try Personalization.fineTune(pipeline.router, features: features, table: train, settings: settings)
            let file = (directory as NSString).appendingPathComponent("personalized-\(family).safetensors")
            try RouterFile.save(try RoutingPipeline(encoder: pipeline.encoder, router: tuned), to: file,
                                extraMetadata: ["trained_by": "fedroute client --personalize (fine-tuned on local data)"])
            var auc: [String: Double]?
            if let test {
                let evaluator = try Evaluator(train: train, test: test, lambdas: lambdas)
                let rows = (0..<test.queryCount).filter { test.isFullyObserved(row: $0) }
                let x = pipeline.encoder.encode(rows.map { test.queries[$0].text })
                let r = try evaluator.evaluate([("federated", try pipeline.router.predict(features: x)), ("fine-tuned", try tuned.predict(features: x))])
                auc = Dictionary(uniqueKeysWithValues: r.entries.filter { $0.role == .router }.map { ($0.name, $0.auc) })
            }
            outcomes.append(FamilyOutcome(family: family, federatedFile: global, personalizedFile: file, auc: auc))
        }
        let report = Dictionary(uniqueKeysWithValues: outcomes.compactMap { o in o.auc.map { (o.family, $0) } })
        if !report.isEmpty {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            try e.encode(report).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("personalization.json")), options: .atomic)
        }
        return outcomes
    }
}
