import AsyncHTTPClient
import FedRouteData
import FedRouteEmbedding
import FedRouteFakeUpstream
import FedRouteFeatures
import FedRouteGatewayStore
import FedRouteGateway
import FedRouteHTTPRunner
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Load on the gateway: a fake upstream that answers at once, the gateway in front of it with a
/// real router and request log, and a Swift client with N concurrent workers. The same requests go
/// once straight to the upstream and once through the gateway (`model: auto`); the difference is
/// what the gateway adds (parse, embed, route, forward, log). Client, gateway and upstream share
/// this machine's cores, so figures at high concurrency include their contention.
enum GatewayBench {
    struct Run {
        var latencies: [Double]   // seconds, sorted
        var seconds: Double
        var rate: Double { Double(latencies.count) / seconds }
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
    }

    static func run(pipeline: RoutingPipeline, texts: [String], minilm: MiniLMEncoder?) async throws {
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let models = pipeline.router.models
        let reply = FakeUpstream.Reply(text: String(repeating: "lorem ipsum dolor sit amet ", count: 12), promptTokens: 60, completionTokens: 96)
        let fake = FakeUpstream(behaviors: Dictionary(uniqueKeysWithValues: models.map { ($0, FakeUpstream.Behavior.answer(reply)) }))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(.init()))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let chat = shortQuestions()
        func meanBytes(_ t: [String]) -> Int { t.reduce(0) { $0 + $1.utf8.count } / max(1, t.count) }
        print("\ngateway under load (loopback; client, gateway and a fake upstream that answers at once share the cores; request log on)")
        try await fake.withRunning(logger: logger) { base in
            // (router, queries, [(concurrent clients, requests)])
            var rows: [(String, RoutingPipeline, String, [String], [(Int, Int)])] = [
                ("hashed TF-IDF + MLP", pipeline, "data prompts, mean \(meanBytes(texts)) bytes", texts, [(1, 400), (16, 3000)]),
                ("hashed TF-IDF + MLP", pipeline, "chat questions, mean \(meanBytes(chat)) bytes", chat, [(1, 400), (16, 3000)]),
            ]
            if let minilm {
                let p = try minilmPipeline(minilm, models: models, texts: texts)
                rows.append(("MiniLM + K-Means", p, "data prompts, mean \(meanBytes(texts)) bytes", texts, [(1, 50), (4, 100)]))
                rows.append(("MiniLM + K-Means", p, "chat questions, mean \(meanBytes(chat)) bytes", chat, [(1, 200), (16, 1000)]))
            }
            for (name, routingPipeline, textsName, texts, loads) in rows {
                let config = try GatewayConfiguration(
                    gateway: .init(lambda: 1),
                    models: models.map { ModelEndpoint(name: $0, baseURL: base, price: TokenPrice(input: 1, output: 2)) })
                let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(config.gateway))
                let log = try SQLiteGatewayStore(path: directory.appendingPathComponent("\(UUID().uuidString).sqlite").path)
                let gateway = try Gateway(pipeline: routingPipeline, configuration: config, upstream: UpstreamClient(http: http), store: log, logger: logger)
                try await HTTPRunner.withRunning(logger: logger, { onRunning in
                    try GatewayRoutes.application(gateway: gateway, host: "127.0.0.1", port: 0, logger: logger, onServerRunning: onRunning)
                }, body: { port in
                    let routed = "http://127.0.0.1:\(port)/v1/chat/completions"
                    let direct = base + "/chat/completions"
                    for (concurrency, total) in loads {
                        _ = try await measure(client, url: direct, model: models[0], texts: texts, concurrency: concurrency, total: 50)
                        _ = try await measure(client, url: routed, model: "auto", texts: texts, concurrency: concurrency, total: 50)
                        let d = try await measure(client, url: direct, model: models[0], texts: texts, concurrency: concurrency, total: total)
                        let g = try await measure(client, url: routed, model: "auto", texts: texts, concurrency: concurrency, total: total)
                        print("  \(name), \(textsName), \(concurrency) concurrent, \(total) requests:")
                        print(String(format: "    direct   %7.0f req/s   p50 %7.2f ms   p99 %7.2f ms", d.rate, d.percentile(0.5) * 1e3, d.percentile(0.99) * 1e3))
                        print(String(format: "    gateway  %7.0f req/s   p50 %7.2f ms   p99 %7.2f ms   added: p50 %+.2f ms, p99 %+.2f ms",
                                     g.rate, g.percentile(0.5) * 1e3, g.percentile(0.99) * 1e3,
                                     (g.percentile(0.5) - d.percentile(0.5)) * 1e3, (g.percentile(0.99) - d.percentile(0.99)) * 1e3))
                    }
                    let recorded = try await log.requests().count
                    // Mean time spent embedding + predicting, from the gateway's own histogram.
                    let exposition = gateway.metrics.exposition()
                    func value(_ name: String) -> Double? {
                        exposition.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
                    }
                    let routing = (value("fedroute_gateway_routing_seconds_sum") ?? .nan) / (value("fedroute_gateway_routing_seconds_count") ?? .nan)
                    print(String(format: "    request log: %d rows written; mean routing time per request (embed + predict, incl. waiting for a batch) %.2f ms", recorded, routing * 1e3))
                })
                try await http.shutdown()
            }
        }
        try await client.shutdown()
    }

    /// 240 short chat-style questions, the length of typical live traffic.
    static func shortQuestions() -> [String] {
        let asks = ["How do I", "What is the best way to", "Can you explain how to", "Write code to", "Why does it fail when I"]
        let tasks = ["reverse a list in Python", "sort a dictionary by value", "compute a median in SQL", "parse JSON in Swift",
                     "prove that the square root of two is irrational", "solve 3x + 7 = 22", "summarise the causes of World War I",
                     "translate 'good morning' into French", "choose between TCP and UDP", "center a div with CSS",
                     "estimate the integral of x squared from 0 to 3", "pick a name for a bakery"]
        var out: [String] = []
        for (i, task) in tasks.enumerated() {
            for (j, ask) in asks.enumerated() {
                for k in 0..<4 { out.append("\(ask) \(task)? (variant \(i * 20 + j * 4 + k))") }
            }
        }
        return out
    }

    /// A MiniLM pipeline for timing only: K-Means centroids from embedded queries, uniform statistics.
    static func minilmPipeline(_ minilm: MiniLMEncoder, models: [String], texts: [String]) throws -> RoutingPipeline {
        let centroids = minilm.encode(Array(texts.prefix(20)))
        var stats = ClusterStatistics(clusters: centroids.rows, models: models.count)
        for i in stats.count.indices {
            stats.count[i] = 1
            stats.scoreSum[i] = 0.5
            stats.costSum[i] = 1e-3
        }
        return try RoutingPipeline(encoder: .minilm(minilm), router: AnyRouter(try KMeansRouter(models: models, centroids: centroids, statistics: stats)))
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    /// Sends `total` chat requests with `concurrency` workers; each worker sends its next request when the last one is answered.
    static func measure(_ client: HTTPClient, url: String, model: String, texts: [String], concurrency: Int, total: Int) async throws -> Run {
        let bodies = (0..<min(total, texts.count)).map { i in
            JSONValue.object(["model": .string(model), "messages": .array([.object(["role": .string("user"), "content": .string(texts[i])])])]).encoded()
        }
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for w in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    for i in stride(from: w, to: total, by: concurrency) {
                        var request = HTTPClientRequest(url: url)
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(data: bodies[i % bodies.count]))
                        let t0 = clock.now
                        let response = try await client.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .ok else { throw BenchError.status(Int(response.status.code), url) }
                        let elapsed = clock.now - t0
                        mine.append(seconds(elapsed))
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
        let elapsed = clock.now - start
        return Run(latencies: latencies.sorted(), seconds: seconds(elapsed))
    }
}

enum BenchError: Error, CustomStringConvertible {
    case status(Int, String)
    var description: String {
        switch self { case .status(let code, let url): "HTTP \(code) from \(url)" }
    }
}
