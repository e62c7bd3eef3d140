import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Testing

@testable import FedRouteFederation

/// A client from before training with the key: its description does not say `trainsWithKey`, it drops a task
/// sent with the key request (as an older decoder ignores the field) and says nothing about training.
actor LegacyClient: FederatedClient {
    nonisolated let id: String
    let inner: any FederatedClient
    private(set) var tasksWithKey = 0

    init(_ inner: any FederatedClient) {
        id = inner.id
        self.inner = inner
    }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        switch request {
        case .describe:
            guard case .description(var d) = try await inner.handle(request) else { throw FederationError.notEnoughClients("no description") }
            d.trainsWithKey = nil
            return .description(d)
        case .secureAggregationKey(let round, let train):
            if train != nil { tasksWithKey += 1 }
            guard case .secureAggregationKey(let r, let key, let masks, _, _) = try await inner.handle(.secureAggregationKey(round: round)) else {
                throw FederationError.notEnoughClients("no key")
            }
            return .secureAggregationKey(round: r, publicKey: key, masks: masks)
        case .maskUpdate:
            throw FederationError.protocolViolation(client: id, "an older client cannot decode maskUpdate")
        default:
            return try await inner.handle(request)
        }
    }
}

/// Forwards every request and keeps the last `maskUpdate` it passed on.
actor MaskRequestRecorder: FederatedClient {
    nonisolated let id: String
    let inner: any FederatedClient
    private(set) var lastMaskUpdate: FederatedRequest?

    init(_ inner: any FederatedClient) {
        id = inner.id
        self.inner = inner
    }

    private(set) var lastTaskWithKey: MLPRoundTask?

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        if case .maskUpdate = request { lastMaskUpdate = request }
        if case .secureAggregationKey(_, let task?) = request { lastTaskWithKey = task }
        return try await inner.handle(request)
    }
}

/// A client that claims to train with its key whether or not it was sent a task.
struct BoastingClient: FederatedClient {
    let inner: any FederatedClient
    var id: String { inner.id }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        let reply = try await inner.handle(request)
        guard case .secureAggregationKey(let r, let key, let masks, _, let ring32) = reply else { return reply }
        return .secureAggregationKey(round: r, publicKey: key, masks: masks, training: true, ring32: ring32)
    }
}

@Suite struct SecureTrainingWithKeyTests {
    static let tables = Result { try Fixture.shards(sizes: [120, 80, 60, 40]) }

