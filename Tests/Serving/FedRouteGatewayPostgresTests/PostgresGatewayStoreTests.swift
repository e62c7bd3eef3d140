@testable import FedRouteGatewayPostgres
import FedRouteGatewayStore
import Foundation
import Logging
import PostgresNIO
import Testing

enum PostgresTestServer {
    /// The test server's URL, from `FEDROUTE_TEST_POSTGRES_URL`.
    static let url = ProcessInfo.processInfo.environment["FEDROUTE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
}

/// The Postgres store against a real server: `FEDROUTE_TEST_POSTGRES_URL` (`.ci/run` starts one with
/// `scripts/postgres-test-server.sh`; without it these tests are skipped and say so). Each test gets a
/// database of its own.
@Suite(.enabled(if: PostgresTestServer.url != nil, "set FEDROUTE_TEST_POSTGRES_URL (scripts/postgres-test-server.sh start DIR) to run"))
struct PostgresGatewayStoreTests {
    static var serverURL: String? { PostgresTestServer.url }
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    static let secret = try! KeySecret(String(repeating: "postgres-secret-", count: 3))

    /// A new, empty database on the test server; its URL.
    static func freshDatabase() async throws -> String {
        let url = try #require(serverURL)
        let name = "fedroute_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await PostgresGatewayStore.withStore(url: url, logger: logger) { try await $0.createDatabase(named: String(name)) }
        var c = try #require(URLComponents(string: url))
        c.path = "/" + name
        return try #require(c.string)
    }

    static func row(_ id: String, key: String?) -> RoutedRequest {
        RoutedRequest(
            id: id, createdAt: Date(timeIntervalSince1970: 1_800_000_000), query: "what is 2+2?\n(\"quoted\")", requestedModel: "auto", lambda: 1,
            chosenModel: "m", predictedScore: 0.5, predictedCost: 0.002, attempts: [UpstreamAttempt(model: "x", error: "HTTP 500"), UpstreamAttempt(model: "m")],
            stream: false, outcome: .answered, promptTokens: 12, completionTokens: 30, tokensEstimated: false, costUSD: 0.001,
            latencyMilliseconds: 12.5, keyID: key)
    }

    @Test func requestsFeedbackAndKeysRoundTrip() async throws {
        let url = try await Self.freshDatabase()
        try await PostgresGatewayStore.withStore(url: url, logger: Self.logger) { store in
            #expect(!store.location.contains("password") && store.location.hasPrefix("postgres://"))
            let (record, apiKey) = try await store.createKey(name: "team-a", policy: .init(budgetUSD: 2, rpm: 5, models: ["m"]), expiresAt: nil, secret: Self.secret)
            #expect(try await store.key(hash: Self.secret.hash(apiKey)) == record)
            #expect(try await store.key(idOrName: "team-a").id == record.id)

            try await store.record(Self.row("a", key: record.id))
            var failed = Self.row("b", key: nil)
            failed.outcome = .failed
            failed.chosenModel = nil
            try await store.record(failed)
            await #expect(throws: GatewayStoreError.self) { try await store.record(Self.row("a", key: nil)) }
            let a = try #require(try await store.request(id: "a"))
            #expect(a.attempts == Self.row("a", key: nil).attempts && a.query == "what is 2+2?\n(\"quoted\")" && a.keyID == record.id)

            await #expect(throws: FeedbackError.unknownRequest("a")) { try await store.attachFeedback(requestID: "a", keyID: "key-other", score: 1, at: Date()) }
            await #expect(throws: FeedbackError.notAnswered("b")) { try await store.attachFeedback(requestID: "b", keyID: nil, score: 1, at: Date()) }
            await #expect(throws: FeedbackError.invalidScore(3)) { try await store.attachFeedback(requestID: "a", keyID: nil, score: 3, at: Date()) }
            #expect(try await store.attachFeedback(requestID: "a", keyID: record.id, score: 0.75, at: Date()).feedbackScore == 0.75)
            #expect(try await store.requests(since: nil).map(\.id) == ["a", "b"])
            #expect(try await store.requests(since: Date(timeIntervalSince1970: 1_900_000_000)).isEmpty)
            #expect(try await store.request(id: "a")?.feedbackScore == 0.75)

            #expect(try await store.revoke(keyID: record.id, at: Date()).status() == .revoked)
            await #expect(throws: VirtualKeyError.self) {
                _ = try await store.createKey(name: "x", policy: .init(), expiresAt: nil, secret: try KeySecret(String(repeating: "q", count: 40)))
            }
        }
    }

    /// Two replicas (two stores, two pools) admitting 40 requests of 0.3 USD against a 1 USD budget at
    /// once: 4 are admitted in all (0, 0.3, 0.6, 0.9 < 1), whatever the interleaving.
    @Test func replicasShareOneBudget() async throws {
        let url = try await Self.freshDatabase()
        try await PostgresGatewayStore.withStore(url: url, logger: Self.logger) { one in
            try await PostgresGatewayStore.withStore(url: url, logger: Self.logger) { two in
                let (key, _) = try await one.createKey(name: "shared", policy: .init(budgetUSD: 1), expiresAt: nil, secret: Self.secret)
                let later = Date().addingTimeInterval(600)
                let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for i in 0..<40 {
                        let store = i % 2 == 0 ? one : two
                        group.addTask { try await store.reserve(keyID: key.id, requestID: "r\(i)", usd: 0.3, budgetUSD: 1, expiresAt: later, now: Date()) }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(admitted == 4)
                for i in 0..<40 { try await (i % 2 == 0 ? one : two).settle(keyID: key.id, requestID: "r\(i)", usd: i < 4 ? 0.25 : 0) }
                // Spend added concurrently by both replicas is not lost.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<20 { group.addTask { try await (i % 2 == 0 ? one : two).settle(keyID: key.id, requestID: "s\(i)", usd: 0.001) } }
                    try await group.waitForAll()
                }
                let spend = try #require(try await two.key(hash: key.hash)?.spendUSD)
                #expect(abs(spend - 1.02) < 1e-9, "\(spend)")
                #expect(try await !one.reserve(keyID: key.id, requestID: "late", usd: 0, budgetUSD: 1, expiresAt: later, now: Date()))
            }
        }
    }

    @Test func migrationsRunOnceEvenWhenReplicasStartTogether() async throws {
        let url = try await Self.freshDatabase()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { try await PostgresGatewayStore.withStore(url: url, logger: Self.logger) { _ in } } }
            try await group.waitForAll()
        }
        try await PostgresGatewayStore.withStore(url: url, logger: Self.logger) { store in
            let names = try await store.client.query("SELECT name FROM fedroute_migration ORDER BY name").decode(String.self).reduce(into: [String]()) { $0.append($1) }
            #expect(names == PostgresGatewayStore.migrations.map(\.name))
        }
    }

    @Test func badURLsAreNamedWithoutTheirPassword() throws {
        #expect(throws: GatewayStoreError.self) { try PostgresGatewayStore(url: "mysql://u@h/d", logger: Self.logger) }
        do {
            _ = try PostgresGatewayStore(url: "postgres://u:hunter2@h/d?sslmode=maybe", logger: Self.logger)
            Issue.record("accepted sslmode=maybe")
        } catch {
            #expect("\(error)".contains("sslmode") && !"\(error)".contains("hunter2"))
        }
        #expect(throws: GatewayStoreError.self) { try PostgresGatewayStore(url: "postgres://u@h/", logger: Self.logger) }
    }
}
