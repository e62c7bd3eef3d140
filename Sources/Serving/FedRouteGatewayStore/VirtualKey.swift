import Foundation
import GRDB

/// A virtual API key: what a caller presents as `Authorization: Bearer sk-fr-…`, and what it may do.
///
/// The key itself is shown once, when it is made; the store keeps only `hash` (see `KeySecret`) and a
/// short `hint` to recognise it by. Spend is the price-table cost of the requests it made that a model
/// answered.
public struct VirtualKey: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "api_key"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    /// What a key may do; every limit is optional (nil: unlimited).
    public struct Policy: Codable, Sendable, Equatable {
        /// Spend ceiling in USD; requests are refused (429) once spend reaches it.
        public var budgetUSD: Double?
        /// Requests per minute (token bucket, per gateway replica).
        public var rpm: Int?
        /// Tokens (prompt + completion) per minute (token bucket, per gateway replica).
        public var tpm: Int?
        /// The models it may be answered by (named or routed); nil: all.
        public var models: [String]?
        /// The λ range it may route with (`route:<λ>`); `auto` is clamped into it.
        public var lambdaMin: Double?
        public var lambdaMax: Double?
        /// λ for `model: auto` with this key, instead of the gateway's.
        public var defaultLambda: Double?
        /// May call the admin routes (`/admin/*`).
        public var admin: Bool

        public init(
            budgetUSD: Double? = nil, rpm: Int? = nil, tpm: Int? = nil, models: [String]? = nil, lambdaMin: Double? = nil, lambdaMax: Double? = nil,
            defaultLambda: Double? = nil, admin: Bool = false
        ) {
            self.budgetUSD = budgetUSD
            self.rpm = rpm
            self.tpm = tpm
            self.models = models
            self.lambdaMin = lambdaMin
            self.lambdaMax = lambdaMax
            self.defaultLambda = defaultLambda
            self.admin = admin
        }

        /// The first thing wrong with the policy, named as its `fedroute keys create` option.
        public func problem() -> String? {
            if let b = budgetUSD, !(b.isFinite && b >= 0) { return "--budget-usd must be a finite number ≥ 0, not \(b)" }
            if let r = rpm, r < 1 { return "--rpm must be at least 1, not \(r)" }
            if let t = tpm, t < 1 { return "--tpm must be at least 1, not \(t)" }
            if let m = models {
                if m.isEmpty { return "--models must name at least one model" }
                if let bad = m.first(where: { $0.isEmpty || $0.contains(where: { $0.isWhitespace || $0 == "," }) }) {
                    return "--models: '\(bad)' is not a model name"
                }
            }
            for (flag, v) in [("--lambda-min", lambdaMin), ("--lambda-max", lambdaMax), ("--lambda", defaultLambda)] {
                if let v, !(v.isFinite && v >= 0) { return "\(flag) must be a finite number ≥ 0, not \(v)" }
            }
            if let lo = lambdaMin, let hi = lambdaMax, lo > hi { return "--lambda-min \(lo) is above --lambda-max \(hi)" }
            if let d = defaultLambda, !allows(lambda: d) { return "--lambda \(d) is outside the key's λ range" }
            return nil
        }

        /// Whether `lambda` is inside the key's range.
        public func allows(lambda: Double) -> Bool {
            lambda >= (lambdaMin ?? 0) && lambda <= (lambdaMax ?? .infinity)
        }

        /// `lambda` moved into the key's range.
        public func clamp(lambda: Double) -> Double {
            min(max(lambda, lambdaMin ?? 0), lambdaMax ?? .infinity)
        }

        /// Whether the key may be answered by `model`.
        public func allows(model: String) -> Bool { models.map { $0.contains(model) } ?? true }
    }

    /// Whether a key can be used now.
    public enum Status: String, Sendable, Equatable {
        case active, revoked, expired
    }

    /// Stable id (`key-` and 12 hex digits): what logs, the request log and `keys revoke` name.
    public var id: String
    /// The owner's label (`team-a`); several keys may share one (rotation).
    public var name: String
    /// `KeySecret.hash` of the key (hex HMAC-SHA256); the key itself is never stored.
    public var hash: String
    /// The key's first and last characters (`sk-fr-AbCd…wXyZ`), to recognise it by.
    public var hint: String
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var spendUSD: Double
    public var policy: Policy

    public init(id: String, name: String, hash: String, hint: String, createdAt: Date, expiresAt: Date? = nil, policy: Policy = Policy()) {
        self.id = id
        self.name = name
        self.hash = hash
        self.hint = hint
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = nil
        self.spendUSD = 0
        self.policy = policy
    }

    public func status(at now: Date = Date()) -> Status {
        if revokedAt != nil { return .revoked }
        if let expiresAt, expiresAt <= now { return .expired }
        return .active
    }

    /// Budget left in USD (nil: no budget); never negative.
    public var remainingUSD: Double? { policy.budgetUSD.map { max(0, $0 - spendUSD) } }

    enum CodingKeys: String, CodingKey {
        case id, name, hash, hint, createdAt, expiresAt, revokedAt, policy
        case spendUSD = "spendUsd"
    }
}

/// Why a key operation failed.
public enum VirtualKeyError: Error, CustomStringConvertible, Equatable {
    case unknownKey(String)
    case ambiguousName(String, ids: [String])
    case invalidPolicy(String)
    case secretMismatch(store: String)

    public var description: String {
        switch self {
        case .unknownKey(let k): "no key has id or name '\(k)'"
        case .ambiguousName(let n, let ids): "several active keys are named '\(n)' (\(ids.joined(separator: ", "))); name one by id"
        case .invalidPolicy(let why): why
        case .secretMismatch(let store):
            "\(store): its keys were made with a different key secret (FEDROUTE_KEY_SECRET / --key-secret-file), so no key would verify"
        }
    }
}
