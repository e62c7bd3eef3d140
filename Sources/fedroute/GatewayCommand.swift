import ArgumentParser
import AsyncHTTPClient
import FedRouteEmbedding
import FedRouteFeedback
import FedRouteGateway
import FedRouteRouters
import Foundation
import Hummingbird
import Logging

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve an OpenAI-compatible API that routes each chat request to a model with a trained router.",
        discussion: "See docs/GATEWAY.md for models.yaml, the routes and the response headers.")

    @Option(name: .long, help: "Router file (from train, demo or simulate).") var router: String
    @Option(name: .long, help: "models.yaml: gateway settings, and each model's upstream and price.") var models: String
    @Option(name: .long, help: "Address to listen on.") var host = "127.0.0.1"
    @Option(name: .long, help: "Port to listen on (0 picks a free one).") var port = 8080
    @Option(name: .long, help: "SQLite request log (created when absent).") var db = "fedroute-requests.sqlite"
    @Option(name: .customLong("lambda"), help: "λ for model \"auto\" (overrides models.yaml).") var lambda: Double?
    @Option(name: .long, help: "What the router embeds: last-user or conversation (overrides models.yaml).") var context: ContextMode?
    @Option(name: .long, help: "Folder with the MiniLM weights, for routers trained on MiniLM features.") var minilmPath: String?
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: Logger.Level = .info

    func run() async throws {
        var config = try GatewayConfiguration.load(path: models)
        if let lambda {
            guard lambda.isFinite, lambda >= 0 else { throw ValidationError("--lambda must be a finite number ≥ 0") }
            config.gateway.lambda = lambda
        }
        if let context { config.gateway.context = context }
        let keys = try config.apiKeys(environment: ProcessInfo.processInfo.environment)
        let pipeline = try RouterFile.load(path: router, minilmDirectory: minilmPath ?? MiniLMEncoder.configuredDirectory)
        let log = try RequestLog(path: db)
        bootstrapLogging(logLevel)
        let logger = Logger(label: "fedroute.gateway")
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(config.gateway))
        do {
            let gateway: Gateway
            do {
                gateway = try Gateway(
                    pipeline: pipeline, configuration: config,
                    upstream: UpstreamClient(http: http, apiKeys: keys, timeoutSeconds: config.gateway.timeoutSeconds),
                    log: log, logger: logger)
            } catch var e as GatewayConfigurationError {
                e.source = "\(models) with \(router)"
                throw e
            }
            let host = self.host
            let settings = config.gateway
            let app = GatewayServer.application(gateway: gateway, host: host, port: port, logger: logger) { bound in
                Console.info("fedroute gateway: \(pipeline.router.kind.rawValue) router over \(gateway.routableModels.count) models, λ(auto) = \(settings.lambda), context \(settings.context.rawValue)")
                Console.info("listening on http://\(host):\(bound)/v1 — request log \(log.path)")
            }
            try await app.runService()
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }
}

extension ContextMode: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
