import FedRouteData
@testable import FedRouteGatewayStore
import Foundation
import Testing

@Suite struct SQLiteGatewayStoreTests {
    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-log-\(UUID().uuidString).sqlite").path
    }

    static func request(_ id: String, query: String, model: String?, outcome: RequestOutcome = .answered, cost: Double? = 0.001, at t: TimeInterval = 0) -> RoutedRequest {
        RoutedRequest(
            id: id, createdAt: Date(timeIntervalSince1970: 1_800_000_000 + t), query: query, requestedModel: "auto", lambda: 1, chosenModel: model,
            predictedScore: model == nil ? nil : 0.5, predictedCost: model == nil ? nil : 0.002,
            attempts: [UpstreamAttempt(model: "x", error: "HTTP 500"), UpstreamAttempt(model: model ?? "y", error: model == nil ? "unreachable" : nil)],
            stream: false, outcome: outcome, promptTokens: model == nil ? nil : 12, completionTokens: model == nil ? nil : 30,
            tokensEstimated: false, costUSD: model == nil ? nil : cost, latencyMilliseconds: 12.5)
    }

    @Test func roundTripsRequestsAndFeedbackAcrossReopening() async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try SQLiteGatewayStore(path: path)
        let a = Self.request("a", query: "q1", model: "m1")
        try await log.record(a)
        try await log.record(Self.request("b", query: "q2", model: nil, outcome: .failed, at: 5))
        #expect(try await log.request(id: "a") == a)

        let rated = try await log.attachFeedback(requestID: "a", score: 0.75, at: Date(timeIntervalSince1970: 1_800_000_100))
        #expect(rated.feedbackScore == 0.75)
        await #expect(throws: FeedbackError.unknownRequest("zz")) { try await log.attachFeedback(requestID: "zz", score: 1) }
        await #expect(throws: FeedbackError.notAnswered("b")) { try await log.attachFeedback(requestID: "b", score: 1) }
        await #expect(throws: FeedbackError.invalidScore(2)) { try await log.attachFeedback(requestID: "a", score: 2) }
        await #expect(throws: FeedbackError.self) { try await log.attachFeedback(requestID: "a", score: .nan) }
        // A duplicate id is an error, not a silent overwrite.
        await #expect(throws: GatewayStoreError.self) { try await log.record(a) }

        let reopened = try SQLiteGatewayStore(path: path, create: false)
        let all = try await reopened.requests()
        #expect(all.map(\.id) == ["a", "b"])
        #expect(all[0].feedbackScore == 0.75 && all[0].attempts == a.attempts)
        #expect(try await reopened.requests(since: Date(timeIntervalSince1970: 1_800_000_001)).map(\.id) == ["b"])
    }

    @Test func readersDoNotCreateMissingLogs() {
        let path = Self.temporaryPath()
        #expect(throws: GatewayStoreError.self) { try SQLiteGatewayStore(path: path, create: false) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func exportMergesTextsAveragesRepeatsAndCountsWhatItLeavesOut() throws {
        var rows = [
            Self.request("r1", query: "hello", model: "small", cost: 0.001),
            Self.request("r2", query: "hello", model: "large", cost: 0.01),
            Self.request("r3", query: "hello", model: "small", cost: 0.003),
            Self.request("r4", query: "sum 2+2", model: "large", cost: 0.02),
            Self.request("r5", query: "unrated", model: "small"),
            Self.request("r6", query: "failed", model: nil, outcome: .failed),
            Self.request("r7", query: "cut", model: "small", outcome: .interrupted),
        ]
        for (i, s) in [0.0, 1.0, 0.5, 0.8].enumerated() { rows[i].feedbackScore = s }
        rows[6].feedbackScore = 1
        let (table, report) = try FeedbackExport.table(from: rows, task: "live", split: .train)
        #expect(report == FeedbackExport.Report(requests: 7, exportedCells: 3, queries: 2, unrated: 1, notAnswered: 1, interrupted: 1, averaged: 1))
        #expect(table.models == ["large", "small"])
        #expect(table.queries.map(\.id) == ["r1", "r4"] && table.queries.allSatisfy { $0.task == "live" && $0.split == .train })
        #expect(table.score(0, 1) == 0.25 && abs(table.cost(0, 1)! - 0.002) < 1e-15)
        #expect(table.score(0, 0) == 1.0 && table.cost(0, 0) == 0.01)
        #expect(table.score(1, 0) == 0.8 && !table.isObserved(1, 1))

        // What the exporter writes is what fedroute's loaders read back.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-export-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NativeFormat.write(table, to: path)
        var loadReport = LoadReport()
        #expect(try NativeFormat.read(path: path, options: LoadOptions(), report: &loadReport) == table)
    }
}
