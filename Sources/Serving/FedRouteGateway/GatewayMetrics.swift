import Foundation
import Prometheus

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
public struct GatewayMetrics: Sendable {
    /// The registry; share it to expose other metrics on the same endpoint.
    public let registry: PrometheusCollectorRegistry

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    private func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "fedroute", subsystem: "gateway", metricName: metric, unitName: unit, helpText: help)
    }

    func request(model: String?, outcome: String, duration: Duration) {
        let model = model ?? "none"
        registry.makeCounter(descriptor: name("requests", "total", "Chat completion requests by answering model and outcome."),
                             labels: [("model", model), ("outcome", outcome)]).increment()
        registry.makeDurationHistogram(descriptor: name("request", "seconds", "Wall time of chat completion requests."),
                                       labels: [("model", model)], buckets: Self.latencyBuckets).record(duration)
    }

    func routing(_ duration: Duration) {
        registry.makeDurationHistogram(descriptor: name("routing", "seconds", "Time to embed a query and predict every model's score and cost."),
                                       labels: [], buckets: Self.latencyBuckets).record(duration)
    }

    func upstreamFailure(model: String) {
        registry.makeCounter(descriptor: name("upstream_failures", "total", "Failed upstream calls by model."), labels: [("model", model)]).increment()
    }

    func fallback() {
        registry.makeCounter(descriptor: name("fallbacks", "total", "Requests answered by a model other than the router's first choice."), labels: []).increment()
    }

    func answer(model: String, usage: TokenUsage, costUSD: Double) {
        registry.makeCounter(descriptor: name("cost_usd", "total", "Price-table cost of answers in USD."), labels: [("model", model)]).increment(by: costUSD)
        let tokens = name("tokens", "total", "Tokens by model and kind (prompt or completion).")
        registry.makeCounter(descriptor: tokens, labels: [("model", model), ("kind", "prompt")]).increment(by: Int64(usage.promptTokens))
        registry.makeCounter(descriptor: tokens, labels: [("model", model), ("kind", "completion")]).increment(by: Int64(usage.completionTokens))
    }

    func feedback() {
        registry.makeCounter(descriptor: name("feedback", "total", "Quality scores attached through /v1/feedback."), labels: []).increment()
    }

    func limited(_ limit: String) {
        registry.makeCounter(descriptor: name("limited", "total", "Requests refused by a key's rate or budget limit."), labels: [("limit", limit)]).increment()
    }

    private var loadedDescriptor: MetricNameDescriptor {
        name("router_loaded_timestamp", "seconds", "Unix time the serving router file and models.yaml (by fingerprint) were loaded.")
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
        registry.makeCounter(descriptor: name("reload_failures", "total", "Reloads refused because a file did not load."), labels: []).increment()
    }

    func requestLogPending(_ rows: Int) {
        registry.makeGauge(descriptor: name("request_log_pending", "", "Finished requests waiting to be written to the store."), labels: [])
            .set(Int64(rows))
    }

    func requestLogLost() {
        registry.makeCounter(descriptor: name("request_log_lost", "total", "Finished requests whose row and spend could not be written."), labels: [])
            .increment()
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}
