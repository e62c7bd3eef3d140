import FedRouteGatewayStore
import Foundation
import Logging
import PostgresNIO

/// The `GatewayStore` on PostgreSQL, for several gateway replicas sharing keys, spend, budgets and the
/// request log. The schema and its migrations are the SQLite store's (`SQLiteGatewayStore`), in
/// PostgreSQL types; migrations run under an advisory lock, so replicas starting together do not race.
///
/// Budgets across replicas: `reserve` locks the key's row (`SELECT … FOR UPDATE`) in a transaction,
/// sums the unexpired reservations of every replica and inserts its own, so two replicas cannot both
/// admit a request against the same remaining budget; the budget is overspent by at most the last
/// admitted request's cost beyond its prediction.
///
/// The connection pool must be running (`run()`, or `withStore`) while the store is used.
public struct PostgresGatewayStore: GatewayStore {
    let client: PostgresClient
    let logger: Logger
    /// The URL without its password.
    public let location: String
    public var sharedBetweenReplicas: Bool { true }

    /// - Parameter url: `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`.
    public init(url: String, logger: Logger) throws {
        guard let c = URLComponents(string: url), let scheme = c.scheme, ["postgres", "postgresql"].contains(scheme.lowercased()) else {
            throw GatewayStoreError(location: "database URL", message: "'\(Self.redacted(url))' is not a postgres:// URL")
        }
        guard let host = c.host, !host.isEmpty else { throw GatewayStoreError(location: Self.redacted(url), message: "the URL names no host") }
        guard let user = c.user, !user.isEmpty else { throw GatewayStoreError(location: Self.redacted(url), message: "the URL names no user") }
        let database = String(c.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw GatewayStoreError(location: Self.redacted(url), message: "the URL names no database (postgres://user@host/DATABASE)") }
        let port = c.port ?? 5432
        let mode = c.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw GatewayStoreError(location: Self.redacted(url), message: "sslmode '\(mode)' is not one of disable, prefer, require, verify-full")
        }
        var config = PostgresClient.Configuration(
            host: host, port: port, username: user.removingPercentEncoding ?? user, password: c.password?.removingPercentEncoding ?? c.password,
            database: database.removingPercentEncoding ?? database, tls: tls)
        config.options.connectTimeout = .seconds(5)
        client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.logger = logger
        location = "postgres://\(user)@\(host):\(port)/\(database)"
    }

    /// `url` with any password replaced by `***`.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? "postgres://***"
    }

    /// Runs the connection pool until the calling task is cancelled.
    public func run() async { await client.run() }

    /// Runs the pool, applies the migrations and calls `body` with the store; stops the pool after.
    public static func withStore<T: Sendable>(url: String, logger: Logger, _ body: (PostgresGatewayStore) async throws -> T) async throws -> T {
        let store = try PostgresGatewayStore(url: url, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            return try await body(store)
        }
    }

    /// Runs `body` in a transaction; an error thrown by `body` (rolled back) is rethrown as itself.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do { return try await client.withTransaction(logger: logger) { c in try await body(c) } } catch let e as PostgresTransactionError {
            if let inner = e.closureError, e.rollbackError == nil { throw inner }
            throw e
        }
    }

    func fail(_ message: String, _ error: any Error) -> GatewayStoreError {
        GatewayStoreError(location: location, message: "\(message): \(String(reflecting: error))")
    }

    /// Creates an empty database on the same server (for tests and first-time setup).
    public func createDatabase(named name: String) async throws {
        guard !name.isEmpty, name.count <= 63, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw GatewayStoreError(location: location, message: "'\(name)' is not a plain database name (letters, digits, _)")
        }
        do { try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger) } catch {
            throw fail("cannot create database '\(name)'", error)
        }
    }

    // MARK: Schema

    /// The migrations, by the names the SQLite store uses; each runs once, in order.
    static let migrations: [(name: String, statements: [String])] = [
        ("v1: routed requests with feedback", [
            """
            CREATE TABLE routed_request (
                id TEXT PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL, query TEXT NOT NULL, requested_model TEXT NOT NULL,
                lambda DOUBLE PRECISION, chosen_model TEXT, predicted_score DOUBLE PRECISION, predicted_cost DOUBLE PRECISION,
                attempts TEXT NOT NULL, stream BOOLEAN NOT NULL, outcome TEXT NOT NULL, prompt_tokens BIGINT, completion_tokens BIGINT,
                tokens_estimated BOOLEAN NOT NULL, cost_usd DOUBLE PRECISION, latency_milliseconds DOUBLE PRECISION NOT NULL,
                feedback_score DOUBLE PRECISION, feedback_at TIMESTAMPTZ)
            """,
            "CREATE INDEX routed_request_on_created_at ON routed_request (created_at)",
        ]),
        ("v2: virtual keys, the key secret's check, the key of each request", [
            """
            CREATE TABLE api_key (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
                expires_at TIMESTAMPTZ, revoked_at TIMESTAMPTZ, spend_usd DOUBLE PRECISION NOT NULL DEFAULT 0, policy TEXT NOT NULL)
            """,
            "CREATE INDEX api_key_on_name ON api_key (name)",
            "CREATE TABLE gateway_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """
            CREATE TABLE budget_reservation (
                request_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, amount_usd DOUBLE PRECISION NOT NULL, expires_at TIMESTAMPTZ NOT NULL)
            """,
            "CREATE INDEX budget_reservation_on_key_id ON budget_reservation (key_id)",
            "ALTER TABLE routed_request ADD COLUMN key_id TEXT",
            "CREATE INDEX routed_request_on_key_id ON routed_request (key_id)",
        ]),
    ]

    /// Applies the migrations not applied yet.
    public func migrate() async throws {
        do {
            try await transaction { c in
                // One replica migrates at a time (the lock ends with the transaction).
                try await c.query("SELECT pg_advisory_xact_lock(7316120911)", logger: logger)
                try await c.query("CREATE TABLE IF NOT EXISTS fedroute_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)", logger: logger)
                var applied = Set<String>()
                for try await name in try await c.query("SELECT name FROM fedroute_migration", logger: logger).decode(String.self) { applied.insert(name) }
                for m in Self.migrations where !applied.contains(m.name) {
                    for statement in m.statements { try await c.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                    try await c.query("INSERT INTO fedroute_migration (name, applied_at) VALUES (\(m.name), \(Date()))", logger: logger)
                }
            }
        } catch {
            throw fail("cannot migrate the gateway database", error)
        }
    }

    // MARK: Request log

    static let requestColumns = """
        id, created_at, query, requested_model, lambda, chosen_model, predicted_score, predicted_cost, attempts, stream, outcome, \
        prompt_tokens, completion_tokens, tokens_estimated, cost_usd, latency_milliseconds, feedback_score, feedback_at, key_id
        """

    static func json<T: Encodable>(_ value: T) throws -> String { String(decoding: try JSONEncoder().encode(value), as: UTF8.self) }

    static func request(_ row: PostgresRow) throws -> RoutedRequest {
        let r = row.makeRandomAccess()
        let attempts = try JSONDecoder().decode([UpstreamAttempt].self, from: Data(try r["attempts"].decode(String.self).utf8))
        let outcomeText = try r["outcome"].decode(String.self)
        guard let outcome = RequestOutcome(rawValue: outcomeText) else { throw GatewayStoreError(location: "routed_request", message: "unknown outcome '\(outcomeText)'") }
        return RoutedRequest(
            id: try r["id"].decode(String.self), createdAt: try r["created_at"].decode(Date.self), query: try r["query"].decode(String.self),
            requestedModel: try r["requested_model"].decode(String.self), lambda: try r["lambda"].decode(Double?.self),
            chosenModel: try r["chosen_model"].decode(String?.self), predictedScore: try r["predicted_score"].decode(Double?.self),
            predictedCost: try r["predicted_cost"].decode(Double?.self), attempts: attempts, stream: try r["stream"].decode(Bool.self), outcome: outcome,
            promptTokens: try r["prompt_tokens"].decode(Int?.self), completionTokens: try r["completion_tokens"].decode(Int?.self),
            tokensEstimated: try r["tokens_estimated"].decode(Bool.self), costUSD: try r["cost_usd"].decode(Double?.self),
            latencyMilliseconds: try r["latency_milliseconds"].decode(Double.self), feedbackScore: try r["feedback_score"].decode(Double?.self),
            feedbackAt: try r["feedback_at"].decode(Date?.self), keyID: try r["key_id"].decode(String?.self))
    }

    public func record(_ q: RoutedRequest, charging charge: Charge?) async throws {
        try await record(batch: [(q, charge)])
    }

    public func record(batch: [(request: RoutedRequest, charge: Charge?)]) async throws {
        if let problem = Self.invalidCharge(in: batch) { throw GatewayStoreError(location: location, message: problem) }
        do {
            let rows = try batch.map { ($0.request, try UpstreamAttempt.json($0.request.attempts), $0.charge) }
            try await transaction { c in
                for (q, attempts, charge) in rows {
                    try await c.query("""
                        INSERT INTO routed_request (\(unescaped: Self.requestColumns)) VALUES (
                        \(q.id), \(q.createdAt), \(q.query), \(q.requestedModel), \(q.lambda), \(q.chosenModel), \(q.predictedScore), \(q.predictedCost),
                        \(attempts), \(q.stream), \(q.outcome.rawValue), \(q.promptTokens), \(q.completionTokens), \(q.tokensEstimated), \(q.costUSD),
                        \(q.latencyMilliseconds), \(q.feedbackScore), \(q.feedbackAt), \(q.keyID))
                        """, logger: logger)
                    if charge?.releasesReservation == true { try await Self.dropReservation(c, requestID: q.id, logger: logger) }
                }
                for (keyID, usd) in Self.spendByKey(batch) { try await Self.addSpend(c, keyID: keyID, usd: usd, logger: logger) }
            }
        } catch {
            throw fail(Self.describe(batch), error)
        }
    }

    public func attachFeedback(requestID: String, keyID: String?, score: Double, at date: Date) async throws -> RoutedRequest {
        guard score.isFinite, (0...1).contains(score) else { throw FeedbackError.invalidScore(score) }
        return try await transaction { c in
            let rows = try await c.query("SELECT \(unescaped: Self.requestColumns) FROM routed_request WHERE id = \(requestID) FOR UPDATE", logger: logger)
            var found: RoutedRequest?
            for try await row in rows { found = try Self.request(row) }
            guard var row = found else { throw FeedbackError.unknownRequest(requestID) }
            if let keyID, row.keyID != keyID { throw FeedbackError.unknownRequest(requestID) }
            guard row.chosenModel != nil, row.outcome != .failed else { throw FeedbackError.notAnswered(requestID) }
            try await c.query("UPDATE routed_request SET feedback_score = \(score), feedback_at = \(date) WHERE id = \(requestID)", logger: logger)
            row.feedbackScore = score
            row.feedbackAt = date
            return row
        }
    }

    public func request(id: String) async throws -> RoutedRequest? {
        var found: RoutedRequest?
        for try await row in try await client.query("SELECT \(unescaped: Self.requestColumns) FROM routed_request WHERE id = \(id)", logger: logger) {
            found = try Self.request(row)
        }
        return found
    }

    public func requests(since: Date?) async throws -> [RoutedRequest] {
        do {
            let rows = try await client.query("""
                SELECT \(unescaped: Self.requestColumns) FROM routed_request WHERE \(since == nil) OR created_at >= \(since ?? Date.distantPast)
                ORDER BY created_at, id
                """, logger: logger)
            var out: [RoutedRequest] = []
            for try await row in rows { out.append(try Self.request(row)) }
            return out
        } catch {
            throw fail("cannot read the request log", error)
        }
    }

    // MARK: Keys

    static let keyColumns = "id, name, hash, hint, created_at, expires_at, revoked_at, spend_usd, policy"

    static func key(_ row: PostgresRow) throws -> VirtualKey {
        let r = row.makeRandomAccess()
        let policy = try JSONDecoder().decode(VirtualKey.Policy.self, from: Data(try r["policy"].decode(String.self).utf8))
        var k = VirtualKey(
            id: try r["id"].decode(String.self), name: try r["name"].decode(String.self), hash: try r["hash"].decode(String.self),
            hint: try r["hint"].decode(String.self), createdAt: try r["created_at"].decode(Date.self), expiresAt: try r["expires_at"].decode(Date?.self),
            policy: policy)
        k.revokedAt = try r["revoked_at"].decode(Date?.self)
        k.spendUSD = try r["spend_usd"].decode(Double.self)
        return k
    }

    func keys(_ query: PostgresQuery) async throws -> [VirtualKey] {
        var out: [VirtualKey] = []
        for try await row in try await client.query(query, logger: logger) { out.append(try Self.key(row)) }
        return out
    }

    public func bind(secretCheck: String) async throws {
        try await client.query(
            "INSERT INTO gateway_meta (name, value) VALUES ('key_secret_check', \(secretCheck)) ON CONFLICT (name) DO NOTHING", logger: logger)
        var stored: String?
        for try await v in try await client.query("SELECT value FROM gateway_meta WHERE name = 'key_secret_check'", logger: logger).decode(String.self) {
            stored = v
        }
        if let stored, stored != secretCheck { throw VirtualKeyError.secretMismatch(store: location) }
    }

    public func insert(key k: VirtualKey) async throws {
        do {
            try await client.query("""
                INSERT INTO api_key (\(unescaped: Self.keyColumns)) VALUES (\(k.id), \(k.name), \(k.hash), \(k.hint), \(k.createdAt), \(k.expiresAt),
                \(k.revokedAt), \(k.spendUSD), \(try Self.json(k.policy)))
                """, logger: logger)
        } catch {
            throw fail("cannot store key '\(k.id)'", error)
        }
    }

    public func key(hash: String) async throws -> VirtualKey? {
        try await keys("SELECT \(unescaped: Self.keyColumns) FROM api_key WHERE hash = \(hash)").first
    }

    public func keys() async throws -> [VirtualKey] {
        try await keys("SELECT \(unescaped: Self.keyColumns) FROM api_key ORDER BY created_at, id")
    }

    public func revoke(keyID: String, at date: Date) async throws -> VirtualKey {
        try await client.query("UPDATE api_key SET revoked_at = \(date) WHERE id = \(keyID) AND revoked_at IS NULL", logger: logger)
        guard let k = try await keys("SELECT \(unescaped: Self.keyColumns) FROM api_key WHERE id = \(keyID)").first else {
            throw VirtualKeyError.unknownKey(keyID)
        }
        return k
    }

    public func reserve(keyID: String, requestID: String, usd: Double, budgetUSD: Double, expiresAt: Date, now: Date) async throws -> Bool {
        guard usd.isFinite, usd >= 0 else { throw GatewayStoreError(location: location, message: "refusing to reserve \(usd) USD for key '\(keyID)'") }
        return try await transaction { c in
            // The key's row lock orders every replica's admissions for this key.
            var spend: Double?
            for try await s in try await c.query("SELECT spend_usd FROM api_key WHERE id = \(keyID) FOR UPDATE", logger: logger).decode(Double.self) {
                spend = s
            }
            guard let spend else { throw VirtualKeyError.unknownKey(keyID) }
            try await c.query("DELETE FROM budget_reservation WHERE key_id = \(keyID) AND expires_at <= \(now)", logger: logger)
            var reserved = 0.0
            for try await r in try await c.query(
                "SELECT COALESCE(SUM(amount_usd), 0)::DOUBLE PRECISION FROM budget_reservation WHERE key_id = \(keyID)", logger: logger
            ).decode(Double.self) { reserved = r }
            guard spend + reserved < budgetUSD else { return false }
            try await c.query("""
                INSERT INTO budget_reservation (request_id, key_id, amount_usd, expires_at) VALUES (\(requestID), \(keyID), \(usd), \(expiresAt))
                """, logger: logger)
            return true
        }
    }

    public func settle(keyID: String, requestID: String, usd: Double) async throws {
        guard usd.isFinite, usd >= 0 else { throw GatewayStoreError(location: location, message: "refusing to add spend \(usd) to key '\(keyID)'") }
        try await transaction { c in try await Self.settle(c, keyID: keyID, requestID: requestID, usd: usd, logger: logger) }
    }

    static func settle(_ c: PostgresConnection, keyID: String, requestID: String, usd: Double, logger: Logger) async throws {
        try await dropReservation(c, requestID: requestID, logger: logger)
        try await addSpend(c, keyID: keyID, usd: usd, logger: logger)
    }

    static func dropReservation(_ c: PostgresConnection, requestID: String, logger: Logger) async throws {
        try await c.query("DELETE FROM budget_reservation WHERE request_id = \(requestID)", logger: logger)
    }

    static func addSpend(_ c: PostgresConnection, keyID: String, usd: Double, logger: Logger) async throws {
        if usd > 0 { try await c.query("UPDATE api_key SET spend_usd = spend_usd + \(usd) WHERE id = \(keyID)", logger: logger) }
    }
}
