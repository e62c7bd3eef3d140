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

    /// `attempts` as the request log stores them: a JSON array with sorted keys (GRDB's JSON column format).
    public static func json(_ attempts: [UpstreamAttempt]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(attempts), as: UTF8.self)
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
    /// The virtual key that made the request (its id, not the secret); nil when the gateway runs
    /// without authentication. Only this key may rate the request.
    public var keyID: String?

    public init(
        id: String, createdAt: Date, query: String, requestedModel: String, lambda: Double?, chosenModel: String?,
        predictedScore: Double?, predictedCost: Double?, attempts: [UpstreamAttempt], stream: Bool, outcome: RequestOutcome,
        promptTokens: Int?, completionTokens: Int?, tokensEstimated: Bool, costUSD: Double?, latencyMilliseconds: Double,
        feedbackScore: Double? = nil, feedbackAt: Date? = nil, keyID: String? = nil
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
        self.keyID = keyID
    }

    enum CodingKeys: String, CodingKey {
        case id, createdAt, query, requestedModel, lambda, chosenModel, predictedScore, predictedCost, attempts, stream
        case outcome, promptTokens, completionTokens, tokensEstimated, latencyMilliseconds, feedbackScore, feedbackAt
        case costUSD = "costUsd"
        case keyID = "keyId"
    }

    /// The table's columns, in the order of `databaseValues()`.
    static let columns = [
        "id", "created_at", "query", "requested_model", "lambda", "chosen_model", "predicted_score", "predicted_cost", "attempts", "stream",
        "outcome", "prompt_tokens", "completion_tokens", "tokens_estimated", "cost_usd", "latency_milliseconds", "feedback_score",
        "feedback_at", "key_id",
    ]

    /// The row's values, column by column (`columns`): the values GRDB's `Encodable` path writes (dates as
    /// its UTC text, `attempts` as JSON text with sorted keys), without that path's per-column key
    /// conversion, dynamic casts and trial encoding of `attempts` as a single value. Every request the
    /// gateway answers writes one row, on the cores that serve requests.
    func databaseValues() throws -> [(any DatabaseValueConvertible)?] {
        [
            id, createdAt, query, requestedModel, lambda, chosenModel, predictedScore, predictedCost, try UpstreamAttempt.json(attempts), stream,
            outcome, promptTokens, completionTokens, tokensEstimated, costUSD, latencyMilliseconds, feedbackScore, feedbackAt, keyID,
        ]
    }

    /// GRDB's record encoding (`insert`, `update`), from `databaseValues()`.
    public func encode(to container: inout PersistenceContainer) throws {
        for (column, value) in zip(Self.columns, try databaseValues()) { container[column] = value }
    }

    /// `INSERT INTO routed_request (every column) VALUES (?, …)`.
    static let insertSQL = "INSERT INTO \(databaseTableName) (\(columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"

    /// Inserts the row with a prepared statement the connection caches (the request log's path, without
    /// building a record container per row); a duplicate id fails as with `insert`.
    func insertPrepared(_ db: Database) throws {
        try db.cachedStatement(sql: Self.insertSQL).execute(arguments: StatementArguments(try databaseValues()))
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
