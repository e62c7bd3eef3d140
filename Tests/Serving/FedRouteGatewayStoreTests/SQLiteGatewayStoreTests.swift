import FedRouteData
@testable import FedRouteGatewayStore
import Foundation
import GRDB
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

    /// `RoutedRequest` writes its columns itself, as a record and through the request log's prepared
    /// statement; the row must be the one GRDB's `Encodable` path wrote before, column for column and byte
    /// for byte, so that older logs and newer rows read alike.
    @Test func theWrittenRowIsTheOneGRDBsEncodablePathWrites() throws {
        /// The same request through GRDB's default `Encodable` record encoding.
        struct EncodablePath: Encodable, PersistableRecord {
            static let databaseTableName = RoutedRequest.databaseTableName
            static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
            let request: RoutedRequest
            func encode(to encoder: any Encoder) throws { try request.encode(to: encoder) }
        }
        var everything = Self.request("full", query: "naïve \"quoted\" / slashed\nline 🙂", model: "org/model-1", at: 0.25)
        everything.attempts = [UpstreamAttempt(model: "a/b", error: "HTTP 500: \"x\" \u{1}é"), UpstreamAttempt(model: "org/model-1")]
        everything.feedbackScore = 0.25
        everything.feedbackAt = Date(timeIntervalSince1970: 1_800_000_100.5)
        everything.keyID = "key-1"
        everything.tokensEstimated = true
        everything.stream = true
        var bare = Self.request("bare", query: "", model: nil, outcome: .interrupted)
        bare.attempts = []
        bare.lambda = nil
        let rows = [everything, bare, Self.request("plain", query: "q", model: "m")]
        func written(_ insert: (Database) throws -> Void) throws -> [[String: DatabaseValue]] {
            let queue = try DatabaseQueue()
            try SQLiteGatewayStore.migrator.migrate(queue)
            return try queue.write { db in
                try insert(db)
                return try Row.fetchAll(db, sql: "SELECT * FROM routed_request ORDER BY id").map { row in
                    Dictionary(uniqueKeysWithValues: row.columnNames.map { ($0, row[$0] as DatabaseValue) })
                }
            }
        }
        let record = try written { db in for r in rows { try r.insert(db) } }
        let prepared = try written { db in for r in rows { try r.insertPrepared(db) } }
        let viaEncodable = try written { db in for r in rows { try EncodablePath(request: r).insert(db) } }
        #expect(record.count == 3 && record.first?.count == 19)
        #expect(record == viaEncodable, "\(record)\n\(viaEncodable)")
        #expect(prepared == viaEncodable, "\(prepared)\n\(viaEncodable)")
        let queue = try DatabaseQueue()
        try SQLiteGatewayStore.migrator.migrate(queue)
        try queue.write { db in for r in rows { try r.insert(db) } }
        #expect(try queue.read { db in try RoutedRequest.fetchAll(db, sql: "SELECT * FROM routed_request ORDER BY id") } == rows.sorted { $0.id < $1.id })
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
