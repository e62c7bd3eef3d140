import AsyncHTTPClient
import FedRouteData
import FedRouteFakeUpstream
import FedRouteFeatures
import FedRouteGatewayStore
import FedRouteHTTPRunner
@testable import FedRouteGateway
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging
import NIOCore
import Testing
import NIOHTTP1
import NIOSSL
import Tracing

/// The gateway against two fake upstreams on loopback.
///
/// Upstream A serves `strong` (as `strong-v2`, behind an API key). Upstream B serves `cheap`,
/// `broken` (always HTTP 500) and `flaky` (its stream breaks off). `offline` points at a closed
/// port. The router predicts, for every query:
///
/// | model | score | cost $ | λ = 0 | λ = 100 | λ = 1000 |
/// |---|---|---|---|---|---|
/// | strong | 0.90 | 0.01 | **0.90** | −0.10 | −9.1 |
/// | broken | 0.70 | 0.001 | 0.70 | **0.60** (fails) | −0.30 |
/// | cheap | 0.60 | 0.0002 | 0.60 | 0.58 | 0.40 |
/// | offline | 0.50 | 0 | 0.50 | 0.50 | **0.50** (fails) |
/// | flaky | 0.10 | 0.05 | | | |
/// | portal | 0.85 | 0.009 | 0.85 (second) | −0.05 | −8.15 |
///
/// `portal` answers HTTP 200 with an HTML page; a key restricted to `portal` and `cheap` routes to it
/// first at λ = 0 and must fall back to `cheap`.
///
/// so λ = 0 picks `strong`, λ = 100 falls back from `broken` to `cheap`, and λ = 1000 from `offline` to `cheap`.
@Suite struct GatewayEndToEndTests {
    static let strongAnswer = "The answer is 42 says the strong model"
    static let cheapAnswer = "Probably 41 says the cheap one"

    struct Environment {
        var gateway: String
        var http: HTTPClient
        var upstreamA: FakeUpstream
        var upstreamB: FakeUpstream
        var log: any GatewayStore
        var gatewayValue: Gateway

        /// The store once every request answered so far is in it (rows are written behind responses).
        func stored() async -> any GatewayStore {
            await gatewayValue.flushRequestLog()
            return log
        }
    }

    static let means: [(Double, Double)] = [(0.9, 0.01), (0.7, 0.001), (0.6, 0.0002), (0.5, 0), (0.1, 0.05), (0.85, 0.009)]

    /// The router of the table above (or with other (score, cost) means per model).
    static func router(means: [(Double, Double)] = means) throws -> RoutingPipeline {
        let models = ["strong", "broken", "cheap", "offline", "flaky", "portal"]
        let encoder = HashedTFIDFEncoder(configuration: .init(dimension: 32))
        var stats = ClusterStatistics(clusters: 1, models: models.count)
        for (j, (s, c)) in means.enumerated() {
            stats.count[j] = 10
            stats.scoreSum[j] = 10 * s
            stats.costSum[j] = 10 * c
        }
        let router = try KMeansRouter(models: models, centroids: Matrix(rows: 1, cols: 32, repeating: 0), statistics: stats)
        return try RoutingPipeline(encoder: encoder, router: AnyRouter(router))
    }

