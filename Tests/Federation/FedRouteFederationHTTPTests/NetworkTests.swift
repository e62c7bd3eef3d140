import AsyncHTTPClient
import Crypto
import FedRouteData
import FedRouteFeatures
import FedRouteFederation
import FedRouteHTTPRunner
@testable import FedRouteFederationHTTP
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
import NIOFoundationCompat
import NIOHTTP1

enum NetFixture {
    static let encoder = HashedTFIDFEncoder.Configuration(dimension: 64, wordNGrams: 1...1, charNGrams: nil)

    static func shards(_ sizes: [Int]) throws -> [EvaluationTable] {
        try SyntheticData.sparseShards(sizes: sizes, seed: 3, maskSeed: 4)
    }

    static var mlp: FederatedMLPConfiguration {
        var c = FederatedMLPConfiguration()
        c.hiddenDimension = 16
        c.rounds = 3
        c.participation = 1
        c.local.batchSize = 16
        c.local.optimizer.learningRate = 1e-2
        return c
    }

    static var kmeans: FederatedKMeansConfiguration {
        var k = FederatedKMeansConfiguration()
        k.localClusters = 4
        k.globalClusters = 5
        k.restarts = 1
        return k
    }

    static func temporaryDirectory() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-net-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static var logger: Logger {
        var l = Logger(label: "test")
        l.logLevel = .critical
        return l
    }
}

/// Answers MLP rounds with a poisoned update (NaN or the wrong shape), everything else honestly.
struct PoisoningClient: FederatedClient {
    let inner: InProcessClient
    let nan: Bool
    var id: String { inner.id }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        guard case .trainMLP(let t) = request else { return try await inner.handle(request) }
        let delta = nan ? t.parameters.map { Tensor(name: $0.name, shape: $0.shape, repeating: .nan) }
                        : [Tensor(name: "trunk.0.weight", shape: [2], values: [1, 2])]
        return .mlpUpdate(MLPUpdate(round: t.round, delta: delta, sampleCount: 1, meanLoss: 0.5))
    }
}

@Suite struct AuthenticationTests {
    @Test func everyBadRequestIsRefusedForItsReason() throws {
        let alice = ClientIdentity(id: "alice")
        let mallory = ClientIdentity(id: "mallory")
        var auth = try ClientAuthenticator(publicKeys: ["alice": alice.publicKeyBase64])
        let body = Data("{}".utf8)
        func headers(_ who: ClientIdentity, nonce: UInt64, time: Int64 = 1_000, body: Data = body) throws -> [String: String] {
            Dictionary(uniqueKeysWithValues: try RequestSignature.headers(identity: who, method: "POST", path: "/v1/poll", session: "s",
                                                                          nonce: nonce, timestamp: time, body: body))
        }
        func verify(_ h: [String: String], body: Data = body) throws(AuthenticationFailure) -> String {
            try auth.verify(method: "POST", path: "/v1/poll", header: { h[$0] }, body: body, now: 1_000)
        }
        #expect(try verify(try headers(alice, nonce: 5)) == "alice")
        #expect(throws: AuthenticationFailure.replayedNonce(client: "alice", nonce: 5, last: 5)) { try verify(try headers(alice, nonce: 5)) }
        #expect(throws: AuthenticationFailure.unknownClient("mallory")) { try verify(try headers(mallory, nonce: 9)) }
        // Mallory signs with her key but claims to be alice.
        var forged = try headers(mallory, nonce: 9)
        forged[Wire.Header.client] = "alice"
        #expect(throws: AuthenticationFailure.badSignature(client: "alice")) { try verify(forged) }
        // A body changed in transit.
        #expect(throws: AuthenticationFailure.badSignature(client: "alice")) { try verify(try headers(alice, nonce: 10), body: Data("{\"x\":1}".utf8)) }
        #expect(throws: AuthenticationFailure.staleTimestamp(client: "alice", timestamp: 0, now: 1_000)) { try verify(try headers(alice, nonce: 11, time: 0)) }
        var missing = try headers(alice, nonce: 12)
        missing[Wire.Header.signature] = nil
        #expect(throws: AuthenticationFailure.missingHeader(Wire.Header.signature)) { try verify(missing) }
        #expect(try verify(try headers(alice, nonce: 13)) == "alice")
    }

