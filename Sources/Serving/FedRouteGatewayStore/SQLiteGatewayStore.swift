import Foundation
import GRDB

/// The embedded `GatewayStore`: one SQLite database (WAL mode, so `fedroute data export-feedback` and
/// `fedroute keys` can read and write while the gateway serves). Safe to share between concurrent
/// requests of one process; for several replicas use a database server.
public struct SQLiteGatewayStore: GatewayStore {
    let database: DatabasePool
    /// Where the request log's batches are written (nice 10).
    let background = BackgroundThread(name: "fedroute-log", niceness: 10)
    /// Where the database lives.
    public let path: String
    public var location: String { path }
    public var sharedBetweenReplicas: Bool { false }

    /// Opens the store at `path`. With `create` (the gateway, `keys create`) a missing database is
    /// created; without it (readers such as the exporter) a missing file is an error rather than a new
    /// empty store.
    public init(path: String, create: Bool = true) throws {
        self.path = path
        if !create, !FileManager.default.fileExists(atPath: path) {
            throw GatewayStoreError(location: path, message: "no gateway database here (the gateway writes one with --db)")
        }
        do {
            var configuration = Configuration()
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            database = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw GatewayStoreError(location: path, message: "cannot open the gateway database: \(error)")
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
        m.registerMigration("v2: virtual keys, the key secret's check, the key of each request") { db in
            try db.create(table: VirtualKey.databaseTableName) { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull().indexed()
                t.column("hash", .text).notNull().unique()
                t.column("hint", .text).notNull()
                t.column("created_at", .datetime).notNull()
                t.column("expires_at", .datetime)
                t.column("revoked_at", .datetime)
                t.column("spend_usd", .double).notNull().defaults(to: 0)
                t.column("policy", .jsonText).notNull()
            }
            try db.create(table: "gateway_meta") { t in
                t.primaryKey("name", .text)
                t.column("value", .text).notNull()
            }
            try db.create(table: "budget_reservation") { t in
                t.primaryKey("request_id", .text)
                t.column("key_id", .text).notNull().indexed()
                t.column("amount_usd", .double).notNull()
                t.column("expires_at", .datetime).notNull()
            }
            try db.alter(table: RoutedRequest.databaseTableName) { t in t.add(column: "key_id", .text).indexed() }
        }
        return m
    }

    func fail(_ message: String) -> GatewayStoreError { GatewayStoreError(location: path, message: message) }

    // MARK: Request log

    /// Writes on the caller's behalf at normal priority: a request that holds a budget reservation is
    /// recorded here before its response goes out.
    public func record(_ request: RoutedRequest, charging charge: Charge?) async throws {
        try await insert([(request, charge)], behindResponses: false)
    }

    /// The request log's batches, written behind the responses: on the store's low-priority
    /// `BackgroundThread`, so that a batch's SQLite work does not delay requests in flight.
    public func record(batch: [(request: RoutedRequest, charge: Charge?)]) async throws {
        try await insert(batch, behindResponses: true)
    }

    /// One transaction: the rows, their reservations dropped, their keys' spend added; on the background
    /// thread when `behindResponses`, else on GRDB's writer as the caller's own work.
    private func insert(_ batch: [(request: RoutedRequest, charge: Charge?)], behindResponses: Bool) async throws {
        if let problem = Self.invalidCharge(in: batch) { throw fail(problem) }
        @Sendable func inserts(_ db: Database) throws {
            for (request, charge) in batch {
                try request.insertPrepared(db)
                if charge?.releasesReservation == true { try Self.dropReservation(db, requestID: request.id) }
            }
            for (keyID, usd) in Self.spendByKey(batch) { try Self.addSpend(db, keyID: keyID, usd: usd) }
        }
        do {
            if behindResponses {
                try await background.run { [database] in try database.write(inserts) }
            } else {
                try await database.write(inserts)
            }
        } catch {
            throw fail("\(Self.describe(batch)): \(error)")
        }
    }

    @discardableResult
    public func attachFeedback(requestID: String, keyID: String? = nil, score: Double, at date: Date = Date()) async throws -> RoutedRequest {
        guard score.isFinite, (0...1).contains(score) else { throw FeedbackError.invalidScore(score) }
        return try await database.write { db in
            guard var row = try RoutedRequest.fetchOne(db, key: requestID) else { throw FeedbackError.unknownRequest(requestID) }
            if let keyID, row.keyID != keyID { throw FeedbackError.unknownRequest(requestID) }
            guard row.chosenModel != nil, row.outcome != .failed else { throw FeedbackError.notAnswered(requestID) }
            row.feedbackScore = score
            row.feedbackAt = date
            try row.update(db)
            return row
        }
    }

    public func request(id: String) async throws -> RoutedRequest? {
        try await database.read { db in try RoutedRequest.fetchOne(db, key: id) }
    }

    public func requests(since: Date? = nil) async throws -> [RoutedRequest] {
        do {
            return try await database.read { db in
                var q = RoutedRequest.order(Column("created_at"), Column("id"))
                if let since { q = q.filter(Column("created_at") >= since) }
                return try q.fetchAll(db)
            }
        } catch {
            throw fail("cannot read the request log: \(error)")
        }
    }

    // MARK: Keys

    public func bind(secretCheck: String) async throws {
        let stored: String? = try await database.write { db in
            if let value = try String.fetchOne(db, sql: "SELECT value FROM gateway_meta WHERE name = 'key_secret_check'") { return value }
            try db.execute(sql: "INSERT INTO gateway_meta (name, value) VALUES ('key_secret_check', ?)", arguments: [secretCheck])
            return nil
        }
        if let stored, stored != secretCheck { throw VirtualKeyError.secretMismatch(store: path) }
    }

    public func insert(key: VirtualKey) async throws {
        do { try await database.write { db in try key.insert(db) } } catch {
            throw fail("cannot store key '\(key.id)': \(error)")
        }
    }

    public func key(hash: String) async throws -> VirtualKey? {
        try await database.read { db in try VirtualKey.filter(Column("hash") == hash).fetchOne(db) }
    }

    public func keys() async throws -> [VirtualKey] {
        try await database.read { db in try VirtualKey.order(Column("created_at"), Column("id")).fetchAll(db) }
    }

    public func revoke(keyID: String, at date: Date = Date()) async throws -> VirtualKey {
        try await database.write { db in
            guard var key = try VirtualKey.fetchOne(db, key: keyID) else { throw VirtualKeyError.unknownKey(keyID) }
            if key.revokedAt == nil {
                key.revokedAt = date
                try key.update(db)
            }
            return try VirtualKey.fetchOne(db, key: keyID) ?? key
        }
    }

    public func reserve(keyID: String, requestID: String, usd: Double, budgetUSD: Double, expiresAt: Date, now: Date = Date()) async throws -> Bool {
        guard usd.isFinite, usd >= 0 else { throw fail("refusing to reserve \(usd) USD for key '\(keyID)'") }
        // One write transaction: SQLite runs them one at a time, so check and insert cannot interleave.
        return try await database.write { db in
            try db.execute(sql: "DELETE FROM budget_reservation WHERE key_id = ? AND expires_at <= ?", arguments: [keyID, now])
            guard let spend = try Double.fetchOne(db, sql: "SELECT spend_usd FROM api_key WHERE id = ?", arguments: [keyID]) else {
                throw VirtualKeyError.unknownKey(keyID)
            }
            let reserved = try Double.fetchOne(db, sql: "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservation WHERE key_id = ?", arguments: [keyID]) ?? 0
            guard spend + reserved < budgetUSD else { return false }
            try db.execute(
                sql: "INSERT INTO budget_reservation (request_id, key_id, amount_usd, expires_at) VALUES (?, ?, ?, ?)",
                arguments: [requestID, keyID, usd, expiresAt])
            return true
        }
    }

    public func settle(keyID: String, requestID: String, usd: Double) async throws {
        guard usd.isFinite, usd >= 0 else { throw fail("refusing to add spend \(usd) to key '\(keyID)'") }
        try await database.write { db in try Self.settle(db, keyID: keyID, requestID: requestID, usd: usd) }
    }

    static func settle(_ db: Database, keyID: String, requestID: String, usd: Double) throws {
        try dropReservation(db, requestID: requestID)
        try addSpend(db, keyID: keyID, usd: usd)
    }

    static func dropReservation(_ db: Database, requestID: String) throws {
        try db.execute(sql: "DELETE FROM budget_reservation WHERE request_id = ?", arguments: [requestID])
    }

    static func addSpend(_ db: Database, keyID: String, usd: Double) throws {
        if usd > 0 { try db.execute(sql: "UPDATE api_key SET spend_usd = spend_usd + ? WHERE id = ?", arguments: [usd, keyID]) }
    }
}

/// A gateway database that cannot be opened, read or written.
public struct GatewayStoreError: Error, CustomStringConvertible {
    public var location: String
    public var message: String
    public init(location: String, message: String) {
        self.location = location
        self.message = message
    }
    public var description: String { "\(location): \(message)" }
}
