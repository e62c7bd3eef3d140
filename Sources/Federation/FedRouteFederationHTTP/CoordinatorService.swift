import FedRouteFederation
import FedRouteHTTPRunner
import FedRouteRouters
import Foundation
import Hummingbird
import Logging
import NIOSSL

/// The coordinator of a federation over HTTP/2 + TLS, built once from its configuration and run to
/// the end of training: checkpoint → client authenticator → registry (the transport) → job →
/// Hummingbird routes. `fedroute coordinator`, `LoopbackFederation` and the benchmarks all run it.
public struct CoordinatorService: Sendable {
    public let configuration: CoordinatorConfiguration
    /// The clients' sessions and mailboxes (for status and tests).
    public let registry: ClientRegistry
    /// The training job (its `beforeRoundClock` may be set before `run`).
    public var job: FederationJob
    /// The checkpoint it resumes from (nil: a fresh start).
    public let initialState: FederationJobState?
    let tls: TLSConfiguration?
    let logger: Logger
    /// How long clients get, after training, to poll once more and hear that it is over.
    public var lingerAfterFinish: Duration = .seconds(2)

    /// Reads the checkpoint (unless `fresh`), sets up authentication, TLS and the job; every
    /// configuration error is thrown here, before anything listens.
    public init(configuration: CoordinatorConfiguration, fresh: Bool = false, logger: Logger, progress: ProgressHandler? = nil) throws {
        let store = try CheckpointStore(directory: configuration.stateDirectory)
        var state = fresh ? nil : try store.load()
        if state != nil {
            state!.restarts += 1
            logger.notice("resuming from checkpoint", metadata: ["path": .string(store.path), "completed_rounds": .stringConvertible(state!.mlp?.completedRounds ?? 0),
                                                                 "finished": .string(state!.finishedFamilies.joined(separator: ","))])
        }
        let authenticator = try ClientAuthenticator(publicKeys: Dictionary(uniqueKeysWithValues: configuration.clients.map { ($0.id, $0.publicKey) }),
                                                    lastNonce: state?.nonces ?? [:])
        registry = ClientRegistry(federation: configuration.federation, authenticator: authenticator, logger: logger)
        tls = try configuration.tls.map { try FederationCertificates.serverConfiguration(certificate: $0.certificate, key: $0.key) }
        if tls == nil { logger.warning("no tls section: serving plaintext HTTP/1.1; use this on loopback only") }
        job = FederationJob(configuration: configuration.job, transport: registry, store: store, logger: logger, progress: progress)
        initialState = state
        self.configuration = configuration
        self.logger = logger
    }

    /// The URL scheme clients use.
    public var scheme: String { tls == nil ? "http" : "https" }

    /// Listens, runs the job to the end and stops listening. `alongside` runs with the bound port
    /// while the job runs (in-process client runners, say) and is awaited before the service stops;
    /// without it the service lingers `lingerAfterFinish` for polling clients.
    public func run(onListening: @Sendable (Int) -> Void = { _ in },
                    alongside: (@Sendable (Int) async throws -> Void)? = nil) async throws -> FederationJob.Result {
        let transport = try CoordinatorRoutes.transport(tls: tls)
        let (registry, host, port, logger) = (self.registry, configuration.host, configuration.port, self.logger)
        let compression = configuration.frameCompression ?? .none
        return try await HTTPRunner.withRunning(logger: logger, { ready in
            CoordinatorRoutes.application(registry: registry, host: host, port: port, transport: transport, logger: logger, compression: compression,
                                          onServerRunning: ready)
        }) { bound in
            logger.notice("coordinator listening", metadata: ["url": .string("\(scheme)://\(host):\(bound)"), "clients": .stringConvertible(configuration.clients.count)])
            onListening(bound)
            guard let alongside else {
                let result = try await job.run(initialState: initialState)
                try await Task.sleep(for: lingerAfterFinish)
                return result
            }
            return try await withThrowingTaskGroup(of: FederationJob.Result?.self) { group in
                group.addTask { try await alongside(bound); return nil }
                let result = try await job.run(initialState: initialState)
                try await group.waitForAll()
                return result
            }
        }
    }
}
