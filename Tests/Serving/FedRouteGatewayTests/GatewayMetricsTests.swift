@testable import FedRouteGateway
import Testing

struct GatewayMetricsTests {
    /// The handles made on a model's first request keep counting that model's series, and only it.
    @Test func eachSeriesCountsItsOwnRequests() {
        let metrics = GatewayMetrics()
        for _ in 0..<3 { metrics.request(model: "strong", outcome: "answered", duration: .milliseconds(3)) }
        metrics.request(model: "cheap", outcome: "answered", duration: .milliseconds(30))
        metrics.request(model: "strong", outcome: "interrupted", duration: .milliseconds(3))
        metrics.request(model: nil, outcome: "failed", duration: .milliseconds(3))
        for _ in 0..<2 { metrics.answer(model: "strong", usage: TokenUsage(promptTokens: 10, completionTokens: 4, estimated: false), costUSD: 0.25) }
        metrics.routing(.microseconds(200))
        metrics.requestLogPending(7)
        metrics.requestLogPending(2)
        metrics.limited("rate")
        metrics.limited("budget")
        metrics.limited("rate")
        let text = metrics.exposition()
        for line in [
            #"fedroute_gateway_requests_total{model="strong",outcome="answered"} 3"#,
            #"fedroute_gateway_requests_total{model="cheap",outcome="answered"} 1"#,
            #"fedroute_gateway_requests_total{model="strong",outcome="interrupted"} 1"#,
            #"fedroute_gateway_requests_total{model="none",outcome="failed"} 1"#,
            #"fedroute_gateway_request_seconds_count{model="strong"} 4"#,
            #"fedroute_gateway_request_seconds_count{model="cheap"} 1"#,
            #"fedroute_gateway_tokens_total{model="strong",kind="prompt"} 20"#,
            #"fedroute_gateway_tokens_total{model="strong",kind="completion"} 8"#,
            #"fedroute_gateway_cost_usd_total{model="strong"} 0.5"#,
            "fedroute_gateway_routing_seconds_count 1",
            "fedroute_gateway_request_log_pending 2.0",
            #"fedroute_gateway_limited_total{limit="rate"} 2"#,
            #"fedroute_gateway_limited_total{limit="budget"} 1"#,
        ] {
            #expect(text.contains(line + "\n"), "missing '\(line)' in:\n\(text)")
        }
    }
}
