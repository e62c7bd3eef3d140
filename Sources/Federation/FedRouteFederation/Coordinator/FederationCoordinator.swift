import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// The server side of every federated algorithm, written only against `FederatedClient`.
///
/// Clients are asked one at a time by default (`maxConcurrentRequests`), which keeps in-process
/// simulations bit-reproducible; a network deployment raises it. Replies are always combined in
/// client order, so results do not depend on arrival order.
public struct FederationCoordinator: Sendable {
    public let clients: [any FederatedClient]
    public var maxConcurrentRequests: Int

    public init(clients: [any FederatedClient], maxConcurrentRequests: Int = 1) throws {
        guard !clients.isEmpty else { throw FederationError.notEnoughClients("a federation needs at least one client") }
        let ids = clients.map(\.id)
        guard Set(ids).count == ids.count else { throw FederationError.invalidConfiguration("client ids must be unique: \(ids)") }
        self.clients = clients
        self.maxConcurrentRequests = max(1, maxConcurrentRequests)
    }

    // MARK: Messaging

    /// Sends `request(i)` to each client index in `indices`; results in the order of `indices`.
    func ask(_ indices: [Int], _ request: @Sendable (Int) -> FederatedRequest) async -> [(index: Int, result: Result<FederatedReply, any Error>)] {
        var out: [(index: Int, result: Result<FederatedReply, any Error>)] = []
        out.reserveCapacity(indices.count)
        await ask(indices, request) { out.append(($0, $1)) }
        return out
    }

    /// Sends `request(i)` to each client index in `indices` (at most `maxConcurrentRequests` at a time)
    /// and hands every result to `fold` in the order of `indices`, as soon as it and all earlier ones
    /// are in. Only replies that arrive ahead of an earlier one wait in memory, so a caller that folds
    /// (sums) replies holds one at a time when clients are asked one at a time, however many there are.
    func ask(_ indices: [Int], _ request: @Sendable (Int) -> FederatedRequest,
             fold: (Int, Result<FederatedReply, any Error>) -> Void) async {
        // Work goes by position in `indices`, so a repeated index is asked (and folded) twice.
        await InOrder.forEach(indices.count, parallel: maxConcurrentRequests, { position in
            let client = clients[indices[position]], message = request(indices[position])
            return { await Self.call(client, message) }
        }, merge: { position, result in fold(indices[position], result) })
    }

    static func call(_ client: any FederatedClient, _ request: FederatedRequest) async -> Result<FederatedReply, any Error> {
        do { return .success(try await client.handle(request)) } catch { return .failure(error) }
    }

    /// Asks every client and requires every one to answer with the expected reply case.
    func askAll<T>(_ request: FederatedRequest, _ extract: (FederatedReply) -> T?) async throws -> [T] {
        try await ask(Array(clients.indices), { _ in request }).map { index, result in
            let id = clients[index].id
            let reply: FederatedReply
            do { reply = try result.get() } catch { throw FederationError.invalidReply(client: id, "\(error)") }
            guard let value = extract(reply) else { throw FederationError.invalidReply(client: id, "unexpected reply \(reply.kind)") }
            return value
        }
    }

    // MARK: Setup

    /// The clients' descriptions; all must hold the same models.
    public func describe() async throws -> [ClientDescription] {
        let d = try await askAll(.describe) { if case .description(let v) = $0 { return v }; return nil }
        for (i, x) in d.enumerated() {
            guard x.models == d[0].models else {
                throw FederationError.invalidReply(client: clients[i].id, "models \(x.models) differ from \(clients[0].id)'s \(d[0].models)")
            }
            let (cells, overflow) = x.trainQueries.multipliedReportingOverflow(by: x.models.count)
            guard x.trainQueries >= x.trainableQueries, x.trainableQueries >= 0, x.observedCells >= x.trainableQueries,
                  !overflow, x.observedCells <= cells, x.trainQueries <= ClientDescription.maxTrainQueries else {
                throw FederationError.invalidReply(client: clients[i].id, "inconsistent counts: \(x.trainQueries) queries (at most \(ClientDescription.maxTrainQueries)), \(x.trainableQueries) trainable, \(x.observedCells) observed cells of \(x.models.count) models")
            }
        }
        return d
    }