    static func withGateway<T: Sendable>(
        access: GatewayAccess = .open, logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
        routerFile: String? = nil, store: (any GatewayStore)? = nil, tls: (server: TLSConfiguration, client: HTTPClient)? = nil, tracer: (any Tracer)? = nil,
        settings extraSettings: String = "", _ body: (Environment) async throws -> T
    ) async throws -> T {
        let a = FakeUpstream(behaviors: ["strong-v2": .answer(.init(text: strongAnswer, promptTokens: 20, completionTokens: 10))], apiKey: "sk-test-a")
        let b = FakeUpstream(behaviors: [
            "cheap": .answer(.init(text: cheapAnswer, promptTokens: 20, completionTokens: 5)),
            "broken": .fail(status: 500),
            "portal": .garbage("<html><body>Please log in to the Wi-Fi</body></html>"),
            "flaky": .breakStream(.init(text: "one two three four five", promptTokens: 3, completionTokens: 5), afterChunks: 2),
        ])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-gateway-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = GatewayConfiguration.Settings(connectTimeoutSeconds: 0.3)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(settings))
        do {
            let result = try await a.withRunning(logger: logger) { urlA in
                try await b.withRunning(logger: logger) { urlB in
                    let yaml = """
                        gateway:
                          lambda: 0
                          max_attempts: 3
                          timeout_seconds: 10
                          connect_timeout_seconds: 0.3
                        \(extraSettings)
                        models:
                          - name: strong
                            base_url: \(urlA)
                            api_key_env: FAKE_A_KEY
                            upstream_model: strong-v2
                            price: { input_per_million: 10, output_per_million: 30 }
                          - { name: cheap, base_url: \(urlB), price: { input_per_million: 1, output_per_million: 2 } }
                          - { name: broken, base_url: \(urlB), price: { input_per_million: 1, output_per_million: 1 } }
                          - { name: flaky, base_url: \(urlB), price: { input_per_million: 100, output_per_million: 100 } }
                          - { name: offline, base_url: "http://127.0.0.1:9/v1", price: { input_per_million: 0, output_per_million: 0 } }
                          - { name: portal, base_url: \(urlB), price: { input_per_million: 5, output_per_million: 5 } }
                        """
                    let config = try GatewayConfiguration.parse(yaml: yaml)
                    let log = try store ?? SQLiteGatewayStore(path: directory.appendingPathComponent("requests.sqlite").path)
                    let gateway: Gateway
                    if let routerFile {
                        // From files, as `fedroute gateway` runs it: reloadable.
                        let yamlPath = directory.appendingPathComponent("models.yaml").path
                        try yaml.write(toFile: yamlPath, atomically: true, encoding: .utf8)
                        let load: @Sendable () throws -> GatewayRouting = {
                            try GatewayRouting.load(router: routerFile, models: yamlPath, environment: ["FAKE_A_KEY": "sk-test-a"], minilmDirectory: "/nonexistent")
                        }
                        gateway = Gateway(routing: try load(), upstream: UpstreamClient(http: http), store: log, access: access, logger: logger, loader: load)
                    } else {
                        gateway = try Gateway(
                            pipeline: try router(), configuration: config, apiKeys: try config.apiKeys(environment: ["FAKE_A_KEY": "sk-test-a"]),
                            upstream: UpstreamClient(http: http), store: log, access: access, logger: logger, tracer: tracer)
                    }
                    return try await HTTPRunner.withRunning(logger: logger, { onRunning in
                        try GatewayRoutes.application(gateway: gateway, host: "127.0.0.1", port: 0, tls: tls?.server, logger: logger, onServerRunning: onRunning)
                    }, body: { port in
                        try await body(Environment(gateway: "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)", http: tls?.client ?? http, upstreamA: a, upstreamB: b, log: log, gatewayValue: gateway))
                    })
                }
            }
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: JSONValue? { try? JSONValue.decode(Data(body.utf8)) }
    }