    /// A body signed over its tree digest verifies when the request names the scheme, and not when the header is
    /// dropped or names the other scheme (the signed message names it too); an unknown scheme is refused before
    /// the body is read; requests without the header are SHA-256, as from clients before the tree digest.
    @Test func bodyDigestSchemesAreBoundIntoTheSignature() throws {
        let alice = ClientIdentity(id: "alice")
        var auth = try ClientAuthenticator(publicKeys: ["alice": alice.publicKeyBase64])
        let body = Data((0..<5_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        func headers(nonce: UInt64, scheme: BodyDigest) throws -> [String: String] {
            Dictionary(uniqueKeysWithValues: try RequestSignature.headers(identity: alice, method: "POST", path: "/v1/reply", session: "s",
                                                                          nonce: nonce, timestamp: 1_000, body: body, scheme: scheme))
        }
        func verify(_ h: [String: String]) throws(AuthenticationFailure) -> String {
            try auth.verify(method: "POST", path: "/v1/reply", header: { h[$0] }, body: body, now: 1_000)
        }
        let tree = try headers(nonce: 1, scheme: .tree16)
        #expect(tree[Wire.Header.digest] == "tree16-sha256")
        #expect(try verify(tree) == "alice")
        var dropped = try headers(nonce: 2, scheme: .tree16)
        dropped[Wire.Header.digest] = nil
        #expect(throws: AuthenticationFailure.badSignature(client: "alice")) { try verify(dropped) }
        var added = try headers(nonce: 3, scheme: .sha256)
        #expect(added[Wire.Header.digest] == nil)
        added[Wire.Header.digest] = "tree16-sha256"
        #expect(throws: AuthenticationFailure.badSignature(client: "alice")) { try verify(added) }
        var unknown = try headers(nonce: 4, scheme: .tree16)
        unknown[Wire.Header.digest] = "md5"
        #expect(throws: AuthenticationFailure.missingHeader(Wire.Header.digest)) { _ = try auth.precheck(header: { unknown[$0] }, now: 1_000) }
        #expect(try verify(try headers(nonce: 5, scheme: .sha256)) == "alice")
        // BLAKE3 likewise, and a request signed under it does not verify as the tree digest.
        let blake = try headers(nonce: 6, scheme: .blake3)
        #expect(blake[Wire.Header.digest] == "blake3")
        #expect(try verify(blake) == "alice")
        var swapped = try headers(nonce: 7, scheme: .blake3)
        swapped[Wire.Header.digest] = "tree16-sha256"
        #expect(throws: AuthenticationFailure.badSignature(client: "alice")) { try verify(swapped) }
    }

    @Test func keyFilesRoundTripAndCertificatesLoad() throws {
        let dir = try NetFixture.temporaryDirectory()
        let id = ClientIdentity(id: "c1")
        try id.write(to: dir + "/c1.key")
        let back = try ClientIdentity(contentsOf: dir + "/c1.key")
        #expect(back.id == "c1" && back.publicKeyBase64 == id.publicKeyBase64)
        #expect(throws: WireError.self) { _ = try ClientIdentity(contentsOf: dir + "/missing.key") }
        try FederationCertificates.generate(directory: dir, hosts: ["127.0.0.1", "localhost"])
        _ = try FederationCertificates.serverConfiguration(certificate: dir + "/server.pem", key: dir + "/server-key.pem")
        _ = try FederationCertificates.clientConfiguration(caFile: dir + "/ca.pem")
    }
}

@Suite struct RejoinGraceTests {
    @Test func theRegistryWaitsForEveryClientOnlyUpToTheGrace() async throws {
        let ids = (0..<3).map { ClientIdentity(id: "c\($0)") }
        let authenticator = try ClientAuthenticator(publicKeys: Dictionary(uniqueKeysWithValues: ids.map { ($0.id, $0.publicKeyBase64) }))
        // Liveness expiry is not under test: a test process starved of CPU by parallel suites must not
        // see the joined clients time out between the join and the wait.
        let registry = ClientRegistry(federation: "f", authenticator: authenticator, offlineAfter: .seconds(3_600), logger: NetFixture.logger)
        _ = await registry.join(client: "c0")
        _ = await registry.join(client: "c1")
        let start = ContinuousClock.now
        #expect(try await registry.waitForEveryClient(upTo: .milliseconds(300)) == 2)
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        // The third re-joins during the grace: the wait ends as soon as everybody is back.
        let late = Task {
            try await Task.sleep(for: .milliseconds(200))
            _ = await registry.join(client: "c2")
        }
        let again = ContinuousClock.now
        #expect(try await registry.waitForEveryClient(upTo: .seconds(120)) == 3)
        #expect(ContinuousClock.now - again < .seconds(60))
        try await late.value
    }

    @Test func theGraceIsOptionalAndMustNotBeNegative() throws {
        let dir = try NetFixture.temporaryDirectory()
        var c = CoordinatorConfiguration(
            federation: "f", host: "127.0.0.1", port: 0, tls: nil, clients: [.init(id: "c0", publicKey: ClientIdentity(id: "c0").publicKeyBase64)],
            families: [.mlp], encoder: NetFixture.encoder, mlp: NetFixture.mlp, kmeans: NetFixture.kmeans, minimumOnline: 1,
            roundDeadlineSeconds: 5, joinTimeoutSeconds: 5, stateDirectory: dir, outputDirectory: dir, validation: nil)
        try JSONEncoder().encode(c).write(to: URL(fileURLWithPath: dir + "/server.json"))
        let loaded = try CoordinatorConfiguration.load(path: dir + "/server.json")
        #expect(loaded.rejoinGraceSeconds == nil && loaded.job.rejoinGrace == .seconds(10))
        c.rejoinGraceSeconds = -1
        try JSONEncoder().encode(c).write(to: URL(fileURLWithPath: dir + "/bad.json"))
        #expect { _ = try CoordinatorConfiguration.load(path: dir + "/bad.json") } throws: { "\($0)".contains("rejoinGraceSeconds") }
    }
}

@Suite(.serialized) struct CoordinatorOverHTTPTests {
    /// Runs a job with the given clients (index → how they answer) over TLS on loopback: HTTP/2 unless
    /// `httpVersion` says HTTP/1.1 (the clients' default, tested on its own below).
    static func runFederation(tables: [EvaluationTable], mlp: FederatedMLPConfiguration, compression: FrameCompression = .none,
                              httpVersion: ClientHTTPVersion = .automatic, wrap: @escaping @Sendable (Int, InProcessClient) -> any FederatedClient = { $1 })
        async throws -> (FederationJob.Result, MLPRouter, KMeansRouter, registry: ClientRegistry) {
        let (result, m, k, registry, _) = try await runFederationWithOutcomes(tables: tables, mlp: mlp, compression: compression, httpVersion: httpVersion, wrap: wrap)
        return (result, m, k, registry)
    }

    /// `runFederation`, plus every client runner's outcome by client id.
    static func runFederationWithOutcomes(tables: [EvaluationTable], mlp: FederatedMLPConfiguration, compression: FrameCompression = .none,
                                          httpVersion: ClientHTTPVersion = .automatic, bodyDigest: BodyDigest = .tree16,
                                          wrap: @escaping @Sendable (Int, InProcessClient) -> any FederatedClient = { $1 })
        async throws -> (FederationJob.Result, MLPRouter, KMeansRouter, registry: ClientRegistry, outcomes: [String: FederationClientRunner.Outcome]) {
        let outcomes = Mutex<[String: FederationClientRunner.Outcome]>([:])
        let clients = tables.enumerated().map { i, t in wrap(i, InProcessClient(id: "c\(i)", train: t)) }
        let (result, registry) = try await LoopbackFederation.run(clients: clients, directory: try NetFixture.temporaryDirectory(), logger: NetFixture.logger,
                                                               httpVersion: httpVersion, bodyDigest: bodyDigest, configure: { c in
            c.encoder = NetFixture.encoder
            c.mlp = mlp
            c.kmeans = NetFixture.kmeans
            c.roundDeadlineSeconds = 30
            c.joinTimeoutSeconds = 30
            c.frameCompression = compression
        }, finished: { id, o in outcomes.withLock { $0[id] = o } })
        let mlpRouter = try RouterFile.load(path: result.routerFiles["mlp"]!).router
        let kmeansRouter = try RouterFile.load(path: result.routerFiles["kmeans"]!).router
        guard let m = mlpRouter.as(MLPRouter.self), let k = kmeansRouter.as(KMeansRouter.self) else { throw WireError("wrong router kinds") }
        return (result, m, k, registry, outcomes.withLock { $0 })
    }

    /// The same federation in one process, for comparison.
    static func inProcess(tables: [EvaluationTable], mlp: FederatedMLPConfiguration) async throws -> (MLPRouter, KMeansRouter, HashedTFIDFEncoder) {
        let clients = tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1) }
        let coordinator = try FederationCoordinator(clients: clients)
        let encoder = try await coordinator.fitHashedEncoder(NetFixture.encoder)
        _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf))
        return (try await coordinator.trainMLP(mlp).router, try await coordinator.trainKMeans(NetFixture.kmeans).router, encoder)
    }

    @Test func theNetworkFederationEqualsTheInProcessOneWithSecureAggregation() async throws {
        let tables = try NetFixture.shards([120, 80, 60])
        var mlp = NetFixture.mlp
        mlp.secureAggregation = true
        let (result, router, kmeans, registry) = try await Self.runFederation(tables: tables, mlp: mlp)
        let (expectedMLP, expectedKMeans, encoder) = try await Self.inProcess(tables: tables, mlp: mlp)
        #expect(router == expectedMLP)
        // K-Means router files keep per-cell means in float32: compare after the same round trip.
        let file = try NetFixture.temporaryDirectory() + "/kmeans.safetensors"
        try RouterFile.save(try RoutingPipeline(encoder: encoder, router: AnyRouter(expectedKMeans)), to: file)
        #expect(try RouterFile.load(path: file).router == AnyRouter(kmeans))
        #expect(result.rounds.allSatisfy { $0.aggregated == ["c0", "c1", "c2"] && $0.secureAggregation?.listed.count == 3 })
        #expect(result.traffic.count == 3 && result.traffic.allSatisfy { $0.bytesIn > 0 && $0.bytesOut > 0 })
        #expect(await registry.rejections.isEmpty)
    }

    /// Updates larger than HTTP/2's 64 kB initial window (128 kB here) cross in several window updates:
    /// the federation over TLS + HTTP/2 gives exactly the in-process routers, with no client re-joining
    /// and nothing refused. (A coordinator that credited such a stream with its declared length by a
    /// WINDOW_UPDATE of its own broke here: when the whole body was already buffered, NIO answers a
    /// WINDOW_UPDATE on the half-closed stream with RST_STREAM, and the client re-joined.)
    @Test func updatesLargerThanTheHTTP2WindowGiveTheInProcessRouters() async throws {
        let tables = try NetFixture.shards([120, 80, 60])
        var mlp = NetFixture.mlp
        mlp.hiddenDimension = 512  // first layer 64 × 512 floats
        mlp.rounds = 2
        let (result, router, _, registry, outcomes) = try await Self.runFederationWithOutcomes(tables: tables, mlp: mlp)
        let (expected, _, _) = try await Self.inProcess(tables: tables, mlp: mlp)
        #expect(router == expected)
        #expect(outcomes.count == 3 && outcomes.values.allSatisfy { $0.httpVersion == "2" })
        #expect(result.traffic.allSatisfy { $0.bytesIn > 3 * 65_535 })
        #expect(result.rounds.allSatisfy { $0.aggregated == ["c0", "c1", "c2"] && $0.rejected.isEmpty })
        #expect(await registry.rejections.isEmpty)
    }

    /// Clients that speak HTTP/1.1 to the TLS coordinator (the default of `fedroute client`; the other tests
    /// here speak HTTP/2) get the same routers as in process, with secure aggregation too.
    @Test func http1ClientsGiveTheInProcessRouters() async throws {
        let tables = try NetFixture.shards([120, 80, 60])
        var mlp = NetFixture.mlp
        mlp.hiddenDimension = 512
        mlp.rounds = 2
        for secure in [false, true] {
            mlp.secureAggregation = secure
            let (expected, _, _) = try await Self.inProcess(tables: tables, mlp: mlp)
            let (result, router, _, registry, outcomes) = try await Self.runFederationWithOutcomes(tables: tables, mlp: mlp, httpVersion: .http1)
            #expect(router == expected)
            #expect(outcomes.count == 3 && outcomes.values.allSatisfy { $0.httpVersion == "1.1" })
            #expect(result.rounds.allSatisfy { $0.aggregated == ["c0", "c1", "c2"] && $0.rejected.isEmpty })
            #expect(await registry.rejections.isEmpty)
        }
    }

    /// Clients sign their replies over the tree digest or BLAKE3 once the coordinator lists it, or over SHA-256 when
    /// told to; whichever, the routers are the in-process ones and nothing is refused.
    @Test func everyBodyDigestGivesTheInProcessRouters() async throws {
        let tables = try NetFixture.shards([120, 80, 60])
        var mlp = NetFixture.mlp
        mlp.rounds = 2
        mlp.secureAggregation = true
        let (expected, _, _) = try await Self.inProcess(tables: tables, mlp: mlp)
        for digest in BodyDigest.allCases {
            let (result, router, _, registry, outcomes) = try await Self.runFederationWithOutcomes(tables: tables, mlp: mlp, httpVersion: .http1,
                                                                                                  bodyDigest: digest)
            #expect(router == expected)
            #expect(outcomes.count == 3 && outcomes.values.allSatisfy { $0.bodyDigest == digest })
            #expect(result.rounds.allSatisfy { $0.aggregated == ["c0", "c1", "c2"] && $0.rejected.isEmpty })
            // Over the network every sampled client is asked at once, so each trains with its key.
            #expect(result.rounds.allSatisfy { $0.secureAggregation?.trainedWithKey == ["c0", "c1", "c2"] })
            #expect(await registry.rejections.isEmpty)
        }
    }

    /// Training with the key sends the round's model once per client, with the key request: a secure round
    /// sends the clients about what a plain round does (keys, participant lists and envelopes besides).
    @Test func aSecureRoundSendsTheModelOncePerClient() async throws {
        let tables = try NetFixture.shards([120, 80, 60])
        var mlp = NetFixture.mlp
        mlp.rounds = 2
        let (plain, _, _, _) = try await Self.runFederation(tables: tables, mlp: mlp)
        mlp.secureAggregation = true
        let (secure, _, _, _) = try await Self.runFederation(tables: tables, mlp: mlp)
        #expect(secure.rounds.allSatisfy { $0.secureAggregation?.trainedWithKey == ["c0", "c1", "c2"] })
        for (p, s) in zip(plain.traffic, secure.traffic) {
            #expect(s.bytesOut < p.bytesOut + p.bytesOut / 5, "round \(s.round): \(s.bytesOut) bytes to the clients, plain \(p.bytesOut)")
        }
    }

    /// Compressed frames are lossless: the same routers as in process, with fewer bytes on the wire.
    @Test func compressedFramesGiveTheSameRoutersWithFewerBytes() async throws {
        let tables = try NetFixture.shards([120, 80, 60])
        var mlp = NetFixture.mlp
        mlp.hiddenDimension = 128  // first layer 64 × 128 floats: large enough to be compressed
        let (plain, _, _, _) = try await Self.runFederation(tables: tables, mlp: mlp)
        let (result, router, _, registry) = try await Self.runFederation(tables: tables, mlp: mlp, compression: .shuffleDeflate)
        let (expected, _, _) = try await Self.inProcess(tables: tables, mlp: mlp)
        #expect(router == expected)
        let bytes = { (r: FederationJob.Result) in r.traffic.reduce(0) { $0 + $1.bytesIn + $1.bytesOut } }
        #expect(bytes(result) < bytes(plain) * 9 / 10, "compressed \(bytes(result)) vs plain \(bytes(plain)) bytes")
        #expect(await registry.rejections.isEmpty)
    }

    @Test func poisonedUpdatesOverTheWireNeverEnterTheAggregate() async throws {
        let tables = try NetFixture.shards([120, 80, 60, 50])
        let (result, router, _, _) = try await Self.runFederation(tables: tables, mlp: NetFixture.mlp) { i, c in
            switch i {
            case 2: return PoisoningClient(inner: c, nan: true)
            case 3: return PoisoningClient(inner: c, nan: false)
            default: return c
            }
        }
        for r in result.rounds {
            #expect(r.aggregated == ["c0", "c1"])
            #expect(r.rejected["c2"]?.contains("NaN") == true)
            #expect(r.rejected["c3"]?.contains("1 tensors, expected") == true)
        }
        #expect(router.network.parameters.allSatisfy { (t: Tensor) in t.values.allSatisfy { $0.isFinite } })
    }
}

