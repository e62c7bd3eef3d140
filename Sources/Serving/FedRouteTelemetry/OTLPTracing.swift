import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// A tracer that exports spans over OTLP/HTTP (swift-otel) to a collector, and the background service
/// that batches and sends them. Nothing is bootstrapped globally: the tracer is handed to whoever
/// records spans (the gateway), and the service runs beside it.
public enum OTLPTracing {
    /// How spans are encoded on the wire.
    public enum WireFormat: String, Sendable, CaseIterable {
        case protobuf, json
    }

    public struct Settings: Sendable {
        /// The collector's OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces` (used as given).
        public var endpoint: String
        public var format: WireFormat = .protobuf
        /// `service.name` of every span.
        public var serviceName = "fedroute-gateway"
        /// How long finished spans wait to be batched (OTel's default is 5 s).
        public var scheduleDelay: Duration = .seconds(5)

        public init(endpoint: String) { self.endpoint = endpoint }
    }

    /// The first thing wrong with `endpoint`.
    public static func problem(endpoint: String) -> String? {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            return "the OTLP endpoint '\(endpoint)' is not an http(s) URL such as http://127.0.0.1:4318/v1/traces"
        }
        return nil
    }

    /// The tracer and the service that exports its spans (run it for as long as spans are recorded; on
    /// shutdown it flushes what is left).
    public static func make(_ settings: Settings) throws -> (tracer: any Tracer, service: any Service) {
        if let problem = problem(endpoint: settings.endpoint) { throw OTLPTracingError(message: problem) }
        var config = OTel.Configuration.default
        config.serviceName = settings.serviceName
        config.metrics.enabled = false
        config.logs.enabled = false
        config.diagnosticLogLevel = .warning
        config.traces.otlpExporter.endpoint = settings.endpoint
        config.traces.otlpExporter.protocol = settings.format == .json ? .httpJSON : .httpProtobuf
        config.traces.batchSpanProcessor.scheduleDelay = settings.scheduleDelay
        let backend = try OTel.makeTracingBackend(configuration: config)
        return (backend.factory, backend.service)
    }
}

/// An OTLP setting that cannot be used.
public struct OTLPTracingError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
