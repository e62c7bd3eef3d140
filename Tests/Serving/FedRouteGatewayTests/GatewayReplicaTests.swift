import FedRouteData
import FedRouteGatewayPostgres
import FedRouteGatewayStore
@testable import FedRouteGateway
import Foundation
import Logging
import Testing

/// Two gateway replicas on one PostgreSQL database (`FEDROUTE_TEST_POSTGRES_URL`; `.ci/run` starts a
/// server): each has its own connection pool, rate limiter, upstream client and port, and they share
/// keys, budgets, the request log and feedback.
@Suite(.enabled(if: ReplicaTestServer.url != nil, "set FEDROUTE_TEST_POSTGRES_URL (scripts/postgres-test-server.sh start DIR) to run"))
struct GatewayReplicaTests {
    typealias E2E = GatewayEndToEndTests
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A new database on the test server; its URL.
    static func freshDatabase() async throws -> String {
        let url = try #require(ReplicaTestServer.url)
        let name = "fedroute_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await PostgresGatewayStore.withStore(url: url, logger: logger) { try await $0.createDatabase(named: String(name)) }
        var c = try #require(URLComponents(string: url))
        c.path = "/" + name
        return try #require(c.string)
    }

    @Test func replicasShareKeysBudgetsTheLogAndFeedback() async throws {
        let url = try await Self.freshDatabase()
        let secret = try KeySecret(String(repeating: "replica-secret-", count: 3))
        try await PostgresGatewayStore.withStore(url: url, logger: Self.logger) { storeOne in
            try await PostgresGatewayStore.withStore(url: url, logger: Self.logger) { storeTwo in
                try await E2E.withGateway(access: .keys(secret), store: storeOne) { one in
                    try await E2E.withGateway(access: .keys(secret), store: storeTwo) { two in
                        // A key made through one replica's store works on both.
                        let (record, key) = try await storeOne.createKey(
                            name: "shared", policy: .init(budgetUSD: 0.0001, models: ["cheap"]), expiresAt: nil, secret: secret)
                        // cheap's answers cost 30 micro-USD: 4 fit under the shared 100, alternating replicas.
                        var answered = 0
                        for i in 0..<8 {
                            let r = try await E2E.chat(i % 2 == 0 ? one : two, model: "route:100", key: key)
                            if r.status == 200 { answered += 1 } else {
                                #expect(r.status == 429 && r.json?["error"]?["code"]?.stringValue == "budget_exceeded")
                            }
                        }
                        #expect(answered == 4)
                        let spend = try #require(try await storeTwo.key(hash: record.hash)?.spendUSD)
                        #expect(abs(spend - 0.00012) < 1e-12, "\(spend)")

                        // Both replicas' requests are in one log; a request served by one is rated through the other.
                        let rows = try await storeTwo.requests()
                        #expect(rows.filter { $0.outcome == .answered }.count == 4 && rows.allSatisfy { $0.keyID == record.id })
                        let servedByOne = try #require(rows.first)
                        let rated = try await E2E.send(two, "/v1/feedback", body: #"{"request_id": "\#(servedByOne.id)", "score": 0.5}"#, key: key)
                        #expect(rated.status == 200, "\(rated.body)")
                        #expect(try await storeOne.request(id: servedByOne.id)?.feedbackScore == 0.5)
                        let (table, report) = try FeedbackExport.table(from: try await storeOne.requests(), task: "live")
                        #expect(report.exportedCells == 1 && table.queries.count == 1)

                        // Revoked through one replica: the other refuses the key once its cached copy (1 s) is stale.
                        let (_, fresh) = try await storeTwo.createKey(name: "soon-gone", policy: .init(), expiresAt: nil, secret: secret)
                        #expect(try await E2E.chat(two, model: "route:100", key: fresh).status == 200)
                        // A request without a budget is written behind its response; rated at once
                        // through the other replica, which waits for the row, it is found.
                        for _ in 0..<5 {
                            let quick = try await E2E.chat(one, model: "route:100", key: fresh)
                            let quickID = try #require(quick.headers["x-fedroute-request-id"])
                            let rating = try await E2E.send(two, "/v1/feedback", body: #"{"request_id": "\#(quickID)", "score": 1}"#, key: fresh)
                            #expect(rating.status == 200, "\(rating.body)")
                        }
                        let gone = try await storeOne.key(idOrName: "soon-gone")
                        _ = try await storeOne.revoke(keyID: gone.id, at: Date())
                        let revokedAt = ContinuousClock.now
                        var status = 200
                        while status == 200, ContinuousClock.now - revokedAt < .seconds(5) {
                            status = try await E2E.chat(two, model: "route:100", key: fresh).status
                            if status == 200 { try await Task.sleep(for: .milliseconds(100)) }
                        }
                        #expect(status == 401 && ContinuousClock.now - revokedAt < .seconds(2), "\(ContinuousClock.now - revokedAt)")
                    }
                }
            }
        }
    }
}

enum ReplicaTestServer {
    /// The test server's URL, from `FEDROUTE_TEST_POSTGRES_URL`.
    static let url = ProcessInfo.processInfo.environment["FEDROUTE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
}
