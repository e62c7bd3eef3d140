import FedRouteData
import FedRouteEvaluation
import FedRouteFeatures
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteRouters
import FedRouteSimulation
import Foundation
import Testing

/// `simulate --export-federation`: the job's `safety` block names the simulation's gate grid by its
/// band count, so a grid that count cannot name is refused rather than silently replaced.
@Suite struct FederationExportTests {
    @Test func theSafetyBlockNamesTheSimulationsGateGridOrTheExportIsRefused() async throws {
        var c = SimulationConfiguration()
        c.families = [.kmeans]
        c.partition.clients = 3
        c.encoder = .hashed(HashedTFIDFEncoder.Configuration(dimension: 32, wordNGrams: 1...1, charNGrams: nil))
        c.kmeans.localClusters = 3
        c.kmeans.clusterCandidates = [2, 4]
        c.safetyLambdas = SafetyGate.defaultLambdas(bands: 12)
        c.setSeed(1)
        let table = try SyntheticData.table(queries: 200, seed: 3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try await Simulation.run(table, configuration: c)
        try FederationExport.write(result, to: dir, port: 7443)
        let server = try CoordinatorConfiguration.load(path: (dir as NSString).appendingPathComponent("server.json"))
        #expect(server.safety?.bands == 12 && server.safety?.lambdas == c.safetyLambdas)

        var other = c
        other.safetyLambdas = FrontierMetrics.geomspace(1e-1, 1e3, count: 12)
        let custom = try await Simulation.run(table, configuration: other)
        #expect(throws: FederationError.self) { try FederationExport.write(custom, to: dir + "-custom", port: 7443) }
    }
}
