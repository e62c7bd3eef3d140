import Foundation
import GRDB

/// One model the gateway tried for a request, and why it did not answer (nil when it did).
public struct UpstreamAttempt: Codable, Sendable, Equatable {
    public var model: String
    public var error: String?

    public init(model: String, error: String? = nil) {
        self.model = model
        self.error = error
    }
}

/// How a routed request ended.
public enum RequestOutcome: String, Codable, Sendable, DatabaseValueConvertible {
    /// A model answered in full.
    case answered
    /// Every model tried failed; the client got an error.
    case failed
    /// A streamed answer was cut off (the upstream broke off or the client went away).
    case interrupted
}

/// One request that went through the gateway: what was asked, which model answered, what it cost
/// and, once a user rated it, the quality score.
public struct RoutedRequest: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "routed_request"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    /// The gateway's id, returned to the client in `X-FedRoute-Request-Id`.
    public var id: String
    public var createdAt: Date
    /// The text the router embedded (last user message or the whole conversation).
    public var query: String
    /// The `model` field of the request (`auto`, `route:<λ>` or a model name).
    public var requestedModel: String
    /// λ used for routing; nil when the client named a model.
    public var lambda: Double?
    /// The model that answered; nil when none did.
    public var chosenModel: String?
    public var predictedScore: Double?
    public var predictedCost: Double?
    /// Every model tried, in order, with the reason each failed one failed.
    public var attempts: [UpstreamAttempt]
    public var stream: Bool
    public var outcome: RequestOutcome
    public var promptTokens: Int?
    public var completionTokens: Int?
    /// True when the upstream reported no usage and tokens were estimated from text length.
    public var tokensEstimated: Bool
    /// Price-table cost of the answer in USD.
    public var costUSD: Double?
    /// Wall time from request received to last byte sent.
    public var latencyMilliseconds: Double
    /// Quality score in [0, 1] attached later through `POST /v1/feedback`.
    public var feedbackScore: Double?
    public var feedbackAt: Date?

    public init(
        id: String, createdAt: Date, query: String, requestedModel: String, lambda: Double?, chosenModel: String?,
        predictedScore: Double?, predictedCost: Double?, attempts: [UpstreamAttempt], stream: Bool, outcome: RequestOutcome,
        promptTokens: Int?, completionTokens: Int?, tokensEstimated: Bool, costUSD: Double?, latencyMilliseconds: Double,
        feedbackScore: Double? = nil, feedbackAt: Date? = nil
    ) {
        self.id = id
        self.createdAt = createdAt
        self.query = query
        self.requestedModel = requestedModel
        self.lambda = lambda
        self.chosenModel = chosenModel
        self.predictedScore = predictedScore
        self.predictedCost = predictedCost
        self.attempts = attempts
        self.stream = stream
        self.outcome = outcome
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.tokensEstimated = tokensEstimated
        self.costUSD = costUSD
        self.latencyMilliseconds = latencyMilliseconds
        self.feedbackScore = feedbackScore
        self.feedbackAt = feedbackAt
    }

    enum CodingKeys: String, CodingKey {
        case id, createdAt, query, requestedModel, lambda, chosenModel, predictedScore, predictedCost, attempts, stream
        case outcome, promptTokens, completionTokens, tokensEstimated, latencyMilliseconds, feedbackScore, feedbackAt
        case costUSD = "costUsd"
    }
}

/// Why feedback could not be attached.
public enum FeedbackError: Error, CustomStringConvertible, Equatable {
    case unknownRequest(String)
    case notAnswered(String)
    case invalidScore(Double)

    public var description: String {
        switch self {
        case .unknownRequest(let id): "no routed request has id '\(id)'"
        case .notAnswered(let id): "request '\(id)' was not answered by any model, so there is nothing to rate"
        case .invalidScore(let s): "score \(s) is not a number in [0, 1]"
        }
    }
}

/// The gateway's request log: an SQLite database (WAL mode, so `fedroute data export-feedback` can
/// read while the gateway writes). Safe to share between concurrent requests.
public struct RequestLog: Sendable {
    let database: DatabasePool
    /// Where the database lives.
    public let path: String

    /// Opens the log at `path`. With `create` (the gateway) a missing database is created; without
    /// it (readers such as the exporter) a missing file is an error rather than a new empty log.
    public init(path: String, create: Bool = true) throws {
        self.path = path
        if !create, !FileManager.default.fileExists(atPath: path) {
            throw RequestLogError(path: path, message: "no request log here (the gateway writes one with --db)")
        }
        do {
            database = try DatabasePool(path: path)
            try Self.migrator.migrate(database)
        } catch {
            throw RequestLogError(path: path, message: "cannot open the request log: \(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: routed requests with feedback") { db in
            try db.create(table: RoutedRequest.databaseTableName) { t in
                t.primaryKey("id", .text)
                t.column("created_at", .datetime).notNull().indexed()
                t.column("query", .text).notNull()
                t.column("requested_model", .text).notNull()
                t.column("lambda", .double)
                t.column("chosen_model", .text)
                t.column("predicted_score", .double)
                t.column("predicted_cost", .double)
                t.column("attempts", .jsonText).notNull()
                t.column("stream", .boolean).notNull()
                t.column("outcome", .text).notNull()
                t.column("prompt_tokens", .integer)
                t.column("completion_tokens", .integer)
                t.column("tokens_estimated", .boolean).notNull()
                t.column("cost_usd", .double)
                t.column("latency_milliseconds", .double).notNull()
                t.column("feedback_score", .double)
                t.column("feedback_at", .datetime)
            }
        }
        return m
    }

    /// Stores a finished request.
    public func record(_ request: RoutedRequest) async throws {
        do {
            try await database.write { db in try request.insert(db) }
        } catch {
            throw RequestLogError(path: path, message: "cannot record request '\(request.id)': \(error)")
        }
    }

    /// Attaches (or replaces) the quality score of an answered request and returns the updated row.
    @discardableResult
    public func attachFeedback(requestID: String, score: Double, at date: Date = Date()) async throws -> RoutedRequest {
        guard score.isFinite, (0...1).contains(score) else { throw FeedbackError.invalidScore(score) }
        return try await database.write { db in
            guard var row = try RoutedRequest.fetchOne(db, key: requestID) else { throw FeedbackError.unknownRequest(requestID) }
            guard row.chosenModel != nil, row.outcome != .failed else { throw FeedbackError.notAnswered(requestID) }
            row.feedbackScore = score
            row.feedbackAt = date
            try row.update(db)
            return row
        }
    }

    /// One request by id.
    public func request(id: String) async throws -> RoutedRequest? {
        try await database.read { db in try RoutedRequest.fetchOne(db, key: id) }
    }

    /// Every request created at or after `since` (all when nil), oldest first.
    public func requests(since: Date? = nil) throws -> [RoutedRequest] {
        do {
            return try database.read { db in
                var q = RoutedRequest.order(Column("created_at"), Column("id"))
                if let since { q = q.filter(Column("created_at") >= since) }
                return try q.fetchAll(db)
            }
        } catch {
            throw RequestLogError(path: path, message: "cannot read the request log: \(error)")
        }
    }
}

/// A request-log database that cannot be opened, read or written.
public struct RequestLogError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}
