import Foundation
import Prometheus
import Synchronization

/// The gateway's Prometheus metrics, served at `GET /metrics`.
///
/// - `fedroute_gateway_requests_total{model, outcome}`: routed requests by answering model
///   (`none` when all failed) and outcome (`answered`, `failed`, `interrupted`, `rejected`).
/// - `fedroute_gateway_upstream_failures_total{model}`, `fedroute_gateway_fallbacks_total`.
/// - `fedroute_gateway_cost_usd_total{model}`, `fedroute_gateway_tokens_total{model, kind}`.
/// - `fedroute_gateway_routing_seconds` (embed + predict) and
///   `fedroute_gateway_request_seconds{model}` (whole request) histograms.
/// - `fedroute_gateway_feedback_total`.
/// - `fedroute_gateway_limited_total{limit}`: requests refused by a key's `rate` or `budget` limit.
/// - `fedroute_gateway_router_loaded_timestamp_seconds{router, models}`: when the serving router file
///   and models.yaml (by fingerprint) were loaded; `fedroute_gateway_reload_failures_total`.
/// - `fedroute_gateway_request_log_pending`: finished requests waiting to be written to the store
///   (rows are written behind responses); `fedroute_gateway_request_log_lost_total`: finished requests
///   whose row and spend could not be written (each is also logged with its id).
///
/// A request's metrics are updated through handles made once (label-free ones at init, per-model
/// ones on a model's first request) rather than looked up in the registry each time: eight lookups a
/// request, each building the metric's name and label list, cost more than the updates themselves.
public struct GatewayMetrics: Sendable {
    /// The registry; share it to expose other metrics on the same endpoint.
    public let registry: PrometheusCollectorRegistry
    private let handles: Handles

    /// Metrics a request updates, made once.
    private final class Handles: Sendable {
        let routing: DurationHistogram
        let pending: Gauge
        /// Per label values, made on first use: counters and histograms stay registered for the
        /// registry's life, so a handle never goes stale.
        let counters = Mutex<[[String]: Counter]>([:])
        /// `request_seconds` by model.
        let histograms = Mutex<[String: DurationHistogram]>([:])

        init(routing: DurationHistogram, pending: Gauge) {
            self.routing = routing
            self.pending = pending
        }
    }

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let name = Self.name
        handles = Handles(
            routing: registry.makeDurationHistogram(
                descriptor: name("routing", "seconds", "Time to embed a query and predict every model's score and cost."), labels: [],
                buckets: Self.latencyBuckets),
            pending: registry.makeGauge(descriptor: name("request_log_pending", "", "Finished requests waiting to be written to the store."), labels: []))
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "fedroute", subsystem: "gateway", metricName: metric, unitName: unit, helpText: help)
    }

    /// The counter `metric` (unit `total`) with these label values, made on first use.
    private func counter(_ metric: String, _ help: String, _ labels: KeyValuePairs<String, String> = [:]) -> Counter {
        let key = [metric] + labels.map(\.value)
        if let c = handles.counters.withLock({ $0[key] }) { return c }
        let c = registry.makeCounter(descriptor: Self.name(metric, "total", help), labels: labels.map { ($0.key, $0.value) })
        handles.counters.withLock { $0[key] = c }
        return c
    }

    func request(model: String?, outcome: String, duration: Duration) {
        let model = model ?? "none"
        counter("requests", "Chat completion requests by answering model and outcome.", ["model": model, "outcome": outcome]).increment()
        requestSeconds(model: model).record(duration)
    }

    /// The request-time histogram of `model`, made on first use.
    private func requestSeconds(model: String) -> DurationHistogram {
        if let h = handles.histograms.withLock({ $0[model] }) { return h }
        let h = registry.makeDurationHistogram(descriptor: Self.name("request", "seconds", "Wall time of chat completion requests."),
                                               labels: [("model", model)], buckets: Self.latencyBuckets)
        handles.histograms.withLock { $0[model] = h }
        return h
    }

    func routing(_ duration: Duration) {
        handles.routing.record(duration)
    }

    func upstreamFailure(model: String) {
        counter("upstream_failures", "Failed upstream calls by model.", ["model": model]).increment()
    }

    func fallback() {
        counter("fallbacks", "Requests answered by a model other than the router's first choice.").increment()
    }

    func answer(model: String, usage: TokenUsage, costUSD: Double) {
        counter("cost_usd", "Price-table cost of answers in USD.", ["model": model]).increment(by: costUSD)
        let tokens = "Tokens by model and kind (prompt or completion)."
        counter("tokens", tokens, ["model": model, "kind": "prompt"]).increment(by: Int64(usage.promptTokens))
        counter("tokens", tokens, ["model": model, "kind": "completion"]).increment(by: Int64(usage.completionTokens))
    }

    func feedback() {
        counter("feedback", "Quality scores attached through /v1/feedback.").increment()
    }

    func limited(_ limit: String) {
        counter("limited", "Requests refused by a key's rate or budget limit.", ["limit": limit]).increment()
    }

    private var loadedDescriptor: MetricNameDescriptor {
        Self.name("router_loaded_timestamp", "seconds", "Unix time the serving router file and models.yaml (by fingerprint) were loaded.")
    }

    /// Shows the routing now serving (and drops the one it replaced).
    func loaded(_ now: GatewayRouting.Provenance, previous: GatewayRouting.Provenance?) {
        if let previous, previous != now {
            let old = registry.makeGauge(
                descriptor: loadedDescriptor, labels: [("router", previous.routerFingerprint), ("models", previous.modelsFingerprint)])
            registry.unregisterGauge(old)
        }
        registry.makeGauge(descriptor: loadedDescriptor, labels: [("router", now.routerFingerprint), ("models", now.modelsFingerprint)])
            .set(now.loadedAt.timeIntervalSince1970)
    }

    func reloadFailed() {
        counter("reload_failures", "Reloads refused because a file did not load.").increment()
    }

    func requestLogPending(_ rows: Int) {
        handles.pending.set(Int64(rows))
    }

    func requestLogLost() {
        counter("request_log_lost", "Finished requests whose row and spend could not be written.").increment()
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}
