import ArgumentParser
import FedRouteEmbedding
import FedRouteGateway
import FedRouteTelemetry
import FedRouteRouters
import Foundation
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
    @Option(name: .long, help: "Keys, spend and the request log: an SQLite file (created when absent) or a postgres:// URL shared by replicas.") var db = "fedroute-requests.sqlite"
    @Option(name: .customLong("lambda"), help: "λ for model \"auto\" (overrides models.yaml).") var lambda: Double?
    @Option(name: .long, help: "What the router embeds (overrides models.yaml).") var context: ContextMode?
    @Option(name: .long, help: "Folder with the MiniLM weights, for routers trained on MiniLM features.") var minilmPath: String?
    @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info
    @Option(name: .long, help: "File holding the key secret (default: $FEDROUTE_KEY_SECRET); the one `fedroute keys create` used.") var keySecretFile: String?
    @Option(name: .long, help: "PEM certificate chain: serve HTTP/2 and HTTP/1.1 over TLS (with --tls-key).") var tlsCert: String?
    @Option(name: .long, help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(name: .long, help: "Export a span per request over OTLP/HTTP to this collector URL (e.g. http://127.0.0.1:4318/v1/traces).") var otlpEndpoint: String?
    @Option(name: .long, help: "OTLP/HTTP body encoding.") var otlpFormat: OTLPTracing.WireFormat = .protobuf
    @Flag(name: .long, help: "Serve without API keys: anyone who reaches the port may call every route (local use only).") var noAuth = false

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        if let otlpEndpoint, let problem = OTLPTracing.problem(endpoint: otlpEndpoint) { throw ValidationError("--otlp-endpoint: \(problem)") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0…65535") }
        if let lambda, !RouterPredictions.isValid(lambda: lambda) { throw ValidationError("--lambda must be a finite number ≥ 0") }
    }

    func run() async throws {
        var options = GatewayService.Options(router: router, models: models)
        options.host = host
        options.port = port
        options.database = db
        options.lambda = lambda
        options.context = context
        options.minilmDirectory = minilmPath ?? MiniLMEncoder.configuredDirectory
        options.authentication = !noAuth
        options.keySecretFile = keySecretFile
        options.tlsCertificate = tlsCert
        options.tlsKey = tlsKey
        LoggingSystem.bootstrapStandardError(level: logLevel)
        var service = try GatewayService(options: options, environment: ProcessInfo.processInfo.environment, logger: Logger(label: "fedroute.gateway"))
        if let otlpEndpoint {
            var settings = OTLPTracing.Settings(endpoint: otlpEndpoint)
            settings.format = otlpFormat
            (service.tracer, service.telemetry) = try OTLPTracing.make(settings)
            Console.info("traces: a span per request to \(otlpEndpoint) (OTLP/HTTP, \(otlpFormat.rawValue))")
        }
        if noAuth {
            Console.info("WARNING: --no-auth: no API keys are checked; anyone who reaches \(host):\(port) spends the upstream keys and may reload the router")
        }
        let (host, settings, family, database) = (host, service.configuration.gateway, service.pipeline.router.family, Self.redacted(db))
        let scheme = service.usesTLS ? "https" : "http"
        try await service.run { bound, gateway in
            Console.info("fedroute gateway: \(family.rawValue) router over \(gateway.routableModels.count) models, λ(auto) = \(settings.lambda), context \(settings.context.rawValue)")
            Console.info("listening on \(scheme)://\(host):\(bound)/v1 — keys, spend and request log in \(database); SIGHUP or POST /admin/reload reloads the router")
        }
    }

    /// A `--db` value fit to print: a URL's password replaced by `***`.
    static func redacted(_ db: String) -> String {
        guard var c = URLComponents(string: db), c.scheme != nil, c.password != nil else { return db }
        c.password = "***"
        return c.string ?? db
    }
}
