import FedRouteData
import FedRouteFeatures
@testable import FedRouteFederation
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Testing

/// Wraps a client and keeps the JSON of every reply that crosses the boundary.
actor RecordingClient: FederatedClient {
    nonisolated let id: String
    let inner: any FederatedClient
    private(set) var replies: [(request: String, json: Data)] = []

    init(_ inner: any FederatedClient) {
        id = inner.id
        self.inner = inner
    }

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        let reply = try await inner.handle(request)
        replies.append(("\(request)".prefix(while: { $0 != "(" }).description, try JSONEncoder().encode(reply)))
        return reply
    }
}

/// A client that answers every MLP round with a fixed reply (to test the server's arithmetic and checks).
struct ScriptedClient: FederatedClient {
    let id: String
    let description: ClientDescription
    let update: @Sendable (MLPRoundTask) -> MLPUpdate

    func handle(_ request: FederatedRequest) async throws -> FederatedReply {
        switch request {
        case .describe: return .description(description)
        case .costMoments:
            var m = CostMoments(models: description.models.count)
            m.count = m.count.map { _ in 4 }; m.sum = m.sum.map { _ in 0.04 }; m.sumSquares = m.sumSquares.map { _ in 0.0008 }
            return .costMoments(m)
        case .trainMLP(let task): return .mlpUpdate(update(task))
        default: throw FederationError.protocolViolation(client: id, "scripted client")
        }
    }
}

enum Fixture {
    static let encoderConfiguration = HashedTFIDFEncoder.Configuration(dimension: 64, wordNGrams: 1...1, charNGrams: nil)

    /// Clients over disjoint slices of a synthetic table, with sparse observations.
    static func shards(sizes: [Int], seed: UInt64 = 1) throws -> [EvaluationTable] {
        try SyntheticData.sparseShards(sizes: sizes, seed: seed, maskSeed: seed &+ 100)
    }

    static func federation(_ tables: [EvaluationTable], policies: [ClientPolicy]? = nil) async throws -> (FederationCoordinator, [InProcessClient], HashedTFIDFEncoder) {
        let clients = tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1, policy: policies?[$0] ?? ClientPolicy()) }
        let coordinator = try FederationCoordinator(clients: clients)
        let encoder = try await coordinator.fitHashedEncoder(encoderConfiguration)
        _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf))
        return (coordinator, clients, encoder)
    }

    static var smallMLP: FederatedMLPConfiguration {
        var c = FederatedMLPConfiguration()
        c.hiddenDimension = 16
        c.rounds = 3
        c.participation = 1
        c.local.batchSize = 16
        c.local.optimizer.learningRate = 1e-2
        return c
    }
}