@Suite(.serialized) struct RegistryRejectionTests {
    /// Signs and posts raw requests, like a client would (or an attacker replaying one).
    struct RawClient {
        let http: HTTPClient
        let base: String
        let identity: ClientIdentity

        func post(_ path: String, body: Data, session: String, nonce: UInt64) async throws -> (Int, String) {
            let headers = try RequestSignature.headers(identity: identity, method: "POST", path: path, session: session, nonce: nonce,
                                                       timestamp: Int64(Date().timeIntervalSince1970), body: body)
            return try await send(path, body: body, headers: headers)
        }

        func send(_ path: String, body: Data, headers: [(String, String)]) async throws -> (Int, String) {
            var r = HTTPClientRequest(url: base + path)
            r.method = .POST
            for (k, v) in headers { r.headers.add(name: k, value: v) }
            r.body = .bytes(ByteBuffer(data: body))
            let response = try await http.execute(r, timeout: .seconds(30))
            var b = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), b.readString(length: b.readableBytes) ?? "")
        }
    }

    @Test func unknownClientsReplaysStaleSessionsAndSecondRepliesAreRefusedAndLogged() async throws {
        let alice = ClientIdentity(id: "alice")
        let logger = NetFixture.logger
        let registry = ClientRegistry(federation: "t", authenticator: try ClientAuthenticator(publicKeys: ["alice": alice.publicKeyBase64]), logger: logger)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do { try await exchange(registry: registry, alice: alice, http: http, logger: logger) } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
        let reasons = await registry.rejections
        #expect(reasons.count == 5)
        #expect(reasons.contains { $0.contains("unknown client eve") } && reasons.contains { $0.contains("replayed") })
    }

    func exchange(registry: ClientRegistry, alice: ClientIdentity, http: HTTPClient, logger: Logger) async throws {
        let transport = try CoordinatorRoutes.transport(tls: nil)
        try await HTTPRunner.withRunning(logger: logger, { ready in
            CoordinatorRoutes.application(registry: registry, host: "127.0.0.1", port: 0, transport: transport, logger: logger,
                                              pollWait: .milliseconds(200), onServerRunning: ready)
        }) { port in
            let base = "http://127.0.0.1:\(port)"
            let a = RawClient(http: http, base: base, identity: alice)
            let join = try Wire.encoder().encode(JoinRequest())
            let (s1, joined) = try await a.post("/v1/join", body: join, session: "-", nonce: 10)
            #expect(s1 == 200)
            let session = try Wire.decoder().decode(JoinResponse.self, from: Data(joined.utf8)).session
            // An unknown client, and a replay of the join above byte for byte.
            let (s2, e2) = try await RawClient(http: http, base: base, identity: ClientIdentity(id: "eve")).post("/v1/join", body: join, session: "-", nonce: 11)
            #expect(s2 == 401 && e2.contains("unknown client eve"))
            let headers = try RequestSignature.headers(identity: alice, method: "POST", path: "/v1/join", session: "-", nonce: 10,
                                                       timestamp: Int64(Date().timeIntervalSince1970), body: join)
            let (s3, e3) = try await a.send("/v1/join", body: join, headers: headers)
            #expect(s3 == 401 && e3.contains("replayed"))
            // A session the coordinator does not know (e.g. from before its restart).
            let (s4, e4) = try await a.post("/v1/poll", body: Data("{}".utf8), session: "old-session", nonce: 12)
            #expect(s4 == 409 && e4.contains("unknown session"))
            // A task, answered twice: the second answer is refused.
            let pending = Task { try await registry.dispatch(.describe, to: "alice", deadline: .seconds(10)) }
            let (s5, polled) = try await a.post("/v1/poll", body: Data("{}".utf8), session: session, nonce: 13)
            #expect(s5 == 200)
            let task = try #require(try Wire.decoder().decode(PollResponse.self, from: Data(polled.utf8)).task)
            let answer = try Wire.encoder().encode(ReplyEnvelope(taskID: task.taskID, reply: .encoderReady(featureDimension: 4)))
            let (s6, _) = try await a.post("/v1/reply", body: answer, session: session, nonce: 14)
            #expect(s6 == 200)
            #expect(try await pending.value == .encoderReady(featureDimension: 4))
            let (s7, e7) = try await a.post("/v1/reply", body: answer, session: session, nonce: 15)
            #expect(s7 == 409 && e7.contains("second reply"))
            // A malformed reply body.
            let (s8, _) = try await a.post("/v1/reply", body: Data("{\"taskID\": 3}".utf8), session: session, nonce: 16)
            #expect(s8 == 400)
            // A task nobody answers fails at its deadline instead of stalling the caller.
            await #expect(throws: FederationError.self) { try await registry.dispatch(.costMoments, to: "alice", deadline: .milliseconds(300)) }
        }
    }
}
