import FedRouteFederation
import FedRouteFeatures
import Foundation
import Logging

/// A whole federation in this process over real loopback TLS (HTTP/1.1 or HTTP/2): a `CoordinatorService` and
/// one `FederationClientRunner` per client, each with its own key. For tests, benchmarks and demos.
public enum LoopbackFederation {
    /// Runs the job to the end. Certificates, checkpoints and router files go under `directory`;
    /// `configure` adjusts the coordinator's configuration (all families and defaults otherwise);
    /// `tensorFrames: false` makes the clients speak JSON with base64 tensors only; `httpVersion` is the
    /// clients' (HTTP/1.1 by default, as for `fedroute client`); `bodyDigest` the digest they sign once the
    /// coordinator lists it (`BodyDigest`); `addedDelay` a one-way delay each client request and answer waits
    /// (`FederationClientRunner.Settings.addedDelay`); `beforeRoundClock` runs before each MLP round's clock starts
    /// (`FederationJob.beforeRoundClock`); `finished` gets each client's outcome.
    public static func run(clients: [any FederatedClient], directory: String, logger: Logger, tensorFrames: Bool = true,
                           httpVersion: ClientHTTPVersion = FederationClientRunner.Settings.defaultHTTPVersion,
                           bodyDigest: BodyDigest = .preferred, addedDelay: Duration? = nil,
                           configure: (inout CoordinatorConfiguration) -> Void = { _ in },
                           beforeRoundClock: (@Sendable (Int) async throws -> Void)? = nil,
                           finished: @escaping @Sendable (String, FederationClientRunner.Outcome) -> Void = { _, _ in }) async throws -> (FederationJob.Result, ClientRegistry) {
        try FederationCertificates.generate(directory: directory + "/tls", hosts: ["127.0.0.1"])
        let identities = clients.map { ClientIdentity(id: $0.id) }
        var config = CoordinatorConfiguration(
            federation: "loopback", host: "127.0.0.1", port: 0,
            tls: .init(certificate: directory + "/tls/server.pem", key: directory + "/tls/server-key.pem"),
            clients: identities.map { .init(id: $0.id, publicKey: $0.publicKeyBase64) },
            encoder: HashedTFIDFEncoder.Configuration(), mlp: FederatedMLPConfiguration(), kmeans: FederatedKMeansConfiguration(),
            minimumOnline: clients.count, roundDeadlineSeconds: 120, joinTimeoutSeconds: 60,
            stateDirectory: directory + "/state", outputDirectory: directory + "/out", validation: nil)
        configure(&config)
        var service = try CoordinatorService(configuration: config, fresh: true, logger: logger)
        service.job.beforeRoundClock = beforeRoundClock
        let clientTLS = try FederationCertificates.clientConfiguration(caFile: directory + "/tls/ca.pem")
        let result = try await service.run(alongside: { port in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (identity, local) in zip(identities, clients) {
                    var settings = FederationClientRunner.Settings(server: "https://127.0.0.1:\(port)", tls: clientTLS)
                    settings.tensorFrames = tensorFrames
                    settings.httpVersion = httpVersion
                    settings.bodyDigest = bodyDigest
                    settings.addedDelay = addedDelay
                    let runner = FederationClientRunner(identity: identity, local: local, settings: settings, logger: logger)
                    group.addTask { finished(identity.id, try await runner.run()) }
                }
                try await group.waitForAll()
            }
        })
        return (result, service.registry)
    }
}
