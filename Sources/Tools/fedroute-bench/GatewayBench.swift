import AsyncHTTPClient
import FedRouteData
import FedRouteEmbedding
import FedRouteFakeUpstream
import FedRouteFeatures
import FedRouteGatewayPostgres
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
        let (fake, client, directory) = try fixtures(models: models, label: "load")
        defer { try? FileManager.default.removeItem(at: directory) }
        let chat = shortQuestions()
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
                    await gateway.flushRequestLog()
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

    /// What keys and the shared store add: the same hashed router behind gateways with authentication off,
    /// with a key (SQLite), with a budgeted key (a reservation per request) and, when
    /// `FEDROUTE_BENCH_POSTGRES_URL` names a database, with a budgeted key on PostgreSQL. One client, the
    /// configurations interleaved round by round; medians over rounds of each one's p50 and p99.
    static func keys(pipeline: RoutingPipeline, logger: Logger, rounds: Int = 6, requests: Int = 1000) async throws {
        let models = pipeline.router.models
        let reply = FakeUpstream.Reply(text: "ok", promptTokens: 60, completionTokens: 96)
        let fake = FakeUpstream(behaviors: Dictionary(uniqueKeysWithValues: models.map { ($0, FakeUpstream.Behavior.answer(reply)) }))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(.init()))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-bench-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = try KeySecret(String(repeating: "bench-secret-", count: 4))
        let chat = shortQuestions()
        print("\ngateway with keys (hashed TF-IDF router, chat questions, 1 client, configurations interleaved over \(rounds) rounds of \(requests) requests after a warm-up round, order rotated)")
        try await fake.withRunning(logger: logger) { base in
            let config = try GatewayConfiguration(gateway: .init(lambda: 1), models: models.map { ModelEndpoint(name: $0, baseURL: base, price: TokenPrice(input: 1, output: 2)) })
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(config.gateway))
            /// (name, store, access, key for requests)
            var setups: [(String, any GatewayStore, GatewayAccess, String?)] = []
            // One database file each, so that no configuration's log grows (and checkpoints) faster than another's.
            func sqlite(_ name: String) throws -> SQLiteGatewayStore { try SQLiteGatewayStore(path: directory.appendingPathComponent(name).path) }
            let keyed = try sqlite("key.sqlite"), budgeted = try sqlite("budget.sqlite")
            let (_, plainKey) = try await keyed.createKey(name: "bench", policy: .init(rpm: 1_000_000), expiresAt: nil, secret: secret)
            let (_, budgetKey) = try await budgeted.createKey(name: "budget", policy: .init(budgetUSD: 1e9), expiresAt: nil, secret: secret)
            setups.append(("auth off, SQLite log", try sqlite("off.sqlite"), .open, nil))
            setups.append(("key (RPM limit), SQLite", keyed, .keys(secret), plainKey))
            setups.append(("budgeted key, SQLite", budgeted, .keys(secret), budgetKey))
            try await withPostgres(logger: logger) { postgres in
                if let postgres {
                    // One database for the three PostgreSQL rows, as replicas would share it.
                    let (_, plain) = try await postgres.createKey(name: "bench", policy: .init(rpm: 1_000_000), expiresAt: nil, secret: secret)
                    let (_, key) = try await postgres.createKey(name: "budget", policy: .init(budgetUSD: 1e9), expiresAt: nil, secret: secret)
                    setups.append(("auth off, PostgreSQL log", postgres, .open, nil))
                    setups.append(("key (RPM limit), PostgreSQL", postgres, .keys(secret), plain))
                    setups.append(("budgeted key, PostgreSQL", postgres, .keys(secret), key))
                }
                var gateways: [Gateway] = []
                for (_, store, access, _) in setups {
                    gateways.append(try Gateway(pipeline: pipeline, configuration: config, upstream: UpstreamClient(http: http), store: store, access: access, logger: logger))
                }
                try await withGateways(gateways, logger: logger) { ports in
                    let direct = base + "/chat/completions"
                    var p50: [[Double]] = Array(repeating: [], count: setups.count + 1), p99 = p50
                    // Round 0 warms up; later rounds rotate the order so that no configuration always runs first.
                    for round in 0...rounds {
                        let order = (0...ports.count).map { ($0 + round) % (ports.count + 1) }
                        for i in order {
                            let run = i == 0
                                ? try await measure(client, url: direct, model: models[0], texts: chat, concurrency: 1, total: requests)
                                : try await measure(client, url: "http://127.0.0.1:\(ports[i - 1])/v1/chat/completions", model: "auto", texts: chat,
                                                    concurrency: 1, total: requests, key: setups[i - 1].3)
                            if round > 0 { p50[i].append(run.percentile(0.5)); p99[i].append(run.percentile(0.99)) }
                        }
                    }
                    print(String(format: "    direct                      p50 %6.2f ms   p99 %6.2f ms", median(p50[0]) * 1e3, median(p99[0]) * 1e3))
                    for (i, setup) in setups.enumerated() {
                        let a50 = (median(p50[i + 1]) - median(p50[0])) * 1e3, a99 = (median(p99[i + 1]) - median(p99[0])) * 1e3
                        let vsOff50 = (median(p50[i + 1]) - median(p50[1])) * 1e3, vsOff99 = (median(p99[i + 1]) - median(p99[1])) * 1e3
                        print(String(format: "    %@ p50 %6.2f ms   p99 %6.2f ms   added: p50 %+.2f ms, p99 %+.2f ms; vs auth off: p50 %+.2f ms, p99 %+.2f ms",
                                     setup.0.padding(toLength: 28, withPad: " ", startingAt: 0), median(p50[i + 1]) * 1e3, median(p99[i + 1]) * 1e3,
                                     a50, a99, vsOff50, vsOff99))
                        // Against auth off on the same store (PostgreSQL rows against the PostgreSQL log).
                        let off = setup.0.hasSuffix("PostgreSQL") ? (setups.firstIndex { $0.0 == "auth off, PostgreSQL log" }.map { $0 + 1 } ?? 1) : 1
                        if i + 1 != off {
                            print("      minus \(setups[off - 1].0) in the same round, median [min, max] over rounds: p50 \(paired(p50[i + 1], p50[off])) ms, p99 \(paired(p99[i + 1], p99[off])) ms")
                        }
                    }
                }
            }
            try await http.shutdown()
        }
        try await client.shutdown()
    }

    /// The latency target's figure (issue 19: added p50 ≤ 1 ms, p99 ≤ 2 ms for 1.5 kB prompts, one client): the
    /// hashed router behind one gateway (auth off, SQLite log), one client, direct and through the gateway
    /// alternating over `rounds` rounds of `requests` requests each after a warm-up round, for the data's
    /// prompts and for chat questions. The added latency is taken round by round (gateway minus direct in
    /// the same round), so that the machine's drift between rounds cancels; medians and ranges over rounds.
    static func latency(pipeline: RoutingPipeline, texts: [String], logger: Logger, rounds: Int, requests: Int) async throws {
        let models = pipeline.router.models
        let (fake, client, directory) = try fixtures(models: models, label: "latency")
        defer { try? FileManager.default.removeItem(at: directory) }
        let chat = shortQuestions()
        let rows = [("data prompts, mean \(meanBytes(texts)) bytes", texts), ("chat questions, mean \(meanBytes(chat)) bytes", chat)]
        print("\ngateway latency (hashed TF-IDF router, auth off, SQLite log, 1 client; direct and gateway alternating over \(rounds) rounds of \(requests) requests after a warm-up round)")
        try await fake.withRunning(logger: logger) { base in
            let config = try GatewayConfiguration(gateway: .init(lambda: 1), models: models.map { ModelEndpoint(name: $0, baseURL: base, price: TokenPrice(input: 1, output: 2)) })
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(config.gateway))
            let store = try SQLiteGatewayStore(path: directory.appendingPathComponent("latency.sqlite").path)
            let gateway = try Gateway(pipeline: pipeline, configuration: config, upstream: UpstreamClient(http: http), store: store, logger: logger)
            try await withGateways([gateway], logger: logger) { ports in
                let direct = base + "/chat/completions", routed = "http://127.0.0.1:\(ports[0])/v1/chat/completions"
                for (name, queries) in rows {
                    // [direct, gateway] × rounds
                    var p50: [[Double]] = [[], []], p99: [[Double]] = [[], []]
                    for round in 0...rounds {
                        for side in round % 2 == 0 ? [0, 1] : [1, 0] {
                            let run = side == 0
                                ? try await measure(client, url: direct, model: models[0], texts: queries, concurrency: 1, total: requests)
                                : try await measure(client, url: routed, model: "auto", texts: queries, concurrency: 1, total: requests)
                            if round > 0 { p50[side].append(run.percentile(0.5)); p99[side].append(run.percentile(0.99)) }
                        }
                    }
                    print("  \(name):")
                    print(String(format: "    direct   p50 %6.2f ms   p99 %6.2f ms", median(p50[0]) * 1e3, median(p99[0]) * 1e3))
                    print(String(format: "    gateway  p50 %6.2f ms   p99 %6.2f ms", median(p50[1]) * 1e3, median(p99[1]) * 1e3))
                    print("    added, gateway minus direct in the same round, median [min, max] over rounds: p50 \(paired(p50[1], p50[0])) ms, p99 \(paired(p99[1], p99[0])) ms")
                }
                await gateway.flushRequestLog()
            }
            try await http.shutdown()
        }
        try await client.shutdown()
    }

    /// What the load and latency sections share: a fake upstream where every model answers at once with the
    /// same 96-token reply, a client for the requests, and a scratch folder for request logs (the caller
    /// removes it and shuts the client down).
    static func fixtures(models: [String], label: String) throws -> (fake: FakeUpstream, client: HTTPClient, directory: URL) {
        let reply = FakeUpstream.Reply(text: String(repeating: "lorem ipsum dolor sit amet ", count: 12), promptTokens: 60, completionTokens: 96)
        let fake = FakeUpstream(behaviors: Dictionary(uniqueKeysWithValues: models.map { ($0, FakeUpstream.Behavior.answer(reply)) }))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UpstreamClient.httpConfiguration(.init()))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-bench-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return (fake, client, directory)
    }

    /// Round by round, `x` minus `reference` measured in the same round (seconds): median and range over rounds, ms.
    static func paired(_ x: [Double], _ reference: [Double]) -> String {
        let d = zip(x, reference).map { ($0 - $1) * 1e3 }
        return String(format: "%+.2f [%+.2f, %+.2f]", median(d), d.min() ?? 0, d.max() ?? 0)
    }

    /// Mean UTF-8 bytes per text.
    static func meanBytes(_ texts: [String]) -> Int { texts.reduce(0) { $0 + $1.utf8.count } / max(1, texts.count) }

    /// The store of `FEDROUTE_BENCH_POSTGRES_URL` (a fresh database on that server), or nil.
    static func withPostgres(logger: Logger, _ body: (PostgresGatewayStore?) async throws -> Void) async throws {
        guard let url = ProcessInfo.processInfo.environment["FEDROUTE_BENCH_POSTGRES_URL"], !url.isEmpty else {
            print("    (PostgreSQL row skipped: set FEDROUTE_BENCH_POSTGRES_URL, e.g. from scripts/postgres-test-server.sh)")
            return try await body(nil)
        }
        let name = "fedroute_bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        try await PostgresGatewayStore.withStore(url: url, logger: logger) { try await $0.createDatabase(named: String(name)) }
        guard var c = URLComponents(string: url) else { return try await body(nil) }
        c.path = "/" + name
        try await PostgresGatewayStore.withStore(url: c.string ?? url, logger: logger) { try await body($0) }
    }

    /// Runs every gateway on its own port while `body` runs.
    static func withGateways(_ gateways: [Gateway], logger: Logger, _ body: ([Int]) async throws -> Void, ports: [Int] = []) async throws {
        guard let first = gateways.first else { return try await body(ports) }
        try await HTTPRunner.withRunning(logger: logger, { onRunning in
            try GatewayRoutes.application(gateway: first, host: "127.0.0.1", port: 0, logger: logger, onServerRunning: onRunning)
        }, body: { port in
            try await withGateways(Array(gateways.dropFirst()), logger: logger, body, ports: ports + [port])
        })
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
    static func measure(_ client: HTTPClient, url: String, model: String, texts: [String], concurrency: Int, total: Int, key: String? = nil) async throws -> Run {
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
                        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
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
