import Foundation

/// The gateway's shared state: virtual keys and their spend, and the request log with its feedback.
///
/// One store may be shared by several gateway replicas (a database server); every method is safe to
/// call concurrently. `SQLiteGatewayStore` is the embedded implementation.
public protocol GatewayStore: Sendable {
    /// Where the store lives, for messages (a path or a URL without its password).
    var location: String { get }
    /// Whether several gateway processes may share this store (a database server), so that a request's
    /// row may be written by another replica.
    var sharedBetweenReplicas: Bool { get }

    // MARK: Request log

    /// Stores a finished request and, with `charge`, ends it for its key in the same transaction: drops
    /// its budget reservation (if any) and adds `charge.usd` to the key's spend. A duplicate id is an error.
    func record(_ request: RoutedRequest, charging charge: Charge?) async throws
    /// Stores several finished requests, each as `record(_:charging:)` would, in one transaction:
    /// all of them or (with an error) none.
    func record(batch: [(request: RoutedRequest, charge: Charge?)]) async throws
    /// Attaches (or replaces) the quality score of an answered request and returns the updated row.
    /// With `keyID`, only a request made by that key may be rated (another key's request is reported as
    /// unknown, so ids cannot be probed).
    func attachFeedback(requestID: String, keyID: String?, score: Double, at date: Date) async throws -> RoutedRequest
    /// One request by id.
    func request(id: String) async throws -> RoutedRequest?
    /// Every request created at or after `since` (all when nil), oldest first.
    func requests(since: Date?) async throws -> [RoutedRequest]

    // MARK: Keys

    /// Records the key secret's `check` on first use; throws `VirtualKeyError.secretMismatch` when the
    /// store already holds another one.
    func bind(secretCheck: String) async throws
    /// Stores a new key.
    func insert(key: VirtualKey) async throws
    /// The key whose hash is `hash`, whatever its status.
    func key(hash: String) async throws -> VirtualKey?
    /// Every key, oldest first.
    func keys() async throws -> [VirtualKey]
    /// Marks a key revoked (idempotent) and returns it.
    func revoke(keyID: String, at date: Date) async throws -> VirtualKey
    /// Admits a request against a key's budget: atomically, if the key's spend plus its unexpired
    /// reservations (every replica's) is below `budgetUSD`, records a reservation of `usd` for
    /// `requestID` until `expiresAt` and returns true; otherwise returns false. Expired reservations
    /// (of a replica that died mid-request) stop counting.
    func reserve(keyID: String, requestID: String, usd: Double, budgetUSD: Double, expiresAt: Date, now: Date) async throws -> Bool
    /// Ends a request: drops its reservation (if any) and adds `usd` to the key's spend, atomically.
    func settle(keyID: String, requestID: String, usd: Double) async throws
}

/// What a finished request costs its key.
public struct Charge: Sendable, Equatable {
    public var keyID: String
    public var usd: Double
    /// Whether the request may hold a budget reservation to drop (false spares the store a delete
    /// for requests of keys without a budget).
    public var releasesReservation: Bool
    public init(keyID: String, usd: Double, releasesReservation: Bool = true) {
        self.keyID = keyID
        self.usd = usd
        self.releasesReservation = releasesReservation
    }
}

extension GatewayStore {
    /// A batch's spend per key, keys in order of first appearance (one update per key per batch).
    public static func spendByKey(_ batch: [(request: RoutedRequest, charge: Charge?)]) -> [(keyID: String, usd: Double)] {
        var order: [String] = []
        var sums: [String: Double] = [:]
        for case let (_, charge?) in batch {
            if sums[charge.keyID] == nil { order.append(charge.keyID) }
            sums[charge.keyID, default: 0] += charge.usd
        }
        return order.map { ($0, sums[$0]!) }
    }

    /// Why a batch cannot be charged (a spend that is not a finite amount ≥ 0), naming the key and request; nil if it can.
    public static func invalidCharge(in batch: [(request: RoutedRequest, charge: Charge?)]) -> String? {
        for case let (request, charge?) in batch where !(charge.usd.isFinite && charge.usd >= 0) {
            return "refusing to add spend \(charge.usd) to key '\(charge.keyID)' (request '\(request.id)')"
        }
        return nil
    }

    /// "cannot record request 'frq-…'" (or "… N requests, the first 'frq-…'") for errors.
    public static func describe(_ batch: [(request: RoutedRequest, charge: Charge?)]) -> String {
        batch.count == 1 ? "cannot record request '\(batch[0].request.id)'" : "cannot record \(batch.count) requests, the first '\(batch.first?.request.id ?? "")'"
    }

    /// Stores a finished request that charges no key.
    public func record(_ request: RoutedRequest) async throws { try await record(request, charging: nil) }

    /// Every request, oldest first.
    public func requests() async throws -> [RoutedRequest] { try await requests(since: nil) }

    /// The key with this id, or else the one active key with this name.
    public func key(idOrName: String) async throws -> VirtualKey {
        let all = try await keys()
        if let k = all.first(where: { $0.id == idOrName }) { return k }
        let named = all.filter { $0.name == idOrName }
        let active = named.filter { $0.status() == .active }
        if active.count == 1 { return active[0] }
        if active.count > 1 { throw VirtualKeyError.ambiguousName(idOrName, ids: active.map(\.id)) }
        if let last = named.last { return last }
        throw VirtualKeyError.unknownKey(idOrName)
    }

    /// Makes a key: returns the record and the key, which is not stored and cannot be shown again.
    public func createKey(name: String, policy: VirtualKey.Policy, expiresAt: Date?, secret: KeySecret, now: Date = Date()) async throws
        -> (record: VirtualKey, apiKey: String)
    {
        guard !name.isEmpty, name.count <= 100, !name.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 0x20 } == true }) else {
            throw VirtualKeyError.invalidPolicy("--name must be 1…100 characters without control characters")
        }
        if let why = policy.problem() { throw VirtualKeyError.invalidPolicy(why) }
        if let expiresAt, expiresAt <= now { throw VirtualKeyError.invalidPolicy("--expires is in the past") }
        try await bind(secretCheck: secret.check)
        let apiKey = KeySecret.generateKey()
        let record = VirtualKey(
            id: KeySecret.generateID(), name: name, hash: secret.hash(apiKey), hint: KeySecret.hint(apiKey), createdAt: now,
            expiresAt: expiresAt, policy: policy)
        try await insert(key: record)
        // As stored (times at the store's precision).
        return (try await key(hash: record.hash) ?? record, apiKey)
    }
}
