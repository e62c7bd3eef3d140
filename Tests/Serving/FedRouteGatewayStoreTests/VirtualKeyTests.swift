@testable import FedRouteGatewayStore
import Foundation
import Testing

@Suite struct VirtualKeyTests {
    static let secret = try! KeySecret(String(repeating: "s3cr3t-", count: 6))

    static func store() throws -> (SQLiteGatewayStore, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-keys-\(UUID().uuidString).sqlite").path
        return (try SQLiteGatewayStore(path: path), path)
    }

    @Test func keysAreStoredOnlyAsHashesAndFoundByThem() async throws {
        let (store, path) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (record, key) = try await store.createKey(name: "team-a", policy: .init(budgetUSD: 5, rpm: 60, models: ["cheap"]), expiresAt: nil, secret: Self.secret)
        #expect(key.hasPrefix("sk-fr-") && key.count == 6 + 43)
        #expect(record.hash == Self.secret.hash(key) && record.hash.count == 64 && !record.hash.contains(key))
        #expect(try await store.key(hash: Self.secret.hash(key)) == record)
        #expect(try await store.key(hash: Self.secret.hash(key + "x")) == nil)
        // The key itself is nowhere in the database file.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.range(of: Data(key.utf8)) == nil)
        // Another secret hashes differently, and the store refuses it.
        let other = try KeySecret(String(repeating: "x", count: 40))
        #expect(other.hash(key) != record.hash)
        await #expect(throws: VirtualKeyError.secretMismatch(store: path)) {
            _ = try await store.createKey(name: "b", policy: .init(), expiresAt: nil, secret: other)
        }
    }

    @Test func statusRevocationExpiryAndLookupByName() async throws {
        let (store, path) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let now = Date()
        let (a, _) = try await store.createKey(name: "ops", policy: .init(admin: true), expiresAt: nil, secret: Self.secret, now: now)
        let (b, _) = try await store.createKey(name: "short", policy: .init(), expiresAt: now.addingTimeInterval(60), secret: Self.secret, now: now)
        #expect(a.status(at: now) == .active && b.status(at: now.addingTimeInterval(61)) == .expired)
        #expect(try await store.key(idOrName: "ops").id == a.id)
        let revoked = try await store.revoke(keyID: a.id, at: now)
        #expect(revoked.status() == .revoked)
        #expect(try await store.revoke(keyID: a.id, at: now.addingTimeInterval(5)).revokedAt == revoked.revokedAt)
        await #expect(throws: VirtualKeyError.unknownKey("nobody")) { try await store.key(idOrName: "nobody") }
        // Two active keys with one name: name them by id.
        _ = try await store.createKey(name: "dup", policy: .init(), expiresAt: nil, secret: Self.secret)
        _ = try await store.createKey(name: "dup", policy: .init(), expiresAt: nil, secret: Self.secret)
        await #expect(throws: VirtualKeyError.self) { try await store.key(idOrName: "dup") }
    }

    @Test func policiesAreCheckedWhenMade() async throws {
        let (store, path) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for bad in [
            VirtualKey.Policy(budgetUSD: -1), .init(budgetUSD: .nan), .init(rpm: 0), .init(tpm: -5), .init(models: []), .init(models: ["a b"]),
            .init(lambdaMin: 5, lambdaMax: 1), .init(lambdaMax: 2, defaultLambda: 3), .init(lambdaMin: .infinity),
        ] {
            await #expect(throws: VirtualKeyError.self) { _ = try await store.createKey(name: "x", policy: bad, expiresAt: nil, secret: Self.secret) }
        }
        await #expect(throws: VirtualKeyError.self) { _ = try await store.createKey(name: "bad\nname", policy: .init(), expiresAt: nil, secret: Self.secret) }
        await #expect(throws: VirtualKeyError.self) {
            _ = try await store.createKey(name: "late", policy: .init(), expiresAt: Date().addingTimeInterval(-1), secret: Self.secret)
        }
        #expect(throws: VirtualKeyError.self) { try KeySecret("short") }
        #expect(try await store.keys().isEmpty)
        let p = VirtualKey.Policy(lambdaMin: 1, lambdaMax: 10)
        #expect(p.clamp(lambda: 0) == 1 && p.clamp(lambda: 50) == 10 && p.allows(lambda: 10) && !p.allows(lambda: 10.5))
    }

    /// Reservations are what keep concurrent requests (of any replica) from spending past a budget:
    /// once spend plus the reservations of requests in flight reaches it, nothing more is admitted.
    @Test func budgetReservationsAdmitUntilTheBudgetIsCommitted() async throws {
        let (store, path) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (key, _) = try await store.createKey(name: "b", policy: .init(budgetUSD: 1), expiresAt: nil, secret: Self.secret)
        let later = Date().addingTimeInterval(600)
        // 20 concurrent requests each expected to cost 0.3 USD: exactly 4 fit under 1 USD (0, 0.3, 0.6, 0.9 < 1).
        let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<20 {
                group.addTask { try await store.reserve(keyID: key.id, requestID: "r\(i)", usd: 0.3, budgetUSD: 1, expiresAt: later, now: Date()) }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 4)
        // Settling replaces reservations by actual spend.
        for i in 0..<20 { try await store.settle(keyID: key.id, requestID: "r\(i)", usd: 0) }
        try await store.settle(keyID: key.id, requestID: "x", usd: 0.95)
        #expect(try await store.key(hash: key.hash)?.spendUSD == 0.95)
        #expect(try await store.reserve(keyID: key.id, requestID: "y", usd: 0.3, budgetUSD: 1, expiresAt: later, now: Date()))
        #expect(try await !store.reserve(keyID: key.id, requestID: "z", usd: 0.3, budgetUSD: 1, expiresAt: later, now: Date()))
        // A reservation left by a replica that died stops counting when it expires.
        #expect(try await store.reserve(keyID: key.id, requestID: "z", usd: 0.3, budgetUSD: 1, expiresAt: later, now: later.addingTimeInterval(1)))
        await #expect(throws: (any Error).self) { try await store.settle(keyID: key.id, requestID: "n", usd: .nan) }
    }

    @Test func onlyTheOwningKeyRatesARequest() async throws {
        let (store, path) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var row = SQLiteGatewayStoreTests.request("r1", query: "q", model: "m")
        row.keyID = "key-a"
        try await store.record(row)
        await #expect(throws: FeedbackError.unknownRequest("r1")) { try await store.attachFeedback(requestID: "r1", keyID: "key-b", score: 1, at: Date()) }
        #expect(try await store.attachFeedback(requestID: "r1", keyID: "key-a", score: 1, at: Date()).feedbackScore == 1)
        #expect(try await store.request(id: "r1")?.keyID == "key-a")
    }
}