    static func send(
        _ env: Environment, _ path: String, method: String = "POST", body: String? = nil, key: String? = nil, headers extra: [String: String] = [:]
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: env.gateway + path)
        request.method = .init(rawValue: method)
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await env.http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        var headers: [String: String] = [:]
        for h in response.headers { headers[h.name.lowercased()] = h.value }
        return Reply(status: Int(response.status.code), headers: headers, body: String(buffer: bytes))
    }

    static func chat(
        _ env: Environment, model: String, stream: Bool = false, includeUsage: Bool = false, text: String = "what is six times seven?", key: String? = nil
    ) async throws -> Reply {
        var body: [String: JSONValue] = [
            "model": .string(model), "temperature": .number(0.25), "seed": .integer(7),
            "messages": .array([.object(["role": .string("system"), "content": .string("Be brief.")]),
                                .object(["role": .string("user"), "content": .string(text)])]),
        ]
        if stream { body["stream"] = .bool(true) }
        if includeUsage { body["stream_options"] = .object(["include_usage": .bool(true)]) }
        return try await send(env, "/v1/chat/completions", body: String(decoding: JSONValue.object(body).encoded(), as: UTF8.self), key: key)
    }

    /// `data:` payloads of an event stream.
    static func events(_ body: String) -> [String] {
        body.components(separatedBy: "\n\n").compactMap { e in e.hasPrefix("data: ") ? String(e.dropFirst(6)) : nil }
    }

    static func streamedText(_ body: String) -> String {
        events(body).compactMap { try? JSONValue.decode(Data($0.utf8)) }
            .flatMap { $0["choices"]?.arrayValue ?? [] }
            .compactMap { $0["delta"]?["content"]?.stringValue }.joined()
    }

    @Test func routesByLambdaAndFallsBackToTheNextBestModel() async throws {
        try await Self.withGateway { env in
            let zero = try await Self.chat(env, model: "route:0")
            #expect(zero.status == 200)
            #expect(zero.headers["x-fedroute-model"] == "strong")
            #expect(zero.headers["x-fedroute-fallback-from"] == nil)
            #expect(zero.headers["x-fedroute-predicted-score"] == "0.900000")
            #expect(zero.headers["x-fedroute-predicted-cost"].flatMap(Double.init) == 0.01)
            #expect(zero.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == Self.strongAnswer)

            let auto = try await Self.chat(env, model: "auto")
            #expect(auto.headers["x-fedroute-model"] == "strong" && auto.headers["x-fedroute-lambda"] == "0.0")

            let hundred = try await Self.chat(env, model: "route:100")
            #expect(hundred.status == 200)
            #expect(hundred.headers["x-fedroute-model"] == "cheap")
            #expect(hundred.headers["x-fedroute-fallback-from"] == "broken")
            #expect(hundred.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == Self.cheapAnswer)

            let thousand = try await Self.chat(env, model: "route:1000")
            #expect(thousand.headers["x-fedroute-model"] == "cheap")
            #expect(thousand.headers["x-fedroute-fallback-from"] == "offline")

            // The upstream got its own model name, the API key, and every field the gateway does not interpret.
            let callsA = await env.upstreamA.calls()
            #expect(callsA.count == 2 && callsA.allSatisfy { $0.model == "strong-v2" && $0.authorization == "Bearer sk-test-a" })
            #expect(callsA[0].body["temperature"] == .number(0.25) && callsA[0].body["seed"] == .integer(7))
            #expect(await env.upstreamB.calls().map(\.model) == ["broken", "cheap", "cheap"])

            // A named model is used as is, without routing or fallback.
            let named = try await Self.chat(env, model: "cheap")
            #expect(named.headers["x-fedroute-model"] == "cheap" && named.headers["x-fedroute-lambda"] == nil)
            let failed = try await Self.chat(env, model: "broken")
            #expect(failed.status == 502)
            #expect(failed.json?["error"]?["code"]?.stringValue == "upstream_failed")
        }
    }

    @Test func streamsServerSentEventsAndPricesThem() async throws {
        try await Self.withGateway { env in
            let plain = try await Self.chat(env, model: "route:0", stream: true)
            #expect(plain.status == 200)
            #expect(plain.headers["content-type"] == "text/event-stream")
            #expect(plain.headers["x-fedroute-model"] == "strong")
            #expect(Self.streamedText(plain.body) == Self.strongAnswer)
            #expect(Self.events(plain.body).last == "[DONE]")
            // The gateway asked the upstream for usage but the client did not: no usage chunk reaches it.
            #expect(!plain.body.contains("\"usage\""))
            #expect(await env.upstreamA.calls().last?.body["stream_options"]?["include_usage"] == .bool(true))

            let withUsage = try await Self.chat(env, model: "route:100", stream: true, includeUsage: true)
            #expect(withUsage.headers["x-fedroute-model"] == "cheap" && withUsage.headers["x-fedroute-fallback-from"] == "broken")
            #expect(Self.streamedText(withUsage.body) == Self.cheapAnswer)
            #expect(withUsage.body.contains("\"usage\""))

            // Both streams were priced from the upstream's usage, not estimated.
            let rows = try await env.stored().requests()
            #expect(rows.count == 2)
            #expect(rows.allSatisfy { $0.stream && $0.outcome == .answered && !$0.tokensEstimated })
            let strong = try #require(rows.first { $0.chosenModel == "strong" })
            #expect(strong.promptTokens == 20 && strong.completionTokens == 10)
            #expect(abs(strong.costUSD! - (20 * 10 + 10 * 30) / 1e6) < 1e-12)

            // A stream that breaks off mid-answer ends with an error event and is recorded as interrupted.
            let broken = try await Self.chat(env, model: "flaky", stream: true)
            #expect(broken.status == 200)
            #expect(Self.streamedText(broken.body) == "one two", "\(broken.body)")
            #expect(Self.events(broken.body).last?.contains("upstream_error") == true)
            let flaky = try #require(try await env.stored().requests().first { $0.chosenModel == "flaky" })
            #expect(flaky.outcome == .interrupted && flaky.tokensEstimated)
        }
    }

    @Test func recordsCostAndExportsRatedRequests() async throws {
        try await Self.withGateway { env in
            let a = try await Self.chat(env, model: "route:0", text: "integrate x squared")
            let b = try await Self.chat(env, model: "route:1000", text: "say hello")
            let c = try await Self.chat(env, model: "route:0", text: "say hello")
            _ = try await Self.chat(env, model: "route:0", text: "never rated")
            let failed = try await Self.chat(env, model: "broken", text: "fails")
            let ids = try [a, b, c, failed].map { try #require($0.headers["x-fedroute-request-id"]) }

            let rowA = try #require(try await env.stored().request(id: ids[0]))
            #expect(rowA.chosenModel == "strong" && rowA.lambda == 0 && rowA.query == "integrate x squared")
            #expect(rowA.promptTokens == 20 && rowA.completionTokens == 10 && rowA.costUSD == 0.0005)
            #expect(rowA.predictedScore == 0.9 && rowA.attempts == [UpstreamAttempt(model: "strong")])
            let rowB = try #require(try await env.stored().request(id: ids[1]))
            #expect(rowB.chosenModel == "cheap" && abs(rowB.costUSD! - 0.00003) < 1e-15)
            #expect(rowB.attempts.map(\.model) == ["offline", "cheap"] && rowB.attempts[0].error?.contains("unreachable") == true)
            #expect(try await env.stored().request(id: ids[3])?.outcome == .failed)

            for (id, score) in zip(ids[0..<3], [1.0, 0.25, 0.75]) {
                let r = try await Self.send(env, "/v1/feedback", body: #"{"request_id": "\#(id)", "score": \#(score)}"#)
                #expect(r.status == 200)
            }
            #expect(try await Self.send(env, "/v1/feedback", body: #"{"request_id": "\#(ids[0])", "score": 1.5}"#).status == 400)
            #expect(try await Self.send(env, "/v1/feedback", body: #"{"request_id": "frq-nope", "score": 1}"#).status == 404)
            #expect(try await Self.send(env, "/v1/feedback", body: #"{"request_id": "\#(ids[3])", "score": 1}"#).status == 409)
            #expect(try await Self.send(env, "/v1/feedback", body: #"{"score": 1}"#).status == 400)

            let (table, report) = try FeedbackExport.table(from: try await env.stored().requests(), task: "live")
            #expect(report.requests == 5 && report.exportedCells == 3 && report.unrated == 1 && report.notAnswered == 1)
            #expect(table.models == ["cheap", "strong"] && table.queryCount == 2)
            let hello = try #require(table.queries.firstIndex { $0.text == "say hello" })
            #expect(table.score(hello, 0) == 0.25 && table.score(hello, 1) == 0.75)
            #expect(table.cost(hello, 1) == 0.0005)
            let integrate = try #require(table.queries.firstIndex { $0.text == "integrate x squared" })
            #expect(table.score(integrate, 1) == 1.0 && !table.isObserved(integrate, 0))

            let metrics = try await Self.send(env, "/metrics", method: "GET")
            #expect(metrics.body.contains(#"fedroute_gateway_requests_total{model="strong",outcome="answered"} 3"#))
            #expect(metrics.body.contains("fedroute_gateway_feedback_total 3"))
            #expect(metrics.body.contains(#"fedroute_gateway_upstream_failures_total{model="offline"} 1"#))
        }
    }

    @Test func rejectsMalformedRequestsWithOpenAIErrors() async throws {
        try await Self.withGateway { env in
            let cases: [(String, Int, String?)] = [
                ("not json", 400, nil),
                ("[1, 2]", 400, nil),
                (#"{"messages": [{"role": "user", "content": "hi"}]}"#, 400, "model"),
                (#"{"model": 3, "messages": [{"role": "user", "content": "hi"}]}"#, 400, "model"),
                (#"{"model": "auto"}"#, 400, "messages"),
                (#"{"model": "auto", "messages": []}"#, 400, "messages"),
                (#"{"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}"#, 400, "messages[0].role"),
                (#"{"model": "auto", "messages": [{"role": "user", "content": 5}]}"#, 400, "messages[0].content"),
                (#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}"#, 400, "stream"),
                (#"{"model": "route:abc", "messages": [{"role": "user", "content": "hi"}]}"#, 400, "model"),
                (#"{"model": "route:-1", "messages": [{"role": "user", "content": "hi"}]}"#, 400, "model"),
                (#"{"model": "auto", "messages": [{"role": "system", "content": "only a system prompt"}]}"#, 400, "messages"),
                (#"{"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]}"#, 404, "model"),
            ]
            for (body, status, param) in cases {
                let r = try await Self.send(env, "/v1/chat/completions", body: body)
                #expect(r.status == status, "\(body)")
                #expect(r.json?["error"]?["param"]?.stringValue == param, "\(body)")
                #expect(r.json?["error"]?["message"]?.stringValue?.isEmpty == false)
            }
            // Nothing malformed reached an upstream or the log.
            let callsA = await env.upstreamA.calls(), callsB = await env.upstreamB.calls()
            #expect(callsA.isEmpty && callsB.isEmpty)
            #expect(try await env.stored().requests().isEmpty)

            let models = try await Self.send(env, "/v1/models", method: "GET")
            let ids = models.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
            #expect(ids == ["auto", "strong", "cheap", "broken", "flaky", "offline", "portal"])
            let health = try await Self.send(env, "/health", method: "GET")
            #expect(health.status == 200 && health.json?["routable_models"] == .integer(6))
        }
    }
}
