import ArgumentParser
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging

/// `fedroute coordinator`: the coordinator of a federation over the network.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Coordinate federated training over the network (HTTP/2 + TLS): setup, MLP rounds, federated K-Means; resumes from its checkpoint.",
        aliases: ["server"])

    @Option(name: .long, help: "Coordinator configuration (YAML or JSON; see docs/FEDERATION.md).") var config: String
    @Option(name: .long, help: "Override the configured port (0 picks a free one).") var port: Int?
    @Flag(name: .long, help: "Ignore an existing checkpoint and start over.") var fresh = false
    @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info

    func run() async throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        var c = try CoordinatorConfiguration.load(path: config)
        if let port { c.port = port }
        LoggingSystem.bootstrapStandardError(level: logLevel)
        let bar = ProgressBar(label: "federation", total: max(1, c.mlp.rounds))
        let service = try CoordinatorService(configuration: c, fresh: fresh, logger: Logger(label: "fedroute.coordinator")) { p in
            if p.stage == "FedAvg round" { bar.update(p.step, detail: p.loss.map { String(format: "loss %.4f", $0) } ?? "") }
        }
        let result = try await service.run()
        bar.finish()
        for (family, auc) in result.validationAUC.sorted(by: { $0.key < $1.key }) { print(String(format: "%@ validation AUC %.4f", family, auc)) }
        print("wrote \(c.outputDirectory)/summary.json and \(result.routerFiles.values.sorted().joined(separator: ", "))")
    }
}