@Suite struct FederationTests {
    @Test func federatedEncoderAndNormalizerEqualThePooledOnes() async throws {
        let tables = try Fixture.shards(sizes: [20, 35, 12])
        let (coordinator, _, encoder) = try await Fixture.federation(tables)
        let union = try EvaluationTable.concatenate(tables)
        var direct = HashedTFIDFEncoder(configuration: Fixture.encoderConfiguration)
        direct.fit(union.queries.map(\.text))
        #expect(encoder == direct)
        let normalizer = try await coordinator.costNormalizer(models: union.modelCount)
        let pooled = CostNormalizer(fitting: union)
        for m in 0..<union.modelCount { #expect(abs(normalizer.mean[m] - pooled.mean[m]) < 1e-12 && abs(normalizer.std[m] - pooled.std[m]) < 1e-9) }
    }

    @Test func federatedKMeansPoolsExactlyTheUnionsStatistics() async throws {
        let tables = try Fixture.shards(sizes: [30, 40, 25])
        let (coordinator, clients, _) = try await Fixture.federation(tables)
        var c = FederatedKMeansConfiguration()
        c.localClusters = 4
        c.globalClusters = 5
        let (router, report) = try await coordinator.trainKMeans(c)
        #expect(router.clusterCounts == [5] && report.globalClusters == 5 && report.rejected.isEmpty)
        let only = router.resolutions[0]
        var all: [(Matrix, EvaluationTable)] = []
        for client in clients { all.append(try await client.localData()) }
        let features = Matrix(rows: 95, cols: 64, data: all.flatMap(\.0.data))
        let union = try EvaluationTable.concatenate(all.map(\.1))
        let direct = try ClusterStatistics(centroids: only.centroids, features: features, table: union)
        #expect(only.statistics.count == direct.count)
        #expect(zip(only.statistics.scoreSum + only.statistics.costSum, direct.scoreSum + direct.costSum).allSatisfy { abs($0 - $1) < 1e-9 })
        // Growing by clients adds their statistics; growing by models adds empty columns first.
        let newcomers = try await Fixture.federation(try Fixture.shards(sizes: [20], seed: 9))
        let grown = try await newcomers.0.addClients(to: router)
        let before: Double = router.resolutions[0].statistics.count.reduce(0, +)
        let after: Double = grown.resolutions[0].statistics.count.reduce(0, +)
        #expect(after == before + 20)
    }

    /// A client with few rows fits at most rows / privacy floor local clusters, so it still shares
    /// centres (with one cluster per row, every cluster would be under the floor and withheld).
    @Test func aSmallClientFitsFewerClustersAndStillSharesCentres() async throws {
        let tables = try Fixture.shards(sizes: [7, 6, 4])
        let (_, clients, _) = try await Fixture.federation(tables)
        var c = FederatedKMeansConfiguration()
        c.localClusters = 15
        for (client, rows) in zip(clients, [7, 6, 4]) {
            let reply = try await client.handle(.localCentroids(LocalClusteringTask(configuration: c.kmeans(clusters: 15, seed: 1))))
            guard case .localCentroids(let centres) = reply else { Issue.record("unexpected reply \(reply.kind)"); continue }
            #expect(centres.centroids.rows == centres.sizes.count && centres.sizes.allSatisfy { $0 >= 3 })
            #expect(centres.centroids.rows >= 1 && centres.centroids.rows <= rows / 3)
        }
    }

    @Test func serverAveragesWeightedDeltasAndRejectsBadUpdates() async throws {
        let models = ["a", "b"]
        let description = ClientDescription(models: models, trainQueries: 10, trainableQueries: 10, observedCells: 10, featureDimension: 3)
        func constant(_ v: Float, samples: Int) -> @Sendable (MLPRoundTask) -> MLPUpdate {
            { task in MLPUpdate(round: task.round, delta: task.parameters.map { Tensor(name: $0.name, shape: $0.shape, repeating: v) }, sampleCount: samples, meanLoss: 1) }
        }
        let good1 = ScriptedClient(id: "one", description: description, update: constant(1, samples: 1))
        let good2 = ScriptedClient(id: "three", description: description, update: constant(-1, samples: 3))
        let nan = ScriptedClient(id: "nan", description: description, update: constant(.nan, samples: 5))
        let liar = ScriptedClient(id: "liar", description: description, update: constant(1, samples: 1000))
        let shape = ScriptedClient(id: "shape", description: description) { task in
            MLPUpdate(round: task.round, delta: [Tensor(name: "trunk.0.weight", shape: [1], values: [1])], sampleCount: 1, meanLoss: 1)
        }
        let stale = ScriptedClient(id: "stale", description: description) { task in
            MLPUpdate(round: task.round - 1, delta: task.parameters.map { Tensor(name: $0.name, shape: $0.shape, repeating: 9) }, sampleCount: 1, meanLoss: 1)
        }
        let coordinator = try FederationCoordinator(clients: [good1, good2, nan, liar, shape, stale])
        var c = FederatedMLPConfiguration()
        c.hiddenDimension = 4; c.rounds = 1; c.participation = 1
        let start = try MLPRouter(models: models, network: MLPNetwork(architecture: MLPArchitecture(inputDimension: 3, hiddenDimension: 4, modelCount: 2), seed: 1),
                                  costNormalizer: CostNormalizer(mean: [0, 0], std: [1, 1]))
        let (router, rounds) = try await coordinator.continueMLP(start, c)
        // (1·1 + 3·(−1)) / 4 = −0.5 on every value; nothing from the four bad clients.
        for (a, b) in zip(router.network.parameters, start.network.parameters) {
            for (x, y) in zip(a.values, b.values) { #expect(abs((x - y) - -0.5) < 1e-6) }
        }
        #expect(rounds[0].aggregated == ["one", "three"])
        #expect(Set(rounds[0].rejected.keys) == ["nan", "liar", "shape", "stale"])
        #expect(rounds[0].rejected["nan"]!.contains("NaN"))
        // FedAdam: the first step moves every value by −lr·(1−β1)·0.5/((1−β2)^½·0.5 + τ) ≈ −lr·0.1/0.05.
        c.server = .fedAdam(learningRate: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3)
        let adam = try await FederationCoordinator(clients: [good1, good2]).continueMLP(start, c).router
        let expected: Float = -0.01 * 0.05 / ((0.01 * 0.25).squareRoot() + 1e-3)
        #expect(abs((adam.network.parameters[0].values[0] - start.network.parameters[0].values[0]) - expected) < 1e-6)
    }

    @Test func federatedMLPLearnsAndIsDeterministic() async throws {
        let tables = try Fixture.shards(sizes: [400, 80, 40])
        let (coordinator, clients, _) = try await Fixture.federation(tables)
        var c = Fixture.smallMLP
        c.rounds = 15
        let (router, rounds) = try await coordinator.trainMLP(c)
        #expect(rounds.count == c.rounds && rounds.allSatisfy { $0.aggregated.count == 3 })
        #expect(rounds.last!.meanLoss! < rounds.first!.meanLoss!)
        let (again, _) = try await coordinator.trainMLP(c)
        #expect(again == router)
        // At λ = 0 the topic's specialist (success 0.9) should be chosen over the generalist (0.7) and
        // the other specialists (0.2): well above the 1/4 of a random choice.
        let (x, t) = try await clients[1].localData()
        let choices = try router.predict(features: x).choose(lambda: 0)
        let specialistPicked = (0..<t.queryCount).filter { r in t.queries[r].task == "topic-\(choices[r])" }.count
        #expect(Double(specialistPicked) / Double(t.queryCount) > 0.55)
    }

    @Test func growingByModelsFreezesTheTrunkAndGrowingByClientsDistils() async throws {
        let full = try Fixture.shards(sizes: [60, 60])
        // The first federation only knows models 0...2; the generalist joins later.
        let firstModels = Array(full[0].models.prefix(3))
        let restricted = try full.map { t in
            try EvaluationTable(records: t.records.filter { firstModels.contains($0.model) }.map { $0 })
        }
        let union = try EvaluationTable.concatenate(full)
        let vocabulary = union.queries.map(\.text)
        var encoder = HashedTFIDFEncoder(configuration: Fixture.encoderConfiguration)
        encoder.fit(vocabulary)
        let spec = EncoderSpec.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf)
        let oldClients = restricted.enumerated().map { InProcessClient(id: "old\($0)", train: $1) }
        let old = try FederationCoordinator(clients: oldClients)
        _ = try await old.useEncoder(spec)
        let (base, _) = try await old.trainMLP(Fixture.smallMLP)
        let grownClients = full.enumerated().map { InProcessClient(id: "g\($0)", train: $1) }
        let grownFederation = try FederationCoordinator(clients: grownClients)
        _ = try await grownFederation.useEncoder(spec)
        let (grown, _) = try await grownFederation.addModels(["generalist"], to: base, configuration: Fixture.smallMLP)
        #expect(grown.models == firstModels + ["generalist"])
        let trunk = grown.network.trunkTensorNames.count
        #expect(Array(grown.network.parameters.prefix(trunk)) == Array(base.network.parameters.prefix(trunk)))
        let x = encoder.encode(Array(vocabulary.prefix(10)))
        let (s0, _) = base.network.predict(x), (s1, _) = grown.network.predict(x)
        for r in 0..<10 { for m in 0..<3 { #expect(abs(s0[r, m] - s1[r, m]) < 1e-6) } }
        // New clients: with distillation the router stays closer to what it was.
        let newcomers = try FederationCoordinator(clients: [InProcessClient(id: "new", train: try Fixture.shards(sizes: [80], seed: 5)[0])])
        _ = try await newcomers.useEncoder(spec)
        func drift(_ weight: Float) async throws -> Float {
            var c = Fixture.smallMLP
            c.rounds = 5
            c.local.distillationWeight = weight
            let (r, _) = try await newcomers.addClients(to: grown, configuration: c)
            let (a, _) = r.network.predict(x), (b, _) = grown.network.predict(x)
            return zip(a.data, b.data).reduce(0) { $0 + abs($1.0 - $1.1) }
        }
        #expect(try await drift(10) < drift(0))
    }

    @Test func adaptiveWeightsFollowInverseErrors() throws {
        let t = try EvaluationTable(records: [
            EvaluationRecord(query: Query(id: "1", text: "x", task: "t"), model: "a", score: 1, cost: 1),
            EvaluationRecord(query: Query(id: "2", text: "y", task: "t"), model: "a", score: 0, cost: 1),
            EvaluationRecord(query: Query(id: "2", text: "y", task: "t"), model: "b", score: 0, cost: 1),
        ]).masked(by: [true, false, true, true])
        struct Fixed: Router {
            let models = ["a", "b"]
            let inputDimension = 1
            let score: Double
            func predict(features: Matrix) throws -> RouterPredictions {
                RouterPredictions(models: models, rows: features.rows, score: Array(repeating: score, count: features.rows * 2),
                                  cost: Array(repeating: 1, count: features.rows * 2), available: Array(repeating: true, count: features.rows * 2))
            }
        }
        let x = Matrix(rows: 2, cols: 1)
        // Model a observed as 1 and 0: MAE of 0.5-predictor is 0.5, of 0.9-predictor 0.5 too → 0.5.
        // Model b observed once as 0: global (0.1) error 0.1, local (0.6) error 0.6 → w_g = 0.6/0.7.
        let w = try Personalization.adaptiveWeights(global: Fixed(score: 0.1), local: Fixed(score: 0.6), features: x, table: t)
        #expect(abs(w.score[1] - 0.6 / 0.7) < 1e-12)
        #expect(abs(w.score[0] - 0.5) < 1e-12)   // e_g = 0.5 (|0.1−1|+|0.1−0|)/2, e_l = 0.5
        #expect(w.cost == [0.5, 0.5])            // both cost errors are 0
        #expect(Personalization.weight(nil, 0.3) == 0 && Personalization.weight(0.3, nil) == 1 && Personalization.weight(0, 0.2) == 1)
        let mixture = try Personalization.adaptiveMixture(global: Fixed(score: 0.1), local: Fixed(score: 0.6), features: x, table: t)
        let p = try mixture.predict(features: x)
        #expect(abs(p.score[1] - (0.6 / 0.7 * 0.1 + 0.1 / 0.7 * 0.6)) < 1e-12)
    }

    /// Issue 15 item 10: a negative learning rate or FedProx μ, or a minimum of valid updates above
    /// the client count, is refused by the library (every command gets the check), naming the setting.
    @Test func invalidFederatedSettingsAreRefusedNamingTheSetting() throws {
        var lr = Fixture.smallMLP
        lr.local.optimizer.learningRate = -1
        var mu = Fixture.smallMLP
        mu.local.proximalMu = -5
        var minimum = Fixture.smallMLP
        minimum.minimumClients = 4
        for (c, words) in [(lr, "learning rate"), (mu, "FedProx μ"), (minimum, "exceeds the 3 clients")] {
            #expect { try c.validate(clients: 3) } throws: { "\($0)".contains(words) }
        }
        #expect(throws: Never.self) { try Fixture.smallMLP.validate(clients: 3) }
    }

    /// Issue 15 item 2: a client describing itself with trainQueries = 2^63 − 1 (or just above the
    /// 2^40 limit) is an invalid reply naming the client, not an overflow trap in the count check.
    @Test func absurdDescriptionCountsAreAnInvalidReplyNotATrap() async throws {
        struct Describing: FederatedClient {
            let id = "liar"
            let description: ClientDescription
            func handle(_ request: FederatedRequest) async throws -> FederatedReply { .description(description) }
        }
        for queries in [Int.max, ClientDescription.maxTrainQueries + 1] {
            let liar = Describing(description: ClientDescription(models: ["a", "b", "c"], trainQueries: queries, trainableQueries: 10,
                                                                 observedCells: 10, featureDimension: 3))
            let coordinator = try FederationCoordinator(clients: [liar])
            await #expect { _ = try await coordinator.describe() } throws: { error in
                guard case FederationError.invalidReply(let client, let why)? = error as? FederationError else { return false }
                return client == "liar" && why.contains("inconsistent counts") && why.contains("\(queries)")
            }
        }
    }

    /// Issue 16 item 6 across a federation: a model no client observed is unavailable in the
    /// federated MLP-Router (the pooled observation counts say so) and in the federated K-Means-Router.
    @Test func aModelNoClientObservedIsUnavailableInTheFederatedRouters() async throws {
        let tables = try Fixture.shards(sizes: [30, 25]).map { t in
            t.masked(by: t.observed.indices.map { $0 % t.modelCount != t.modelCount - 1 })
        }
        let (coordinator, _, encoder) = try await Fixture.federation(tables)
        let (mlp, _) = try await coordinator.trainMLP(Fixture.smallMLP)
        var kc = FederatedKMeansConfiguration()
        kc.localClusters = 3
        kc.globalClusters = 3
        let (kmeans, _) = try await coordinator.trainKMeans(kc)
        #expect(mlp.costNormalizer.observations?.last == 0)
        let texts = tables[0].queries.map(\.text)
        for router in [AnyRouter(mlp), AnyRouter(kmeans)] {
            let p = try router.predict(features: encoder.encode(texts))
            let m = p.models.count
            #expect((0..<p.rows).allSatisfy { !p.available[$0 * m + m - 1] }, "\(router.family) offers the unseen model")
        }
    }

    @Test func crossFittingRemovesTheInSampleFlatteryOfAMemorisingLocalRouter() throws {
        let table = try Fixture.shards(sizes: [60])[0]
        var encoder = HashedTFIDFEncoder(configuration: Fixture.encoderConfiguration)
        encoder.fit(table.queries.map(\.text))
        let x = encoder.encode(table.queries.map(\.text))
        // One cluster per query and raw cell means: the local router reproduces every training cell exactly.
        func memorise(_ f: Matrix, _ t: EvaluationTable) throws -> any Router {
            var c = KMeansConfiguration(clusters: f.rows)
            c.restarts = 1
            let r = try KMeansRouter.train(features: f, table: t, configuration: c)
            return try KMeansRouter(models: r.models, resolutions: r.resolutions, shrinkage: .none)
        }
        var gc = KMeansConfiguration(clusters: 3)
        gc.restarts = 1
        let global = try KMeansRouter.train(features: x, table: table, configuration: gc)
        let inSample = try Personalization.adaptiveWeights(global: global, local: try memorise(x, table), features: x, table: table)
        #expect(inSample.score.allSatisfy { $0 < 0.01 })
        let crossFitted = try Personalization.crossFittedWeights(global: global, features: x, table: table, folds: 5, seed: 1, trainLocal: memorise)
        // Out of fold the memoriser is often wrong (or has no estimate), so the global router regains weight.
        #expect(crossFitted.score.reduce(0, +) / Double(crossFitted.score.count) > 0.3)
        #expect(throws: RouterError.self) { try Personalization.crossFittedWeights(global: global, features: x, table: table, folds: 1, seed: 1, trainLocal: memorise) }
    }

    /// The boundary: only parameters and aggregates leave a client. No reply contains a query text
    /// or id, no sent vector equals a local feature row, and no reply grows with the number of local
    /// queries (so no per-query label or embedding can be inside).
    @Test func noRawTextEmbeddingOrPerQueryLabelLeavesAClient() async throws {
        let sizes = [37, 91]
        let tables = try Fixture.shards(sizes: sizes)
        let inner = tables.enumerated().map { InProcessClient(id: "c\($0)", train: $1) }
        let recorders = inner.map { RecordingClient($0) }
        let coordinator = try FederationCoordinator(clients: recorders)
        let encoder = try await coordinator.fitHashedEncoder(Fixture.encoderConfiguration)
        _ = try await coordinator.useEncoder(.hashedTFIDF(configuration: encoder.configuration, idf: encoder.idf))
        _ = try await coordinator.trainMLP(Fixture.smallMLP)
        var kc = FederatedKMeansConfiguration()
        kc.localClusters = 4; kc.globalClusters = 3
        _ = try await coordinator.trainKMeans(kc)

        var shapes: [[String: [Int]]] = []
        for (i, recorder) in recorders.enumerated() {
            let replies = await recorder.replies
            #expect(Set(replies.map(\.request)) == ["documentFrequencies", "useEncoder", "describe", "costMoments", "trainMLP", "localCentroids", "clusterStatistics"])
            let (features, table) = try await inner[i].localData()
            var perKind: [String: [Int]] = [:]
            for (request, json) in replies {
                let text = String(decoding: json, as: UTF8.self)
                for q in table.queries {
                    #expect(!text.contains(q.text), "\(request) reply of c\(i) contains a query text")
                    #expect(!text.contains("\"\(q.id)\""), "\(request) reply of c\(i) contains a query id")
                }
                let arrays = Self.arrayLengths(try JSONSerialization.jsonObject(with: json))
                #expect(!arrays.contains(sizes[i]), "\(request) reply of c\(i) has an array as long as its query count")
                if request != "localCentroids" { perKind[request, default: []] += arrays.sorted() }
                // Every float vector that has the feature dimension must not be a local feature row.
                for vector in Self.floatVectors(try JSONSerialization.jsonObject(with: json), length: features.cols) {
                    for r in 0..<features.rows {
                        let row = features.row(r)
                        #expect(zip(vector, row).contains { abs($0 - $1) > 1e-6 }, "\(request) reply of c\(i) contains feature row \(r)")
                    }
                }
            }
            shapes.append(perKind)
        }
        // Same message shapes from a client with 37 and one with 91 queries.
        #expect(shapes[0] == shapes[1])
    }

    static func arrayLengths(_ object: Any) -> [Int] {
        if let a = object as? [Any] {
            // A flat numeric array is one message field; record its length.
            return [a.count] + a.flatMap { arrayLengths($0) }
        }
        if let d = object as? [String: Any] { return d.keys.sorted().flatMap { arrayLengths(d[$0]!) } }
        return []
    }

    static func floatVectors(_ object: Any, length: Int) -> [[Float]] {
        if let a = object as? [Any] {
            if let numbers = a as? [NSNumber], numbers.count > 0, numbers.count % length == 0 {
                let values = numbers.map(\.floatValue)
                return stride(from: 0, to: values.count, by: length).map { Array(values[$0..<($0 + length)]) }
            }
            return a.flatMap { floatVectors($0, length: length) }
        }
        if let d = object as? [String: Any] { return d.values.flatMap { floatVectors($0, length: length) } }
        return []
    }
}
