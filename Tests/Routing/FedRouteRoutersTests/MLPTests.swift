import FedRouteData
import FedRouteNumerics
@testable import FedRouteRouters
import Testing

@Suite struct MLPGradientTests {
    func setup() -> (MLPNetwork, Matrix, MLPBatchTargets) {
        let arch = MLPArchitecture(inputDimension: 5, hiddenDimension: 6, trunkLayers: 2, modelCount: 3, dropout: 0)
        let net = MLPNetwork(architecture: arch, seed: 11)
        var rng = SeededRandom(seed: 5)
        let x = Matrix(rows: 4, cols: 5, data: (0..<20).map { _ in rng.nextFloat() * 2 - 1 })
        // Model 2 is unobserved everywhere; model 1 only on rows 0 and 3.
        let mask: [Float] = [1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0]
        let t = MLPBatchTargets(score: (0..<12).map { Float($0 % 2) }, cost: (0..<12).map { Float($0) / 6 - 1 }, mask: mask)
        return (net, x, t)
    }

    /// Inputs longer than a prediction block go through in blocks (issue 19: a 25,000-row test set's
    /// activations were mapped and faulted in afresh on every call). Each row gets its own outputs, equal to
    /// one pass's up to float rounding: the GEMM's row split over threads moves with the rows in a call, and
    /// OpenBLAS rounds rows at a split's edges differently (measured: 1.8 × 10⁻⁷ at most). A 1,000-client
    /// simulation's reports are byte-identical with and without the blocks.
    @Test func predictionInBlocksGivesEachRowItsOutputsToRounding() {
        let arch = MLPArchitecture(inputDimension: 1024, hiddenDimension: 512, trunkLayers: 2, modelCount: 11, dropout: 0)
        let net = MLPNetwork(architecture: arch, seed: 3)
        var rng = SeededRandom(seed: 8)
        let rows = 2 * MLPNetwork.predictionBlockRows + 37
        let x = Matrix(rows: rows, cols: 1024, data: (0..<(rows * 1024)).map { _ in rng.nextFloat() < 0.1 ? rng.nextFloat() : 0 })
        let (score, cost) = net.predict(x)
        let whole = net.predictBlock(x)
        #expect(score.rows == rows && score.cols == 11 && cost.rows == rows && cost.cols == 11)
        func largestGap(_ a: Matrix, _ b: Matrix) -> Float { zip(a.data, b.data).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) } }
        #expect(largestGap(score, whole.score) <= 1e-6 && largestGap(cost, whole.normalizedCost) <= 1e-6)
        // Rows in the last, short block come out as they do on their own block.
        let tail = net.predictBlock(x.gatherRows(Array((2 * MLPNetwork.predictionBlockRows)..<rows)))
        #expect(Array(score.data.suffix(37 * 11)) == tail.score.data && Array(cost.data.suffix(37 * 11)) == tail.normalizedCost.data)
    }

    @Test func analyticGradientMatchesFiniteDifferences() {
        let (net, x, t) = setup()
        let checked = expectGradientsMatchFiniteDifferences(net, x, t, stride: { $0 / 7 }, absolute: 2e-3, relative: 0.03).checked
        #expect(checked > 50)
    }

    /// Sparse inputs (hashed TF-IDF) take `SparseRows`' first-layer products; their gradients must
    /// match finite differences as the dense path's do, with zero gradient rows for unused inputs.
    @Test func sparseInputGradientMatchesFiniteDifferences() throws {
        let arch = MLPArchitecture(inputDimension: 64, hiddenDimension: 6, trunkLayers: 2, modelCount: 3, dropout: 0)
        let net = MLPNetwork(architecture: arch, seed: 12)
        var x = Matrix(rows: 4, cols: 64)
        for (r, c, value) in [(0, 3, Float(0.7)), (0, 40, -0.5), (1, 3, 0.2), (2, 17, 1.1), (3, 63, -0.9), (3, 40, 0.4)] { x[r, c] = value }
        _ = try #require(SparseRows(x))
        let (_, _, t) = setup()
        let grads = expectGradientsMatchFiniteDifferences(net, x, t, stride: { $0 / 40 }, absolute: 2e-3, relative: 0.03).gradients
        // First-layer rows of inputs no query uses get exactly no gradient; used ones get some.
        for input in 0..<64 {
            let row = grads[0][(input * 6)..<((input + 1) * 6)]
            #expect(row.allSatisfy { $0 == 0 } == ![3, 17, 40, 63].contains(input), "input \(input)")
        }
    }

    @Test func unobservedCellsGiveNoGradient() {
        let (net, x, t) = setup()
        var rng = SeededRandom(seed: 0)
        let (loss, grads) = net.lossAndGradients(x, t, training: true, rng: &rng)
        // The heads of the never-observed model 2 receive exactly zero gradient.
        let m = 3
        for head in [net.accuracyHeadIndex, net.costHeadIndex] {
            for row in 0..<6 { #expect(grads[head][row * m + 2] == 0) }
            #expect(grads[head + 1][2] == 0)
        }
        // Changing the targets of unobserved cells changes neither loss nor gradients.
        var t2 = t
        for i in t2.mask.indices where t2.mask[i] == 0 { t2.score[i] = 0.123; t2.cost[i] = 2.5 }
        var rng2 = SeededRandom(seed: 0)
        let (loss2, grads2) = net.lossAndGradients(x, t2, training: true, rng: &rng2)
        #expect(loss == loss2 && grads == grads2)
    }
}

