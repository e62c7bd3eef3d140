import FedRouteGatewayStore
@testable import FedRouteGateway
import Foundation
import Logging
import Synchronization
import Testing

/// A SQLite store whose batch writes wait at a gate while it is closed, and which remembers the size
/// of every batch written.
final class GatedStore: GatewayStore {
    let inner: SQLiteGatewayStore
    let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>], batches: [Int])>((true, [], []))

    init(path: String) throws { inner = try SQLiteGatewayStore(path: path) }

    func close() { state.withLock { $0.open = false } }
    func open() {
        let waiting = state.withLock { s in
            s.open = true
            defer { s.waiting = [] }
            return s.waiting
        }
        for w in waiting { w.resume() }
    }
    var batches: [Int] { state.withLock { $0.batches } }

    var location: String { inner.location }
    var sharedBetweenReplicas: Bool { false }
    func record(_ request: RoutedRequest, charging charge: Charge?) async throws { try await record(batch: [(request, charge)]) }
    func record(batch: [(request: RoutedRequest, charge: Charge?)]) async throws {
        await withCheckedContinuation { c in
            let go = state.withLock { s in
                if !s.open { s.waiting.append(c) }
                return s.open
            }
            if go { c.resume() }
        }
        state.withLock { $0.batches.append(batch.count) }
        try await inner.record(batch: batch)
    }
    func attachFeedback(requestID: String, keyID: String?, score: Double, at date: Date) async throws -> RoutedRequest {
        try await inner.attachFeedback(requestID: requestID, keyID: keyID, score: score, at: date)
    }
    func request(id: String) async throws -> RoutedRequest? { try await inner.request(id: id) }
    func requests(since: Date?) async throws -> [RoutedRequest] { try await inner.requests(since: since) }
    func bind(secretCheck: String) async throws { try await inner.bind(secretCheck: secretCheck) }
    func insert(key: VirtualKey) async throws { try await inner.insert(key: key) }
    func key(hash: String) async throws -> VirtualKey? { try await inner.key(hash: hash) }
    func keys() async throws -> [VirtualKey] { try await inner.keys() }
    func revoke(keyID: String, at date: Date) async throws -> VirtualKey { try await inner.revoke(keyID: keyID, at: date) }
    func reserve(keyID: String, requestID: String, usd: Double, budgetUSD: Double, expiresAt: Date, now: Date) async throws -> Bool {
        try await inner.reserve(keyID: keyID, requestID: requestID, usd: usd, budgetUSD: budgetUSD, expiresAt: expiresAt, now: now)
    }
    func settle(keyID: String, requestID: String, usd: Double) async throws { try await inner.settle(keyID: keyID, requestID: requestID, usd: usd) }
}

final class Counter: Sendable {
    let value = Mutex(0)
}