    /// The reference: the same federation asked one client at a time, which never sends a task with the key; in the
    /// 64-bit ring when the clients do not declare the 32-bit one.
    static func sequentialRouter(ring32: Bool = true) async throws -> (MLPRouter, [RoundReport]) {
        let tables = try tables.get()
        let (coordinator, _, _) = try await Fixture.federation(tables, policies: tables.map { _ in ClientPolicy(ring32: ring32) })
        return try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true))
    }

    /// The federation trained securely, all clients asked at once, each behind a `MaskRequestRecorder`.
    static func trainedBehindRecorders() async throws -> ([InProcessClient], [MaskRequestRecorder]) {
        let (_, clients, _) = try await Fixture.federation(try tables.get())
        let recorders = clients.map { MaskRequestRecorder($0) }
        let coordinator = try FederationCoordinator(clients: recorders, maxConcurrentRequests: recorders.count)
        _ = try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true))
        return (clients, recorders)
    }

    /// Asked all at once, every client trains on the task sent with its key while the keys come in, and is then
    /// only asked to mask: no `trainMLP` reaches it, and the router is bit for bit the one-at-a-time router's
    /// (same tasks, same seeds; the masks cancel exactly mod 2^64).
    @Test func clientsTrainWhileTheKeysAreExchangedAndGiveTheSameRouter() async throws {
        let (reference, referenceRounds) = try await Self.sequentialRouter()
        #expect(referenceRounds.allSatisfy { $0.secureAggregation?.trainedWithKey == [] })
        let (_, clients, _) = try await Fixture.federation(try Self.tables.get())
        let recorders = clients.map { RecordingClient($0) }
        let coordinator = try FederationCoordinator(clients: recorders, maxConcurrentRequests: recorders.count)
        let (router, rounds) = try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true))
        #expect(router.network.parameters == reference.network.parameters)
        #expect(rounds.count == referenceRounds.count)
        #expect(rounds.allSatisfy { $0.secureAggregation?.trainedWithKey == ["c0", "c1", "c2", "c3"] && $0.aggregated.count == 4 })
        for recorder in recorders {
            let kinds = await recorder.replies.map(\.request)
            #expect(!kinds.contains("trainMLP"))
            #expect(kinds.filter { $0 == "maskUpdate" }.count == rounds.count)
        }
    }

    /// A round's update is masked once: the same `maskUpdate` again, or one for a round the client never trained
    /// with its key, is refused (a second masking of one update for another list would leak it).
    @Test func aClientMasksATrainedUpdateOnce() async throws {
        let (clients, recorders) = try await Self.trainedBehindRecorders()
        let last = try #require(await recorders[0].lastMaskUpdate)
        guard case .maskUpdate(let round, let participants, _) = last else { Issue.record("expected maskUpdate"); return }
        #expect(participants.count == 4)
        await #expect(throws: FederationError.self) { try await clients[0].handle(last) }
        await #expect(throws: FederationError.self) { try await clients[0].handle(.maskUpdate(round: round + 1, participants: participants)) }
    }

    /// A client that trained with its key but dies before masking is dropped after the keys, and the survivors
    /// reveal its pair keys: the same router as when it dies on `trainMLP` one client at a time.
    @Test func aClientThatDiesBeforeMaskingIsUnmaskedByTheSurvivors() async throws {
        let tables = try Self.tables.get()
        let (reference, _) = try await SecureAggregationTests.trainWithAClientDyingInRound2(tables, dying: 2, secure: true)
        let dies: @Sendable (FederatedRequest) -> Bool = { if case .maskUpdate(let r, _, _) = $0 { return r == 2 }; return false }
        let (_, clients, _) = try await Fixture.federation(tables)
        let members = clients.enumerated().map { i, c in i == 2 ? FailingClient(inner: c, fails: dies) as any FederatedClient : c }
        let coordinator = try FederationCoordinator(clients: members, maxConcurrentRequests: members.count)
        let (router, rounds) = try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true))
        #expect(rounds[1].secureAggregation?.trainedWithKey == ["c0", "c1", "c2", "c3"])
        #expect(rounds[1].secureAggregation?.dropped == ["c2"] && rounds[1].secureAggregation?.revealedBy == ["c0", "c1", "c3"])
        #expect(rounds[1].aggregated == ["c0", "c1", "c3"] && rounds[2].aggregated.count == 4)
        #expect(router.network.parameters == reference.network.parameters)
    }

    /// Key requests are answered at once, so a client trains for one of them at a time: a task sent with a key
    /// while another still trains is declined (`training: false`; the coordinator then sends `trainMLP`), and
    /// once that training is masked the next one is taken.
    @Test func aClientTrainsForOneKeyRequestAtATime() async throws {
        let (clients, recorders) = try await Self.trainedBehindRecorders()
        var task = try #require(await recorders[0].lastTaskWithKey)
        task.settings.epochs = 200  // long enough to be still running when the next key request comes
        func keyRequest(_ round: Int) async throws -> (key: Data, training: Bool?) {
            var t = task
            t.round = round
            guard case .secureAggregationKey(_, let key, _, let training, _) = try await clients[0].handle(.secureAggregationKey(round: round, train: t)) else {
                throw FederationError.notEnoughClients("no key")
            }
            return (key, training)
        }
        let first = try await keyRequest(10)
        #expect(first.training == true)
        #expect(try await keyRequest(11).training == false)
        let peer = SecureAggregationSession(round: 10, clientID: "zz")
        let participants = [SecureAggregationParticipant(id: "c0", publicKey: first.key), SecureAggregationParticipant(id: "zz", publicKey: peer.publicKey)]
        guard case .maskedUpdate(let u) = try await clients[0].handle(.maskUpdate(round: 10, participants: participants)) else {
            Issue.record("expected a masked update")
            return
        }
        #expect(u.round == 10)
        #expect(try await keyRequest(12).training == true)
    }

    /// Clients that predate training with the key are never sent a task with it and get `trainMLP` as before;
    /// the others train with their key, in the same rounds, and the router does not change. (Such a client does not
    /// declare the 32-bit ring either, so its rounds stay in the 64-bit one.)
    @Test func olderClientsInTheSameRoundGetTheirTaskAsBefore() async throws {
        let (reference, _) = try await Self.sequentialRouter(ring32: false)
        let (_, clients, _) = try await Fixture.federation(try Self.tables.get())
        let legacy = LegacyClient(clients[1])
        let members: [any FederatedClient] = [clients[0], legacy, clients[2], clients[3]]
        let coordinator = try FederationCoordinator(clients: members, maxConcurrentRequests: members.count)
        let (router, rounds) = try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true))
        #expect(router.network.parameters == reference.network.parameters)
        #expect(rounds.allSatisfy { $0.secureAggregation?.trainedWithKey == ["c0", "c2", "c3"] && $0.aggregated.count == 4 })
        #expect(rounds.allSatisfy { $0.secureAggregation?.wordBits == 64 })
        #expect(await legacy.tasksWithKey == 0)
    }

    /// A client whose policy says no (`ClientPolicy.trainsWithKey = false`) is sent no task with its key and
    /// gets `trainMLP` after the keys; the router does not change.
    @Test func aClientCanDeclineToTrainWithItsKey() async throws {
        let (reference, _) = try await Self.sequentialRouter()
        let clients = try Self.tables.get().enumerated().map { i, t in
            InProcessClient(id: "c\(i)", train: t, policy: ClientPolicy(trainsWithKey: i == 3 ? false : nil))
        }
        let recorders = clients.map { MaskRequestRecorder($0) }
        let coordinator = try FederationCoordinator(clients: recorders, maxConcurrentRequests: recorders.count)
        let encoder = try await coordinator.fitHashedEncoder(Fixture.encoderConfiguration)
        _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf))
        let (router, rounds) = try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true))
        #expect(router.network.parameters == reference.network.parameters)
        #expect(rounds.allSatisfy { $0.secureAggregation?.trainedWithKey == ["c0", "c1", "c2"] && $0.aggregated.count == 4 })
        #expect(await recorders[3].lastTaskWithKey == nil)
        #expect(await recorders[2].lastTaskWithKey != nil)
    }

    /// A client that says it is training although no task came with its key is left out of the round, by name.
    @Test func aClientClaimingATrainingItWasNotSentIsLeftOut() async throws {
        let (_, clients, _) = try await Fixture.federation(try Self.tables.get())
        let members: [any FederatedClient] = [clients[0], clients[1], BoastingClient(inner: LegacyClient(clients[2])), clients[3]]
        let coordinator = try FederationCoordinator(clients: members, maxConcurrentRequests: members.count)
        let (_, rounds) = try await coordinator.trainMLP(SecureAggregationTests.configuration(secure: true))
        for round in rounds {
            #expect(round.aggregated == ["c0", "c1", "c3"])
            #expect(round.rejected["c2"]?.contains("was sent no task with its key") == true)
            #expect(round.secureAggregation?.listed == ["c0", "c1", "c3"])
        }
    }
}
