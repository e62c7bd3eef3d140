import FedRouteHTTPRunner
@testable import FedRouteGateway
import FedRouteTelemetry
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// Spans over OTLP/HTTP (JSON) to a small collector on loopback: one server span per request with the
/// routing decision, continuing the caller's W3C trace, and child spans for routing and each upstream try.
@Suite struct GatewayTracingTests {
    typealias E2E = GatewayEndToEndTests

    /// Keeps every span an OTLP/HTTP JSON export carries.
    final class Collector: Sendable {
        let spans = Mutex<[JSONValue]>([])
        var all: [JSONValue] { spans.withLock { $0 } }

        func router() -> Router<BasicRequestContext> {
            let router = Router(context: BasicRequestContext.self)
            router.post("/v1/traces") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 16 << 20)
                let json = try JSONValue.decode(Data(body.readableBytesView))
                let spans = (json["resourceSpans"]?.arrayValue ?? []).flatMap { $0["scopeSpans"]?.arrayValue ?? [] }.flatMap { $0["spans"]?.arrayValue ?? [] }
                self.spans.withLock { $0 += spans }
                return Gateway.jsonResponse(.object([:]))
            }
            return router
        }
    }

    /// A trace or span id as hex, whether the exporter wrote hex (OTLP/JSON) or base64 (protobuf's JSON mapping).
    static func hexID(_ value: JSONValue?) -> String? {
        guard let s = value?.stringValue else { return nil }
        if s.count % 2 == 0, s.allSatisfy(\.isHexDigit) { return s.lowercased() }
        return Data(base64Encoded: s).map { $0.map { String(format: "%02x", $0) }.joined() }
    }

    static func attribute(_ span: JSONValue, _ key: String) -> JSONValue? {
        span["attributes"]?.arrayValue?.first { $0["key"]?.stringValue == key }?["value"]
    }

    @Test func everyRequestIsASpanWithTheRoutingDecision() async throws {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let collector = Collector()
        try await HTTPRunner.withRunning(logger: logger, { onRunning in
            Application(router: collector.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                        onServerRunning: { await onRunning($0.localAddress?.port ?? 0) }, logger: logger)
        }, body: { port in
            var settings = OTLPTracing.Settings(endpoint: "http://127.0.0.1:\(port)/v1/traces")
            settings.format = .json
            settings.scheduleDelay = .milliseconds(50)
            let (tracer, exporter) = try OTLPTracing.make(settings)
            let group = ServiceGroup(configuration: .init(services: [.init(service: exporter)], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
                try await E2E.withGateway(tracer: tracer) { env in
                    let r = try await E2E.send(
                        env, "/v1/chat/completions", body: #"{"model": "route:100", "messages": [{"role": "user", "content": "hi"}]}"#,
                        headers: ["traceparent": "00-\(traceID)-00f067aa0ba902b7-01"])
                    #expect(r.status == 200 && r.headers["x-fedroute-model"] == "cheap")
                    _ = try await E2E.chat(env, model: "nope")
                    // Spans are batched: wait for the exporter.
                    for _ in 0..<100 where collector.all.count < 5 { try await Task.sleep(for: .milliseconds(50)) }
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                let spans = collector.all
                let servers = spans.filter { $0["name"]?.stringValue == "POST /v1/chat/completions" }
                #expect(servers.count == 2, "\(spans.map { $0["name"] })")
                let routed = try #require(servers.first { Self.hexID($0["traceId"]) == traceID })
                #expect(Self.attribute(routed, "fedroute.model")?["stringValue"] == .string("cheap"))
                #expect(Self.attribute(routed, "fedroute.fallback_from")?["stringValue"] == .string("broken"))
                #expect(Self.attribute(routed, "fedroute.lambda")?["doubleValue"] == .integer(100) || Self.attribute(routed, "fedroute.lambda")?["doubleValue"] == .number(100))
                #expect(Self.attribute(routed, "fedroute.outcome")?["stringValue"] == .string("answered"))
                #expect(Self.attribute(routed, "fedroute.predicted_cost") != nil && Self.attribute(routed, "fedroute.cost_usd") != nil)
                #expect(Self.hexID(routed["parentSpanId"]) == "00f067aa0ba902b7")
                let children = spans.filter { $0["parentSpanId"] == routed["spanId"] }
                #expect(Set(children.compactMap { $0["name"]?.stringValue }) == ["fedroute.route", "fedroute.upstream"])
                let attempts = children.filter { $0["name"]?.stringValue == "fedroute.upstream" }
                #expect(attempts.count == 2)
                let failed = attempts.filter { $0["status"]?["code"] != nil && $0["status"]?["code"] != .integer(0) && $0["status"]?["code"] != .string("STATUS_CODE_UNSET") }
                #expect(failed.count == 1 && Self.attribute(failed[0], "fedroute.model")?["stringValue"] == .string("broken"), "\(attempts)")
                // The rejected request is a span too, marked failed.
                let rejected = try #require(servers.first { Self.hexID($0["traceId"]) != traceID })
                #expect(Self.attribute(rejected, "fedroute.outcome")?["stringValue"] == .string("rejected"))
                #expect(Self.attribute(rejected, "http.response.status_code") != nil)
            }
        })
    }
}
