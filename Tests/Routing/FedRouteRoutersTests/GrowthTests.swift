import FedRouteData
import FedRouteNumerics
@testable import FedRouteRouters
import Testing

@Suite struct GrowthTests {
    static func network(models: Int = 2) -> MLPNetwork {
        MLPNetwork(architecture: MLPArchitecture(inputDimension: 4, hiddenDimension: 8, trunkLayers: 2, modelCount: models, dropout: 0), seed: 3)
    }

    @Test func addingModelsKeepsExistingPredictions() throws {
        let net = Self.network()
        let grown = try net.addingModels(2, seed: 1)
        #expect(grown.architecture.modelCount == 4)
        let x = Matrix(rows: 3, cols: 4, data: (0..<12).map { Float($0) / 12 - 0.5 })
        let (s0, c0) = net.predict(x)
        let (s1, c1) = grown.predict(x)
        for r in 0..<3 {
            for m in 0..<2 {
                #expect(abs(s0[r, m] - s1[r, m]) < 1e-6 && abs(c0[r, m] - c1[r, m]) < 1e-6)
            }
        }
    }

    @Test func frozenParametersDoNotMoveAndNewHeadsLearn() throws {
        let (x, t) = try MLPTrainingTests.toyTable(64, seed: 2, sparse: false)
        let small = Self.network(models: 1)
        var net = try small.addingModels(1, seed: 5)
        let before = net.parameters
        let normalizer = CostNormalizer(fitting: t)
        let data = try MLPTrainingSet(features: x, table: t, normalizer: normalizer)
        var opt = AdamW(configuration: AdamWConfiguration(learningRate: 1e-2, weightDecay: 0.1), shapes: net.parameters.map(\.count), decayMask: net.decayMask)
        var rng = SeededRandom(seed: 0)
        let frozen = net.freezeAllButModels(from: 1)
        let (bx, bt) = data.batch(data.trainableRows)
        let lossBefore = net.loss(bx, bt)
        for _ in 0..<30 {
            _ = try MLPTrainer.runEpoch(network: &net, optimizer: &opt, data: data, rows: data.trainableRows, batchSize: 16,
                                        gradientClip: 1, rng: &rng, options: LocalTrainingOptions(frozen: frozen))
        }
        for (i, t) in net.parameters.enumerated() {
            for j in t.values.indices where frozen[i][j] { #expect(t.values[j] == before[i].values[j], "\(t.name)[\(j)] moved") }
        }
        #expect(net.parameters[net.accuracyHeadIndex].values != before[net.accuracyHeadIndex].values)
        #expect(net.loss(bx, bt) < lossBefore)
    }

    @Test func distillationPullsTowardsTheTeacher() throws {
        let (x, t) = try MLPTrainingTests.toyTable(64, seed: 4, sparse: true)
        let teacher = Self.network()
        let data = try MLPTrainingSet(features: x, table: t, normalizer: CostNormalizer(fitting: t))
        func distance(weight: Float) throws -> Float {
            var net = teacher
            var opt = AdamW(configuration: AdamWConfiguration(learningRate: 1e-2), shapes: net.parameters.map(\.count))
            var rng = SeededRandom(seed: 1)
            for _ in 0..<20 {
                _ = try MLPTrainer.runEpoch(network: &net, optimizer: &opt, data: data, rows: data.trainableRows, batchSize: 16, gradientClip: 1,
                                            rng: &rng, options: LocalTrainingOptions(teacher: teacher, distillationWeight: weight))
            }
            let (a, _) = net.predict(x), (b, _) = teacher.predict(x)
            return zip(a.data, b.data).reduce(0) { $0 + abs($1.0 - $1.1) }
        }
        #expect(try distance(weight: 5) < distance(weight: 0))
    }

    @Test func optionsOfTheWrongShapeAreRejected() throws {
        let (x, t) = try MLPTrainingTests.toyTable(8, seed: 1, sparse: false)
        var net = Self.network()
        let data = try MLPTrainingSet(features: x, table: t, normalizer: CostNormalizer(fitting: t))
        var opt = AdamW(configuration: AdamWConfiguration(), shapes: net.parameters.map(\.count))
        var rng = SeededRandom(seed: 0)
        #expect(throws: RouterError.self) {
            try MLPTrainer.runEpoch(network: &net, optimizer: &opt, data: data, rows: [0], batchSize: 4, gradientClip: 1, rng: &rng,
                                    options: LocalTrainingOptions(proximalMu: 0.1, proximalAnchor: [Tensor(name: "x", shape: [1], values: [0])]))
        }
        #expect(throws: RouterError.self) {
            try MLPTrainer.runEpoch(network: &net, optimizer: &opt, data: data, rows: [0], batchSize: 4, gradientClip: 1, rng: &rng,
                                    options: LocalTrainingOptions(proximalMu: -1))
        }
    }

    @Test func costMomentsPoolToTheUnionsNormalizer() throws {
        let (_, t) = try MLPTrainingTests.toyTable(40, seed: 8, sparse: true)
        let a = t.subset(Array(0..<15)), b = t.subset(Array(15..<40))
        let pooled = CostNormalizer(moments: CostMoments(table: a) + CostMoments(table: b))
        let direct = CostNormalizer(fitting: t)
        for m in 0..<2 {
            #expect(abs(pooled.mean[m] - direct.mean[m]) < 1e-12 && abs(pooled.std[m] - direct.std[m]) < 1e-9)
        }
    }

    @Test func kmeansStatisticsAreAdditiveAndGrowByModels() throws {
        let (x, t) = try MLPTrainingTests.toyTable(30, seed: 3, sparse: true)
        let router = try KMeansRouter.train(features: x, table: t, configuration: KMeansConfiguration(clusters: 3))
        let only = router.resolutions[0]
        let first = try ClusterStatistics(centroids: only.centroids, features: x.gatherRows(Array(0..<10)), table: t.subset(Array(0..<10)))
        let rest = try ClusterStatistics(centroids: only.centroids, features: x.gatherRows(Array(10..<30)), table: t.subset(Array(10..<30)))
        #expect(first + rest == only.statistics)
        let partial = try KMeansRouter(models: router.models, centroids: only.centroids, statistics: first)
        #expect(try partial.adding([rest]) == router)
        #expect(throws: RouterError.self, "one set of statistics per clustering") { try partial.adding([rest, rest]) }
        let grown = try router.addingModels(["c"])
        let p = try grown.predict(features: x)
        #expect(p.models == ["a", "b", "c"])
        #expect((0..<30).allSatisfy { !p.available[$0 * 3 + 2] })
        #expect(throws: RouterError.self) { try router.addingModels(["a"]) }
    }
}