@Suite struct RequestLogWriterTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func row(_ i: Int, query: String = "q") -> RoutedRequest {
        RoutedRequest(
            id: String(format: "frq-%04d", i), createdAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)), query: query, requestedModel: "auto",
            lambda: 1, chosenModel: "m", predictedScore: 0.5, predictedCost: 0.001, attempts: [UpstreamAttempt(model: "m")], stream: false,
            outcome: .answered, promptTokens: 10, completionTokens: 20, tokensEstimated: false, costUSD: 0.001, latencyMilliseconds: 1)
    }

    static func withStore(_ body: (GatedStore) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-writer-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        try await body(try GatedStore(path: path))
    }

    @Test func everyRowReachesTheStoreInOrderInBoundedBatches() async throws {
        try await Self.withStore { store in
            let writer = RequestLogWriter(store: store, logger: Self.logger, maxBatch: 7)
            for i in 0..<100 { await writer.enqueue(Self.row(i), charging: nil) }
            await writer.flush()
            let ids = try await store.requests().map(\.id)
            #expect(ids == (0..<100).map { String(format: "frq-%04d", $0) })
            #expect(store.batches.reduce(0, +) == 100 && store.batches.allSatisfy { (1...7).contains($0) }, "\(store.batches)")
            // Nothing pending: flush returns at once.
            await writer.flush()
            #expect(writer.backlog == 0)
        }
    }

    @Test func rowsWaitOutTheLingerAndGoAsOneBatch() async throws {
        try await Self.withStore { store in
            let writer = RequestLogWriter(store: store, logger: Self.logger, linger: .seconds(3600))
            for i in 0..<5 { await writer.enqueue(Self.row(i), charging: nil) }
            try await Task.sleep(for: .milliseconds(50))
            #expect(store.batches.isEmpty, "rows were written before the linger ended: \(store.batches)")
            #expect(writer.backlog == 5)
            // flush ends the linger at once.
            await writer.flush()
            #expect(store.batches == [5])
            #expect(try await store.requests().count == 5)
        }
    }

    @Test func aFullBatchOrTheLingersEndStartsTheWrite() async throws {
        try await Self.withStore { store in
            let full = RequestLogWriter(store: store, logger: Self.logger, maxBatch: 3, linger: .seconds(3600))
            for i in 0..<3 { await full.enqueue(Self.row(i), charging: nil) }
            // No flush: a full batch goes without waiting for the hour.
            let start = ContinuousClock.now
            while store.batches.isEmpty, ContinuousClock.now - start < .seconds(60) { try await Task.sleep(for: .milliseconds(5)) }
            #expect(store.batches == [3])
            let short = RequestLogWriter(store: store, logger: Self.logger, linger: .milliseconds(20))
            for i in 3..<5 { await short.enqueue(Self.row(i), charging: nil) }
            while store.batches.count < 2, ContinuousClock.now - start < .seconds(60) { try await Task.sleep(for: .milliseconds(5)) }
            #expect(store.batches == [3, 2])
            // (A batch counts at the gate, before its insert: wait for the inserts.)
            await full.flush()
            await short.flush()
            #expect(try await store.requests().count == 5)
        }
    }

    @Test func aRowThatCannotBeWrittenCostsOnlyItself() async throws {
        try await Self.withStore { store in
            try await store.record(Self.row(1, query: "first"))
            let metrics = GatewayMetrics()
            let writer = RequestLogWriter(store: store, logger: Self.logger, metrics: metrics)
            // Held at the gate so that the three rows go as one batch, which fails on the duplicate id.
            store.close()
            await writer.enqueue(Self.row(0), charging: nil)
            for i in [1, 2] { await writer.enqueue(Self.row(i, query: "second"), charging: nil) }
            store.open()
            await writer.flush()
            let rows = try await store.requests()
            #expect(rows.map(\.id) == ["frq-0000", "frq-0001", "frq-0002"])
            #expect(rows[1].query == "first", "a duplicate id must not overwrite the stored row")
            // The lost row is counted, and nothing is left pending.
            let exposition = metrics.exposition()
            #expect(exposition.contains("fedroute_gateway_request_log_lost_total 1"), "\(exposition)")
            #expect(exposition.contains("fedroute_gateway_request_log_pending 0"), "\(exposition)")
        }
    }

    @Test func theKeyIsChargedWithTheRow() async throws {
        try await Self.withStore { store in
            let secret = try KeySecret(String(repeating: "writer-secret-", count: 3))
            let (record, _) = try await store.createKey(name: "k", policy: .init(), expiresAt: nil, secret: secret)
            let writer = RequestLogWriter(store: store, logger: Self.logger)
            await writer.enqueue(Self.row(0), charging: Charge(keyID: record.id, usd: 0.25))
            await writer.enqueue(Self.row(1), charging: Charge(keyID: record.id, usd: 0.5))
            await writer.flush()
            let spend = try await store.key(hash: record.hash)?.spendUSD
            #expect(spend == 0.75)
        }
    }

    @Test func aStalledStoreSlowsCallersDownInsteadOfGrowingTheQueue() async throws {
        try await Self.withStore { store in
            store.close()
            let writer = RequestLogWriter(store: store, logger: Self.logger, maxBatch: 1, capacity: 2)
            let accepted = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for i in 0..<10 {
                        await writer.enqueue(Self.row(i), charging: nil)
                        accepted.value.withLock { $0 += 1 }
                    }
                }
                // Wait until the queue is full, then a while longer: one row taken by the (stalled)
                // writer plus `capacity` waiting, and the caller waits for room. (The deadline is
                // generous: tests share the cooperative pool with CPU-bound suites, which can keep
                // the producer from running for tens of seconds on 2 cores.)
                let start = ContinuousClock.now
                while accepted.value.withLock({ $0 }) < 2, ContinuousClock.now - start < .seconds(180) { try await Task.sleep(for: .milliseconds(10)) }
                try await Task.sleep(for: .milliseconds(200))
                let before = accepted.value.withLock { $0 }
                #expect((2...3).contains(before), "\(before) rows accepted while the store was stalled")
                #expect(writer.backlog <= 2)
                store.open()
                try await group.waitForAll()
            }
            await writer.flush()
            let count = try await store.requests().count
            #expect(count == 10)
        }
    }
}
