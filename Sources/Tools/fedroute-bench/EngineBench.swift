import FedRouteData
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteRouters
import Foundation
import Logging

/// The in-process row of `scripts/flower-bench.sh`: an exported federation's (`simulate
/// --export-federation`) MLP rounds run by `FederationJob` over `InProcessTransport`, with the clients'
/// own files, so that the same rounds can be set against fedroute's transport and Flower. Prints one
/// JSON line: seconds per round (validation excluded, as in the other engines' reports).
func engineBench(federation dir: String) async throws {
    let config = try CoordinatorConfiguration.load(path: (dir as NSString).appendingPathComponent("server.json"))
    var job = config.job
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-engines-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    job.stateDirectory = scratch + "/state"
    job.outputDirectory = scratch + "/out"
    job.families = [.mlp]
    let clients = try config.clients.map { c in
        func path(_ suffix: String) -> String { (dir as NSString).appendingPathComponent("clients/\(c.id)\(suffix).jsonl") }
        let train = try DatasetLoader.load(path: path(""), format: .native).table
        let held = FileManager.default.fileExists(atPath: path("-validation")) ? try DatasetLoader.load(path: path("-validation"), format: .native).table : nil
        return InProcessClient(id: c.id, train: train, validation: held)
    }
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let result = try await FederationJob(configuration: job, transport: InProcessTransport(clients: clients), store: try CheckpointStore(directory: job.stateDirectory),
                                         logger: logger).run(initialState: nil)
    let seconds = result.traffic.map(\.seconds)
    let line: [String: Any] = ["engine": "in-process", "rounds": seconds.count, "seconds_per_round": seconds.reduce(0, +) / Double(max(1, seconds.count)),
                               "validation_auc": result.validationAUC["mlp"] ?? -1]
    print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
}