@Suite struct MLPTrainingTests {
    /// Two query "tasks" (features ±e1); model 0 is good on task A, model 1 on task B, model 1 is dearer.
    static func toyTable(_ n: Int, seed: UInt64, sparse: Bool) throws -> (Matrix, EvaluationTable) {
        var rng = SeededRandom(seed: seed)
        var t = EvaluationTable(models: ["a", "b"])
        var x = Matrix(rows: n, cols: 4)
        for r in 0..<n {
            let taskA = r % 2 == 0
            x[r, 0] = taskA ? 1 : -1
            x[r, 1] = rng.nextFloat() * 0.2
            var cells: [Int: (score: Double, cost: Double)] = [0: (taskA ? 1 : 0, 0.001), 1: (taskA ? 0 : 1, 0.01)]
            if sparse { cells.removeValue(forKey: rng.nextInt(below: 2)) }
            try t.append(Query(id: "\(r)", text: "q\(r)", task: taskA ? "A" : "B"), cells: cells)
        }
        return (x, t)
    }

    @Test func learnsToyRoutingAndIsDeterministic() throws {
        let (x, t) = try Self.toyTable(200, seed: 1, sparse: true)
        var c = MLPTrainingConfiguration()
        c.hiddenDimension = 16; c.epochs = 40; c.batchSize = 32; c.dropout = 0; c.seed = 9
        c.optimizer.learningRate = 1e-2
        let router = try MLPTrainer.train(features: x, table: t, configuration: c)
        let p = try router.predict(features: x)
        #expect(p.choose(lambda: 1)[0] == 0 && p.choose(lambda: 1)[1] == 1)
        #expect(p.choose(lambda: 1e4)[1] == 0)  // at high λ the cheap model wins
        #expect(abs(p.cost[0] - 0.001) < 3e-4 && abs(p.cost[1] - 0.01) < 3e-3)
        let again = try MLPTrainer.train(features: x, table: t, configuration: c)
        #expect(again == router)
        #expect(throws: RouterError.self) { try router.predict(features: Matrix(rows: 1, cols: 3)) }
        #expect(throws: RouterError.self) { try router.predict(features: Matrix(rows: 1, cols: 4, repeating: .nan)) }
    }

    @Test func routingRuleSkipsUnavailableAndBreaksTiesByCost() {
        let p = RouterPredictions(models: ["x", "y", "z"], rows: 2, score: [0.9, 0.5, 0.5, 0.2, 0.2, 0.1],
                                  cost: [1, 2, 1, 0.5, 0.1, 0.0], available: [false, true, true, true, true, true])
        #expect(p.choose(lambda: 0) == [2, 1])
        #expect(p.choose(lambda: 10) == [2, 2])
        // The fallback order starts with the chosen model and puts unavailable models last.
        #expect(p.ranked(row: 0, lambda: 0) == [2, 1, 0])
        #expect(p.ranked(row: 1, lambda: 0) == [1, 0, 2])
        #expect(p.ranked(row: 1, lambda: 10) == [2, 1, 0])
        for lambda in [0.0, 0.1, 1, 10] {
            #expect((0..<2).map { p.ranked(row: $0, lambda: lambda)[0] } == p.choose(lambda: lambda))
        }
    }
}
