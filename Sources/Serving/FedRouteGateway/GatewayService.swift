import AsyncHTTPClient
import FedRouteEmbedding
import FedRouteGatewayStore
import FedRouteHTTPRunner
import FedRouteRouters
import Foundation
import Hummingbird
import Logging
import NIOSSL
import ServiceLifecycle
import Tracing
import UnixSignals

/// The routing gateway as one service: the router file, models.yaml, the store (keys, spend, request
/// log; SQLite or PostgreSQL) and the upstream HTTP client, checked before it listens, then served
/// until a signal stops it.
/// `SIGHUP` reloads the router file and models.yaml. `fedroute gateway` builds one from its options.
public struct GatewayService: Sendable {
    /// Where everything comes from, and what overrides models.yaml.
    public struct Options: Sendable {
        public var router: String
        public var models: String
        public var host = "127.0.0.1"
        public var port = 8080
        /// Keys, spend and the request log: an SQLite file (created when absent) or a `postgres://` URL.
        public var database = "fedroute-requests.sqlite"
        /// λ for model "auto" (overrides models.yaml).
        public var lambda: Double?
        /// What the router embeds (overrides models.yaml).
        public var context: ContextMode?
        public var minilmDirectory = MiniLMEncoder.configuredDirectory
        /// Require virtual keys (the default); false serves anyone (`--no-auth`).
        public var authentication = true
        /// File holding the key secret; nil reads `$FEDROUTE_KEY_SECRET`.
        public var keySecretFile: String?
        /// PEM certificate chain and private key: serve HTTP/2 and HTTP/1.1 over TLS (both or neither).
        public var tlsCertificate: String?
        public var tlsKey: String?

        public init(router: String, models: String) {
            self.router = router
            self.models = models
        }
    }

    public let options: Options
    public let access: GatewayAccess
    let tls: TLSConfiguration?
    /// Spans of every request go to this tracer (nil: none), and `telemetry` (its exporter) runs
    /// beside the server and is shut down after it, so that the last spans are sent.
    public var tracer: (any Tracer)?
    public var telemetry: (any Service)?
    let initial: GatewayRouting
    let environment: [String: String]
    let logger: Logger

    /// Loads and checks models.yaml, the upstream keys (from `environment`), the router and, with
    /// authentication on, the key secret. The store is opened by `run`.
    public init(options: Options, environment: [String: String], logger: Logger) throws {
        self.options = options
        self.environment = environment
        self.logger = logger
        initial = try Self.load(options, environment: environment, logger: logger)
        access = options.authentication ? .keys(try KeySecret.load(file: options.keySecretFile, environment: environment)) : .open
        switch (options.tlsCertificate, options.tlsKey) {
        case (let certificate?, let key?): tls = try ServerTLS.configuration(certificate: certificate, key: key)
        case (nil, nil): tls = nil
        default: throw GatewayConfigurationError(source: "options", message: "TLS needs both a certificate and its key (--tls-cert and --tls-key)")
        }
    }

    /// Whether the gateway serves over TLS.
    public var usesTLS: Bool { tls != nil }

    static func load(_ options: Options, environment: [String: String], logger: Logger) throws -> GatewayRouting {
        try GatewayRouting.load(
            router: options.router, models: options.models,
            overrides: { config in
                if let lambda = options.lambda {
                    guard RouterPredictions.isValid(lambda: lambda) else {
                        throw GatewayConfigurationError(source: options.models, message: "λ must be a finite number ≥ 0, not \(lambda)")
                    }
                    config.gateway.lambda = lambda
                }
                if let context = options.context { config.gateway.context = context }
            },
            environment: environment, minilmDirectory: options.minilmDirectory, logger: logger)
    }

    /// The configuration loaded at start.
    public var configuration: GatewayConfiguration { initial.configuration }
    /// The router loaded at start.
    public var pipeline: RoutingPipeline { initial.pipeline }

    /// Opens the store (checking that the key secret is the one its keys were made with) and serves
    /// until the process is told to stop; `onListening` gets the bound port and the gateway. `SIGHUP`
    /// reloads the files (a broken one is refused and logged; the current ones keep serving).
    public func run(onListening: @escaping @Sendable (Int, Gateway) -> Void = { _, _ in }) async throws {
        try await GatewayStores.withStore(options.database, create: true, logger: logger) { store in
            if case .keys(let secret) = access { try await store.bind(secretCheck: secret.check) }
            try await serve(store: store, onListening: onListening)
        }
    }

    func serve(store: any GatewayStore, onListening: @escaping @Sendable (Int, Gateway) -> Void) async throws {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(configuration.gateway))
        let (options, environment, logger) = (options, environment, logger)
        let gateway = Gateway(
            routing: initial, upstream: UpstreamClient(http: http), store: store, access: access, logger: logger,
            loader: { try Self.load(options, environment: environment, logger: logger) }, tracer: tracer)
        let signals = await UnixSignalsSequence(trapping: .sighup)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in signals {
                        logger.notice("SIGHUP: reloading the router file and models.yaml")
                        _ = try? await gateway.reload()
                    }
                }
                let app = try GatewayRoutes.application(gateway: gateway, host: options.host, port: options.port, tls: tls, logger: logger) { bound in
                    onListening(bound, gateway)
                }
                // Shut down in reverse order: the server first, then the span exporter (which flushes).
                let services: [any Service] = (telemetry.map { [$0] } ?? []) + [app]
                try await ServiceGroup(configuration: .init(
                    services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
                group.cancelAll()
            }
        } catch {
            await gateway.flushRequestLog()
            try await http.shutdown()
            throw error
        }
        // The server has stopped: the request log's last rows go in before the store closes.
        await gateway.flushRequestLog()
        try await http.shutdown()
    }
}
