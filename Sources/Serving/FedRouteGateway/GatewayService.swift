import AsyncHTTPClient
import FedRouteEmbedding
import FedRouteFeedback
import FedRouteRouters
import Foundation
import Hummingbird
import Logging

/// The routing gateway as one service: the router file, models.yaml, the request log and the
/// upstream HTTP client, built and checked up front, then served until a signal stops it.
/// `fedroute gateway` builds one from its options.
public struct GatewayService: Sendable {
    /// Where everything comes from, and what overrides models.yaml.
    public struct Options: Sendable {
        public var router: String
        public var models: String
        public var host = "127.0.0.1"
        public var port = 8080
        /// The SQLite request log (created when absent).
        public var database = "fedroute-requests.sqlite"
        /// λ for model "auto" (overrides models.yaml).
        public var lambda: Double?
        /// What the router embeds (overrides models.yaml).
        public var context: ContextMode?
        public var minilmDirectory = MiniLMEncoder.configuredDirectory

        public init(router: String, models: String) {
            self.router = router
            self.models = models
        }
    }

    public let options: Options
    public let configuration: GatewayConfiguration
    public let pipeline: RoutingPipeline
    let log: RequestLog
    let apiKeys: [String: String]
    let logger: Logger

    /// Loads and checks models.yaml, the upstream keys (from `environment`), the router and the log.
    public init(options: Options, environment: [String: String], logger: Logger) throws {
        var config = try GatewayConfiguration.load(path: options.models)
        if let lambda = options.lambda {
            guard RouterPredictions.isValid(lambda: lambda) else { throw GatewayConfigurationError(source: options.models, message: "λ must be a finite number ≥ 0, not \(lambda)") }
            config.gateway.lambda = lambda
        }
        if let context = options.context { config.gateway.context = context }
        apiKeys = try config.apiKeys(environment: environment)
        pipeline = try RouterFile.load(path: options.router, minilmDirectory: options.minilmDirectory)
        log = try RequestLog(path: options.database)
        configuration = config
        self.options = options
        self.logger = logger
    }

    /// Serves until the process is told to stop; `onListening` gets the bound port and the gateway.
    public func run(onListening: @escaping @Sendable (Int, Gateway) -> Void = { _, _ in }) async throws {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(configuration.gateway))
        do {
            let gateway: Gateway
            do {
                gateway = try Gateway(
                    pipeline: pipeline, configuration: configuration,
                    upstream: UpstreamClient(http: http, apiKeys: apiKeys, timeoutSeconds: configuration.gateway.timeoutSeconds),
                    log: log, logger: logger)
            } catch var e as GatewayConfigurationError {
                e.source = "\(options.models) with \(options.router)"
                throw e
            }
            let app = GatewayRoutes.application(gateway: gateway, host: options.host, port: options.port, logger: logger) { bound in
                onListening(bound, gateway)
            }
            try await app.runService()
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// The request log's file.
    public var databasePath: String { log.path }
}
