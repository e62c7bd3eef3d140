import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
@testable import FedRouteRouters
import Foundation
import Testing

/// Issue 16 item 4: the matrix-factorisation router.
@Suite struct MFRouterTests {
    /// A bilinear network: features × rank projection, then per-model embeddings and biases.
    static func network(seed: UInt64 = 11) -> MLPNetwork {
        MLPNetwork(architecture: MLPArchitecture(inputDimension: 5, hiddenDimension: 3, trunkLayers: 1, modelCount: 4, dropout: 0, trunk: .linear),
                   seed: seed)
    }

    @Test func theNetworkIsTheBilinearFormAndHasOnlyItsTensors() {
        let net = Self.network()
        #expect(net.parameters.map(\.name) == ["trunk.0.weight", "trunk.0.bias", "accuracy_head.weight", "accuracy_head.bias",
                                               "cost_head.weight", "cost_head.bias"])
        var rng = SeededRandom(seed: 2)
        let x = Matrix(rows: 3, cols: 5, data: (0..<15).map { _ in rng.nextFloat() * 2 - 1 })
        let (score, cost) = net.predict(x)
        // score(x, m) = σ(⟨W x + w₀, e_m⟩ + b_m), cost(x, m) = ⟨W x + w₀, g_m⟩ + c_m, computed by hand.
        let w = net.parameters[0].values, w0 = net.parameters[1].values
        let e = net.parameters[2].values, b = net.parameters[3].values, g = net.parameters[4].values, c = net.parameters[5].values
        for r in 0..<3 {
            let h = (0..<3).map { k in w0[k] + (0..<5).reduce(Float(0)) { $0 + x[r, $1] * w[$1 * 3 + k] } }
            for m in 0..<4 {
                let logit = b[m] + (0..<3).reduce(Float(0)) { $0 + h[$1] * e[$1 * 4 + m] }
                let normalizedCost = c[m] + (0..<3).reduce(Float(0)) { $0 + h[$1] * g[$1 * 4 + m] }
                #expect(abs(score[r, m] - 1 / (1 + Foundation.exp(-logit))) < 1e-5)
                #expect(abs(cost[r, m] - normalizedCost) < 1e-5)
            }
        }
    }

    @Test func analyticGradientMatchesFiniteDifferences() {
        let net = Self.network()
        var rng = SeededRandom(seed: 5)
        let x = Matrix(rows: 6, cols: 5, data: (0..<30).map { _ in rng.nextFloat() * 2 - 1 })
        // One observed model per query (the sparse case the MF-Router is for); model 3 never observed.
        let mask: [Float] = (0..<24).map { i in i % 4 == (i / 4) % 3 ? 1 : 0 }
        let t = MLPBatchTargets(score: (0..<24).map { Float($0 % 2) }, cost: (0..<24).map { Float($0) / 12 - 1 }, mask: mask)
        let (grads, checked) = expectGradientsMatchFiniteDifferences(net, x, t, stride: { _ in 1 }, absolute: 1e-3, relative: 0.02)
        #expect(checked == net.parameters.reduce(0) { $0 + $1.count })
        // The never-observed model's embedding and bias get exactly zero gradient.
        for row in 0..<3 { #expect(grads[2][row * 4 + 3] == 0 && grads[4][row * 4 + 3] == 0) }
        #expect(grads[3][3] == 0 && grads[5][3] == 0)
    }

    @Test func theScorePriorIsWhereTrainingStarts() throws {
        let table = try SyntheticData.table(queries: 80, seed: 4)
        let normalizer = CostNormalizer(fitting: table)
        let means = try #require(normalizer.scoreMean)
        for m in 0..<table.modelCount {
            let cells = (0..<table.queryCount).filter { table.isObserved($0, m) }
            let expected = cells.reduce(0.0) { $0 + table.scores[table.index($1, m)] } / Double(cells.count)
            #expect(abs((means[m] ?? -1) - expected) < 1e-12)
        }
        var net = Self.network()
        net.setScorePriors([0.5, 0.9, nil, 0.001])
        let bias = net.parameters[3].values
        #expect(abs(bias[0]) < 1e-6 && abs(bias[1] - Float(Foundation.log(9.0))) < 1e-5)
        #expect(bias[2] == Self.network().parameters[3].values[2], "a model without a prior keeps its initial bias")
        #expect(abs(bias[3] - Float(Foundation.log(0.02 / 0.98))) < 1e-5, "priors are clamped to [0.02, 0.98]")
        // Pooled moments give the same prior as the pooled table; a part without score sums gives none.
        let halves = [table.subset(Array(0..<40)), table.subset(Array(40..<80))]
        let pooled = CostNormalizer(moments: CostMoments(table: halves[0]) + CostMoments(table: halves[1]))
        #expect(zip(pooled.scoreMean!, means).allSatisfy { abs(($0 ?? 0) - ($1 ?? 0)) < 1e-12 })
        var old = CostMoments(table: halves[1])
        old.scoreSum = nil
        #expect(CostNormalizer(moments: CostMoments(table: halves[0]) + old).scoreMean == nil)
    }

    @Test func learnsRoutingFromOneLabelPerQueryAndIsDeterministic() throws {
        let (x, t) = try MLPTrainingTests.toyTable(400, seed: 1, sparse: true)
        var c = RouterTrainingConfiguration()
        c.mf.hiddenDimension = 4
        c.mf.epochs = 60
        c.mf.batchSize = 32
        c.mf.optimizer = AdamWConfiguration(learningRate: 2e-2, weightDecay: 1e-4)
        let router = try c.train(.mf, features: x, table: t, seed: 9)
        #expect(router.family == .mf)
        let p = try router.predict(features: x)
        #expect(p.choose(lambda: 1)[0] == 0 && p.choose(lambda: 1)[1] == 1)
        #expect(p.choose(lambda: 1e4)[1] == 0)  // at high λ the cheap model wins
        #expect(try c.train(.mf, features: x, table: t, seed: 9) == router)
    }

    @Test func withoutSignalItPredictsEachModelsPrior() throws {
        // Features that are pure noise: every model's predicted score stays near its training mean,
        // so the router routes as best-single@λ does.
        var table = EvaluationTable(models: ["strong", "weak"])
        var rng = SeededRandom(seed: 3)
        var x = Matrix(rows: 300, cols: 8)
        for r in 0..<300 {
            for j in 0..<8 { x[r, j] = rng.nextFloat() * 2 - 1 }
            let m = r % 2
            let score: Double = rng.nextDouble() < (m == 0 ? 0.8 : 0.4) ? 1 : 0
            try table.append(Query(id: "\(r)", text: "q\(r)", task: "t"), cells: [m: (score, m == 0 ? 0.01 : 0.001)])
        }
        var c = RouterTrainingConfiguration()
        c.mf.epochs = 5
        let router = try c.train(.mf, features: x, table: table, seed: 1)
        let p = try router.predict(features: x)
        let means = try #require(CostNormalizer(fitting: table).scoreMean)
        for m in 0..<2 {
            let predicted = (0..<300).reduce(0.0) { $0 + p.score[$1 * 2 + m] } / 300
            #expect(abs(predicted - means[m]!) < 0.08, "model \(m): mean prediction \(predicted), prior \(means[m]!)")
        }
        #expect(p.choose(lambda: 0).allSatisfy { $0 == 0 }, "with no signal the best single model is always chosen at λ 0")
    }

    @Test func routerFilesRoundTripAndFamiliesAreNotConfused() throws {
        let table = try SyntheticData.table(queries: 50, seed: 2)
        let texts = table.queries.map(\.text)
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 24))
        encoder.fit(texts)
        var c = RouterTrainingConfiguration()
        c.mf.hiddenDimension = 5
        c.mf.epochs = 2
        let router = try c.train(.mf, features: encoder.encode(texts), table: table, seed: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/mf.safetensors"
        try RouterFile.save(try RoutingPipeline(encoder: encoder, router: router), to: path)
        let loaded = try RouterFile.load(path: path)
        #expect(loaded.router == router && loaded.router.family == .mf)
        #expect(try loaded.predict(texts: texts) == router.predict(features: encoder.encode(texts)))
        let (tensors, meta) = try SafeTensors.read(path: path)
        #expect(tensors.keys.sorted() == ["encoder.idf", "mf.accuracy_head.bias", "mf.accuracy_head.weight", "mf.cost_head.bias",
                                          "mf.cost_head.weight", "mf.trunk.0.bias", "mf.trunk.0.weight"])
        #expect(meta["mf.architecture"]?.contains(#""trunk":"linear""#) == true)

        // An MLP file whose architecture claims a linear trunk, and an MF file with a GELU trunk, are refused.
        var mlpMeta = meta, mfMeta = meta
        var asMLP: [String: Tensor] = [:]
        for (k, v) in tensors { asMLP[k.replacingOccurrences(of: "mf.", with: "mlp.")] = Tensor(name: k.replacingOccurrences(of: "mf.", with: "mlp."), shape: v.shape, values: v.values) }
        mlpMeta["kind"] = "mlp"
        mlpMeta["mlp.architecture"] = meta["mf.architecture"]
        mlpMeta["mlp.cost_normalizer"] = meta["mf.cost_normalizer"]
        try SafeTensors.write(tensors: Array(asMLP.values), metadata: mlpMeta, to: dir + "/linear-mlp.safetensors")
        #expect { try RouterFile.load(path: dir + "/linear-mlp.safetensors") } throws: { "\($0)".contains("an MLP-Router's is gelu") }
        mfMeta["mf.architecture"] = meta["mf.architecture"]!.replacingOccurrences(of: #","trunk":"linear""#, with: "")
        try SafeTensors.write(tensors: Array(tensors.values), metadata: mfMeta, to: dir + "/gelu-mf.safetensors")
        #expect { try RouterFile.load(path: dir + "/gelu-mf.safetensors") } throws: { "\($0)".contains("mf.") }
    }

    @Test func anArchitectureWithoutATrunkKeyIsTheMLP() throws {
        let old = #"{"inputDimension":4,"hiddenDimension":8,"trunkLayers":2,"modelCount":3,"dropout":0.1}"#
        let a = try JSONDecoder().decode(MLPArchitecture.self, from: Data(old.utf8))
        #expect(a.trunk == .gelu)
        // ... and the MLP's encoding is unchanged by the new key, so MLP files keep their bytes.
        #expect(String(decoding: try JSONEncoder().encode(a), as: UTF8.self).contains(#""trunk":"#) == false)
        var linear = a
        linear.trunk = .linear
        #expect(try JSONDecoder().decode(MLPArchitecture.self, from: JSONEncoder().encode(linear)) == linear)
        #expect(linear.parameterShapes.count == 2 * 2 + 4, "a linear layer has no LayerNorm tensors")
    }
}
