import Crypto
import FedRouteRouters
import Foundation
import Logging
import NIOPosix

/// Everything a request is routed and answered with, loaded and checked together: the router, the
/// models.yaml it serves, the upstream keys. A reload builds a new one and swaps it in whole; a request
/// keeps the one it started with until it ends.
public struct GatewayRouting: Sendable {
    /// Where a routing came from and when, as `/health` and `/metrics` show it.
    public struct Provenance: Sendable, Equatable {
        /// Hex SHA-256 of the router file (its first 16 digits), or a label for a router built in memory.
        public var routerFingerprint: String
        /// Hex SHA-256 of models.yaml (its first 16 digits), or a label.
        public var modelsFingerprint: String
        public var loadedAt: Date

        public init(routerFingerprint: String = "in-memory", modelsFingerprint: String = "in-memory", loadedAt: Date = Date()) {
            self.routerFingerprint = routerFingerprint
            self.modelsFingerprint = modelsFingerprint
            self.loadedAt = loadedAt
        }
    }

    public let pipeline: RoutingPipeline
    public let configuration: GatewayConfiguration
    public let provenance: Provenance
    let endpoints: [String: ModelEndpoint]
    /// Router models that have an endpoint, in router order.
    public let routableModels: [String]
    /// Per model name, the upstream's API key.
    let apiKeys: [String: String]
    let batcher: RoutingBatcher

    /// Checks that the router and models.yaml fit together (some router model has an endpoint).
    /// - Parameter routingPool: where embedding and prediction run, off the server's event loops.
    public init(
        pipeline: RoutingPipeline, configuration: GatewayConfiguration, apiKeys: [String: String] = [:], provenance: Provenance = Provenance(),
        routingPool: NIOThreadPool = .singleton, logger: Logger? = nil
    ) throws {
        self.pipeline = pipeline
        self.configuration = configuration
        self.apiKeys = apiKeys
        self.provenance = provenance
        batcher = RoutingBatcher(pipeline: pipeline, pool: routingPool)
        let endpoints = Dictionary(uniqueKeysWithValues: configuration.models.map { ($0.name, $0) })
        self.endpoints = endpoints
        routableModels = pipeline.router.models.filter { endpoints[$0] != nil }
        guard !routableModels.isEmpty else {
            throw GatewayConfigurationError(
                source: "models.yaml",
                message: "none of the router's models (\(pipeline.router.models.joined(separator: ", "))) has an endpoint, so nothing can be routed")
        }
        let missing = pipeline.router.models.filter { endpoints[$0] == nil }
        if !missing.isEmpty {
            logger?.warning("router models without an endpoint are never chosen", metadata: ["models": "\(missing.joined(separator: ","))"])
        }
    }

    /// Loads and checks a router file and models.yaml (with `overrides` applied) into a routing; what
    /// the gateway starts with and what a reload swaps in.
    public static func load(
        router: String, models: String, overrides: (inout GatewayConfiguration) throws -> Void = { _ in }, environment: [String: String],
        minilmDirectory: String, logger: Logger? = nil
    ) throws -> GatewayRouting {
        func fingerprint(_ path: String) throws -> String {
            do {
                let digest = SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path)))
                return String(digest.map { String(format: "%02x", $0) }.joined().prefix(16))
            } catch {
                throw GatewayConfigurationError(source: path, message: "cannot read the file: \(error.localizedDescription)")
            }
        }
        let routerPrint = try fingerprint(router)
        let modelsPrint = try fingerprint(models)
        var config = try GatewayConfiguration.load(path: models)
        try overrides(&config)
        let keys = try config.apiKeys(environment: environment)
        let pipeline = try RouterFile.load(path: router, minilmDirectory: minilmDirectory)
        do {
            return try GatewayRouting(
                pipeline: pipeline, configuration: config, apiKeys: keys,
                provenance: Provenance(routerFingerprint: routerPrint, modelsFingerprint: modelsPrint), logger: logger)
        } catch var e as GatewayConfigurationError {
            e.source = "\(models) with \(router)"
            throw e
        }
    }
}
