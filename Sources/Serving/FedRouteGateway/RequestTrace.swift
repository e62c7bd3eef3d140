import HTTPTypes
import Instrumentation
import Tracing

/// The spans of one request (OpenTelemetry through swift-distributed-tracing): a server span for the
/// request with the routing decision as attributes, and child spans for routing and each upstream
/// attempt. Without a tracer every method does nothing.
struct RequestTrace: Sendable {
    let span: (any Span)?
    let tracer: (any Tracer)?

    /// Reads W3C `traceparent`/`tracestate` (and whatever else the tracer propagates) from request headers.
    struct HeaderExtractor: Extractor {
        func extract(key: String, from carrier: HTTPFields) -> String? {
            HTTPField.Name(key).flatMap { carrier[$0] }
        }
    }

    /// A server span named `name`, continuing the caller's trace when its headers carry one.
    init(tracer: (any Tracer)?, name: String, headers: HTTPFields?) {
        self.tracer = tracer
        guard let tracer else {
            span = nil
            return
        }
        var context = InstrumentationContext.topLevel
        if let headers { tracer.extract(headers, into: &context, using: HeaderExtractor()) }
        span = tracer.startSpan(name, context: context, ofKind: .server)
    }

    private init(span: (any Span)?, tracer: (any Tracer)?) {
        self.span = span
        self.tracer = tracer
    }

    /// A child span (routing, an upstream attempt).
    func child(_ name: String, kind: SpanKind = .internal) -> RequestTrace {
        guard let tracer, let span else { return self }
        return RequestTrace(span: tracer.startSpan(name, context: span.context, ofKind: kind), tracer: tracer)
    }

    // Values are autoclosures: without a span (no tracer) nothing is computed on the request path.
    func set(_ key: String, _ value: @autoclosure () -> String?) { if let span, let value = value() { span.attributes[key] = value } }
    func set(_ key: String, _ value: @autoclosure () -> Double?) { if let span, let value = value() { span.attributes[key] = value } }
    func set(_ key: String, _ value: @autoclosure () -> Int?) { if let span, let value = value() { span.attributes[key] = value } }

    /// Marks the span failed with `message`.
    func fail(_ message: String) { span?.setStatus(SpanStatus(code: .error, message: message)) }

    func end() { span?.end() }
}
