import FedRouteData
import FedRouteFeatures
import FedRouteFederation
import FedRouteHTTP
import FedRouteNetwork
import FedRouteSimulation
import Foundation
import Logging

/// Issue 4's benchmark: wall time and bytes on the wire per FedAvg round for 10 clients on
/// loopback (HTTP/2 + TLS, JSON with base64 tensors), against the same rounds in process.
func networkBench(table: EvaluationTable) async throws {
    let shards = try FederatedPartition.make(table, configuration: PartitionConfiguration())
    var mlp = FederatedMLPConfiguration()
    mlp.rounds = 5
    var kmeans = FederatedKMeansConfiguration()
    kmeans.seed = 1
    // In process.
    let inProcess = try FederationCoordinator(clients: shards.map { InProcessClient(id: $0.id, train: $0.train) })
    let e = try await inProcess.fitHashedEncoder(HashedTFIDFEncoder.Configuration())
    _ = try await inProcess.useEncoder(.hashedTFIDF(configuration: e.configuration, idf: e.idf))
    let simRound = try await asyncSeconds { _ = try await inProcess.trainMLP(mlp) } / Double(mlp.rounds)
    print(String(format: "\nfederation over the network (%d client runners + coordinator in one process, 127.0.0.1, HTTP/2 + TLS)", shards.count))
    print(String(format: "  in process: %.2f s per FedAvg round (6 of 10 clients sampled)", simRound))
    for secure in [false, true] {
        var m = mlp
        m.secureAggregation = secure
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-bench-\(UUID().uuidString)").path
        try FederationCertificates.generate(directory: dir + "/tls", hosts: ["127.0.0.1"])
        let identities = shards.map { ClientIdentity(id: $0.id) }
        let config = FederationServerConfiguration(
            federation: "bench", host: "127.0.0.1", port: 0, tls: .init(certificate: dir + "/tls/server.pem", key: dir + "/tls/server-key.pem"),
            clients: identities.map { .init(id: $0.id, publicKey: $0.publicKeyBase64) }, families: ["mlp"],
            encoder: HashedTFIDFEncoder.Configuration(), mlp: m, kmeans: kmeans, minimumOnline: shards.count,
            roundDeadlineSeconds: 120, joinTimeoutSeconds: 60, stateDirectory: dir + "/state", outputDirectory: dir + "/out", validation: nil)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let registry = ClientRegistry(federation: "bench",
                                      authenticator: try ClientAuthenticator(publicKeys: Dictionary(uniqueKeysWithValues: config.clients.map { ($0.id, $0.publicKey) })),
                                      logger: logger)
        let job = FederationJob(configuration: config, registry: registry, store: try CheckpointStore(directory: config.stateDirectory), logger: logger)
        let tls = try FederationCertificates.serverConfiguration(certificate: dir + "/tls/server.pem", key: dir + "/tls/server-key.pem")
        let clientTLS = try FederationCertificates.clientConfiguration(caFile: dir + "/tls/ca.pem")
        let transport = try FederationServer.transport(tls: tls)
        let result = try await ServerRunner.withRunning(logger: logger, { ready in
            FederationServer.application(registry: registry, host: "127.0.0.1", port: 0, transport: transport, logger: logger, onServerRunning: ready)
        }) { port in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, identity) in identities.enumerated() {
                    let runner = FederationClientRunner(identity: identity, local: InProcessClient(id: identity.id, train: shards[i].train),
                                                        settings: .init(server: "https://127.0.0.1:\(port)", tls: clientTLS), logger: logger)
                    group.addTask { _ = try await runner.run() }
                }
                let r = try await job.run(initialState: nil)
                try await group.waitForAll()
                return r
            }
        }
        let t: [RoundTraffic] = result.traffic
        let n = Double(t.count)
        let seconds: Double = t.reduce(0.0) { $0 + $1.seconds } / n
        let down: Double = Double(t.reduce(0) { $0 + $1.bytesOut }) / n / 1e6
        let up: Double = Double(t.reduce(0) { $0 + $1.bytesIn }) / n / 1e6
        print(String(format: "  %@: %.2f s per round (%.1f× in process), %.1f MB to clients + %.1f MB from clients per round (body bytes)",
                     secure ? "secure aggregation" : "plain             ", seconds, seconds / simRound, down, up))
        try? FileManager.default.removeItem(atPath: dir)
    }
}