    /// A hashed TF-IDF encoder whose IDF is fitted on the union of all clients' training texts,
    /// from summed document counts only.
    public func fitHashedEncoder(_ configuration: HashedTFIDFEncoder.Configuration) async throws -> HashedTFIDFEncoder {
        let parts = try await askAll(.documentFrequencies(configuration)) { if case .documentFrequencies(let v) = $0 { return v }; return nil }
        var total = DocumentFrequencies(documents: 0, counts: Array(repeating: 0, count: configuration.dimension))
        for (i, p) in parts.enumerated() {
            // Bounded per client, so the sum over any realistic number of clients cannot overflow.
            guard p.counts.count == configuration.dimension, p.documents >= 0, p.documents <= ClientDescription.maxTrainQueries,
                  p.counts.allSatisfy({ $0 >= 0 && $0 <= p.documents }) else {
                throw FederationError.invalidReply(client: clients[i].id, "document counts of dimension \(p.counts.count) for \(p.documents) documents")
            }
            total = total + p
        }
        return try HashedTFIDFEncoder(configuration: configuration, documentFrequencies: total)
    }

    /// The setup every federation runs before training, whatever carries the messages: the hashed
    /// encoder with the federated IDF, sent to every client; their descriptions; the shared cost normaliser.
    public func setup(_ configuration: HashedTFIDFEncoder.Configuration) async throws -> FederationJobState.Setup {
        let encoder = try await fitHashedEncoder(configuration)
        let spec = EncoderSpec.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf)
        _ = try await useEncoder(spec)
        let descriptions = try await describe()
        let normalizer = try await costNormalizer(models: descriptions[0].models.count)
        return FederationJobState.Setup(encoder: spec, descriptions: descriptions, normalizer: normalizer)
    }

    /// Tells every client which encoder to use; returns the feature dimension.
    public func useEncoder(_ spec: EncoderSpec) async throws -> Int {
        let dims = try await askAll(.useEncoder(spec)) { if case .encoderReady(let d) = $0 { return d }; return nil }
        let expected = spec.dimension
        if let bad = dims.firstIndex(where: { $0 != expected }) {
            throw FederationError.invalidReply(client: clients[bad].id, "features of dimension \(dims[bad]), expected \(expected)")
        }
        return expected
    }

    /// The shared cost normaliser, from summed log-cost moments of the clients' training rows, or
    /// with `includingHeldOut` of their training and held-out rows (whose per-model means give
    /// best-single@λ as an evaluation on all training rows picks it: the safety gate's fallback).
    public func costNormalizer(models: Int, includingHeldOut: Bool = false) async throws -> CostNormalizer {
        let parts = try await askAll(includingHeldOut ? .costMomentsWithHeldOut : .costMoments) { if case .costMoments(let v) = $0 { return v }; return nil }
        var total = CostMoments(models: models)
        for (i, p) in parts.enumerated() {
            let arrays = [p.count, p.sum, p.sumSquares]
            // Magnitudes are bounded (log-costs of at most 2^40 rows) so that the sum stays finite.
            guard arrays.allSatisfy({ $0.count == models && $0.allSatisfy { $0.isFinite && abs($0) <= 1e30 } }),
                  p.count.allSatisfy({ $0 >= 0 && $0 <= Double(ClientDescription.maxTrainQueries) }) else {
                throw FederationError.invalidReply(client: clients[i].id, "cost moments are not \(models) finite values each of magnitude ≤ 1e30 with counts ≤ 2^40")
            }
            // Scores lie in [0, 1], so a model's score sum lies in [0, its count].
            if let sums = p.scoreSum, !(sums.count == models && zip(sums, p.count).allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= $1 * (1 + 1e-9) })) {
                throw FederationError.invalidReply(client: clients[i].id, "score sums are not \(models) values each between 0 and the model's cell count")
            }
            if let sums = p.costSum, !(sums.count == models && sums.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1e30 })) {
                throw FederationError.invalidReply(client: clients[i].id, "cost sums are not \(models) finite values ≥ 0")
            }
            total = total + p
        }
        return CostNormalizer(moments: total)
    }
}
