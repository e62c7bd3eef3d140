import FedRouteData
@testable import FedRouteMetaRouter
import FedRouteNumerics
import Foundation
import Testing

@Suite struct MetaRouterTests {
    /// x ~ N(0, I_8); ψ = w·x; Δ = 0.5 + v·x; gold r = ψ + noise; judge y = ψ − Δ + noise.
    static func synthetic(gold: Int, judge: Int, seed: UInt64) throws -> (shard: MetaRouterShard, w: [Double], v: [Double], test: Matrix) {
        var rng = SeededRandom(seed: seed)
        let d = 8
        let w = (0..<d).map { _ in rng.nextGaussian() }
        let v = (0..<d).map { _ in 0.3 * rng.nextGaussian() }
        let n = gold + judge
        var x = Matrix(rows: n, cols: d)
        for i in x.data.indices { x.data[i] = Float(rng.nextGaussian()) }
        var labels: [Double] = []
        for r in 0..<n {
            let xr = (0..<d).map { Double(x[r, $0]) }
            let psi = zip(w, xr).map(*).reduce(0, +)
            let delta = 0.5 + zip(v, xr).map(*).reduce(0, +)
            labels.append(r < gold ? psi + 0.5 * rng.nextGaussian() : psi - delta + 0.5 * rng.nextGaussian())
        }
        var test = Matrix(rows: 500, cols: d)
        for i in test.data.indices { test.data[i] = Float(rng.nextGaussian()) }
        let shard = try MetaRouterShard(features: x, isGold: (0..<n).map { $0 < gold }, label: labels, fold: (0..<n).map { $0 % 5 })
        return (shard, w, v, test)
    }

    static func rmse(_ model: GainModel, w: [Double], test: Matrix) -> Double {
        let p = model.predict(test, rows: Array(0..<test.rows))
        let se = (0..<test.rows).map { r -> Double in
            let truth = (0..<w.count).map { w[$0] * Double(test[r, $0]) }.reduce(0, +)
            return (p[r] - truth) * (p[r] - truth)
        }
        return (se.reduce(0, +) / Double(test.rows)).squareRoot()
    }

    @Test func rAndDRLearnersRecoverTheBiasAndBeatTheBaselines() throws {
        let (shard, w, v, test) = try Self.synthetic(gold: 40, judge: 3000, seed: 3)
        var c = MetaRouterConfiguration()
        c.alignment = .none
        var errors: [GainEstimator: Double] = [:]
        for e in GainEstimator.allCases {
            for propensity in PropensityModel.allCases {
                c.propensity = propensity
                let model = try MetaRouter.fit(e, shards: [shard], configuration: c)
                if propensity == .constant { errors[e] = Self.rmse(model, w: w, test: test) }
                if e == .rLearner || e == .drLearner {
                    // Δ̂ has the right intercept and direction.
                    let bias = try #require(model.bias)
                    let dot: Double = zip(bias.weights, v).map(*).reduce(0, +)
                    let normBias: Double = bias.weights.map { $0 * $0 }.reduce(0, +).squareRoot()
                    let normV: Double = v.map { $0 * $0 }.reduce(0, +).squareRoot()
                    let cosine = dot / (normBias * normV)
                    #expect(cosine > 0.95, "\(e) \(propensity): cosine \(cosine)")
                    #expect(abs(bias.intercept - 0.5) < 0.15, "\(e) \(propensity): intercept \(bias.intercept)")
                }
            }
        }
        // Corrected judge labels beat every uncorrected use of them; the R-learner also beats gold
        // alone. (The DR-learner's pseudo-outcomes divide gold residuals by ê ≈ 40/3040, and at this
        // ratio its variance leaves it behind gold-only: measured 0.17 vs 0.14 RMSE.)
        for corrected in [GainEstimator.rLearner, .drLearner] {
            for baseline in [GainEstimator.judgeOnly, .pooled, .meanShift] {
                #expect(errors[corrected]! < errors[baseline]! / 4, "\(corrected) \(errors[corrected]!) vs \(baseline) \(errors[baseline]!)")
            }
        }
        #expect(errors[.rLearner]! < errors[.goldOnly]!, "r-learner \(errors[.rLearner]!) vs gold-only \(errors[.goldOnly]!)")
    }

    /// The bias depends only on x₀ (Δ = 0.5 + 0.6·x₀): with that one column as the bias design,
    /// 30 gold rows suffice to recover it, and federated still equals centralized.
    @Test func aSimpleBiasDesignRecoversALowDimensionalBias() throws {
        var rng = SeededRandom(seed: 11)
        let (gold, judge, d) = (30, 3000, 8)
        let w = (0..<d).map { _ in rng.nextGaussian() }
        var x = Matrix(rows: gold + judge, cols: d)
        for i in x.data.indices { x.data[i] = Float(rng.nextGaussian()) }
        let labels = (0..<(gold + judge)).map { r -> Double in
            let psi = (0..<d).map { w[$0] * Double(x[r, $0]) }.reduce(0, +)
            return r < gold ? psi + 0.5 * rng.nextGaussian() : psi - (0.5 + 0.6 * Double(x[r, 0])) + 0.5 * rng.nextGaussian()
        }
        let column = Matrix(rows: x.rows, cols: 1, data: (0..<x.rows).map { x[$0, 0] })
        let isGold = (0..<(gold + judge)).map { $0 < gold }
        let fold = (0..<(gold + judge)).map { $0 % 5 }
        let shard = try MetaRouterShard(features: x, isGold: isGold, label: labels, fold: fold, biasFeatures: column)
        var c = MetaRouterConfiguration()
        c.alignment = .none
        for e in [GainEstimator.rLearner, .drLearner] {
            let bias: RidgeModel = try #require(try MetaRouter.fit(e, shards: [shard], configuration: c).bias)
            let slope: Double = bias.weights[0]
            let intercept: Double = bias.intercept
            #expect(bias.weights.count == 1)
            #expect(abs(slope - 0.6) < 0.2 && abs(intercept - 0.5) < 0.2, "\(e): slope \(slope), intercept \(intercept)")
            // Federated over two shards = centralized.
            let halves: [MetaRouterShard] = try [Array(0..<1500), Array(1500..<(gold + judge))].map { (rows: [Int]) -> MetaRouterShard in
                try MetaRouterShard(features: x.gatherRows(rows), isGold: rows.map { isGold[$0] }, label: rows.map { labels[$0] },
                                    fold: rows.map { fold[$0] }, biasFeatures: column.gatherRows(rows))
            }
            let central: [Double] = try MetaRouter.fit(e, shards: [shard], configuration: c).predict(x, rows: Array(0..<50))
            let federated: [Double] = try MetaRouter.fit(e, shards: halves, configuration: c).predict(x, rows: Array(0..<50))
            let gap: Double = zip(central, federated).map { abs($0 - $1) }.max() ?? 0
            #expect(gap < 1e-4)
        }
        // Shards must agree on having a bias design.
        let plain = try MetaRouterShard(features: x, isGold: isGold, label: labels, fold: fold)
        #expect(throws: MetaRouterError.self) { try MetaRouter.fit(.rLearner, shards: [shard, plain], configuration: c) }
        #expect(throws: MetaRouterError.self) { try MetaRouterShard(features: x, isGold: isGold, label: labels, fold: fold, biasFeatures: Matrix(rows: 3, cols: 1)) }
    }

    @Test func federatedFitEqualsCentralized() throws {
        let (shard, _, _, test) = try Self.synthetic(gold: 100, judge: 1000, seed: 5)
        var rng = SeededRandom(seed: 1)
        let owner = (0..<shard.features.rows).map { _ in rng.nextInt(below: 4) }
        let shards = try (0..<4).map { c in
            let rows = (0..<shard.features.rows).filter { owner[$0] == c }
            return try MetaRouterShard(features: shard.features.gatherRows(rows), isGold: rows.map { shard.isGold[$0] },
                                       label: rows.map { shard.label[$0] }, fold: rows.map { shard.fold[$0] })
        }
        for alignment in ScaleAlignment.allCases {
            for propensity in PropensityModel.allCases {
                var c = MetaRouterConfiguration()
                c.alignment = alignment
                c.propensity = propensity
                for e in GainEstimator.allCases {
                    let a = try MetaRouter.fit(e, shards: [shard], configuration: c).predict(test, rows: Array(0..<test.rows))
                    let b = try MetaRouter.fit(e, shards: shards, configuration: c).predict(test, rows: Array(0..<test.rows))
                    let diff = zip(a, b).map { abs($0 - $1) }.max()!
                    #expect(diff < 1e-4, "\(e) \(alignment) \(propensity): \(diff)")
                }
            }
        }
    }

    @Test func ridgeAndCholeskyMatchClosedForm() throws {
        // y = 2x − 1 exactly: tiny ridge recovers it.
        let x = Matrix(rows: 4, cols: 1, data: [0, 1, 2, 3])
        let model = try RidgeStatistics(features: x, rows: [0, 1, 2, 3], z: [-1, 1, 3, 5]).solve(lambda: 1e-9)
        #expect(abs(model.weights[0] - 2) < 1e-6 && abs(model.intercept + 1) < 1e-6)
        // Statistics of disjoint row sets add up.
        let whole = RidgeStatistics(features: x, rows: [0, 1, 2, 3], z: [-1, 1, 3, 5], weights: [1, 2, 3, 4])
        let parts = RidgeStatistics(features: x, rows: [0, 2], z: [-1, 3], weights: [1, 3]) + RidgeStatistics(features: x, rows: [1, 3], z: [1, 5], weights: [2, 4])
        #expect(zip(whole.xtx, parts.xtx).allSatisfy { abs($0 - $1) < 1e-9 } && whole.weight == parts.weight)
        #expect(try LinearSolve.cholesky([4, 2, 2, 3], [2, 1], n: 2).enumerated().allSatisfy { abs($1 - [0.5, 0][$0]) < 1e-12 })
        #expect(throws: LinearSolve.Failure.self) { try LinearSolve.cholesky([1, 2, 2, 1], [1, 1], n: 2) }
    }

    @Test func alignmentMapsGoldOntoTheJudgeScaleAndBack() throws {
        var rng = SeededRandom(seed: 2)
        let gold = (0..<2000).map { _ in Double(rng.nextInt(below: 3) - 1) }
        let judge = (0..<4000).map { _ in 5 + 2 * rng.nextGaussian() }
        let shard = try MetaRouterShard(features: Matrix(rows: 6000, cols: 1), isGold: (0..<6000).map { $0 < 2000 }, label: gold + judge, fold: (0..<6000).map { $0 % 5 })
        let v = try MetaRouter.align([shard], kind: .varianceRatio)
        #expect(abs(v.toJudge(0) - 5) < 0.2 && abs(v.toGold(v.toJudge(0.7)) - 0.7) < 1e-9)
        let q = try MetaRouter.align([shard], kind: .quantile)
        #expect(q.toJudge(-1) < q.toJudge(0) && q.toJudge(0) < q.toJudge(1))
        #expect(abs(q.toJudge(0) - 5) < 0.2)  // the middle third of gold maps to the judge's median
        #expect(abs(q.toGold(q.toJudge(1)) - 1) < 0.05)
    }

    @Test func gainCurveIsZeroAtBothEndsAndPerfectRankingIsBest() {
        let gold: [Double] = [1, 0, -1, 1, 0, 0, -1, 1]
        let grid = [0, 0.25, 0.5, 0.75, 1.0]
        let perfect = MetaRouterExperiment.gains(score: gold, gold: gold, grid: grid)
        #expect(abs(perfect[0]) < 1e-12 && abs(perfect[4]) < 1e-12)
        #expect(perfect[1] > 0 && perfect[2] > 0)
        let reversed = MetaRouterExperiment.gains(score: gold.map { -$0 }, gold: gold, grid: grid)
        #expect(zip(perfect, reversed).allSatisfy { $0 >= $1 } && reversed[2] < 0)
    }

    @Test func judgedPairSimulationIsSeededAndRejectsUnknownModels() throws {
        var t = EvaluationTable(models: ["big", "small"])
        for i in 0..<60 { try t.append(Query(id: "\(i)", text: String(repeating: "w ", count: 1 + i), task: i % 2 == 0 ? "a" : "b"), cells: [0: (Double(i % 2), 0.01), 1: (Double(i % 3 == 0 ? 1 : 0), 0.001)]) }
        let a = try JudgedPair(table: t, primary: "big", alternative: "small", seed: 4)
        let b = try JudgedPair(table: t, primary: "big", alternative: "small", seed: 4)
        #expect(a.judge == b.judge && a.gold.count == 60 && abs(a.costGap[0] - 0.009) < 1e-12)
        #expect(throws: MetaRouterError.self) { try JudgedPair(table: t, primary: "huge", alternative: "small", seed: 4) }
    }

    @Test func multiModelRoutingPicksTheBestNetGainOrTheReference() {
        // Row 0: candidate 1 gains most net of cost; row 1: nothing pays for itself → reference.
        let gains = [[0.5, 0.1], [0.6, 0.05]], gaps = [[0.001, 0.001], [0.0005, 0.001]]
        #expect(MultiModelMetaRouter.route(gains: gains, costGaps: gaps, weight: 0) == [1, 0])
        #expect(MultiModelMetaRouter.route(gains: gains, costGaps: gaps, weight: 100) == [1, -1])
        #expect(MultiModelMetaRouter.route(gains: gains, costGaps: gaps, weight: 1e4) == [-1, -1])
    }

    @Test func multiModelExperimentDebiasesEachCandidateAndFederatesExactly() throws {
        // Reference "ref" and three candidates with query-dependent correctness over 2 tasks.
        var rng = SeededRandom(seed: 11)
        let models = ["a", "b", "c", "ref"]
        var queries: [Query] = [], scores: [Double] = [], costs: [Double] = []
        for r in 0..<400 {
            let task = r % 2 == 0 ? "t1" : "t2"
            queries.append(Query(id: "q\(r)", text: "\(task) question \(r) " + String(repeating: "word ", count: 1 + r % 7), task: task))
            let p: [Double] = task == "t1" ? [0.8, 0.5, 0.9, 0.4] : [0.3, 0.7, 0.9, 0.5]
            scores += p.map { rng.nextDouble() < $0 ? 1 : 0 }
            costs += [2e-4, 3e-4, 5e-3, 1e-4]
        }
        let table = try EvaluationTable(models: models, queries: queries, scores: scores, costs: costs, observed: Array(repeating: true, count: scores.count))
        let judged = try JudgedModels(table: table, reference: "ref", candidates: ["a", "b", "c"], seed: 3)
        #expect(judged.count == 400 && judged.candidates.map(\.primary) == ["a", "b", "c"])
        #expect(judged.candidates[0].gold[0] == table.score(0, 0)! - table.score(0, 3)!)
        var features = Matrix(rows: 400, cols: 2)
        for r in 0..<400 { features[r, 0] = r % 2 == 0 ? 1 : 0; features[r, 1] = r % 2 == 0 ? 0 : 1 }
        var settings = MultiModelMetaRouter.Settings()
        settings.goldSizes = [40]
        settings.judgeSize = 200
        settings.splits = 3
        let result = try MultiModelMetaRouter.run(models: judged, features: features, settings: settings)
        #expect(result.federatedMaxDifference < 1e-5)  // Float features: summation order differs
        #expect(result.methods.count == MultiModelMetaRouter.methods.count)
        #expect(result.methods.allSatisfy { $0.medianArea.isFinite && $0.medianArea > 0 })
        // Routing on the oracle's gains can use every candidate where it pays: at least the single models' area.
        let oracle = result.methods.first { $0.method == "oracle" }!
        #expect(oracle.medianArea >= result.singleModelsMedianArea - 1e-9)
        #expect(throws: MetaRouterError.self) { try JudgedModels(table: table, reference: "ref", candidates: ["a", "zzz"], seed: 0) }
        #expect(throws: MetaRouterError.self) { try JudgedModels(table: table, reference: "ref", candidates: ["ref"], seed: 0) }
    }
}

@Suite struct MetaRouterReportWriterTests {
    @Test func writesTheTwoModelAndTheMModelReports() throws {
        var rng = SeededRandom(seed: 5)
        let models = ["a", "ref"]
        var queries: [Query] = [], scores: [Double] = [], costs: [Double] = []
        for r in 0..<300 {
            let task = r % 2 == 0 ? "t1" : "t2"
            queries.append(Query(id: "q\(r)", text: "\(task) question \(r) " + String(repeating: "word ", count: 1 + r % 5), task: task))
            scores += (task == "t1" ? [0.8, 0.4] : [0.5, 0.6]).map { rng.nextDouble() < $0 ? 1 : 0 }
            costs += [2e-3, 1e-4]
        }
        let table = try EvaluationTable(models: models, queries: queries, scores: scores, costs: costs, observed: Array(repeating: true, count: scores.count))
        let judged = try JudgedModels(table: table, reference: "ref", candidates: ["a"], seed: 1)
        let features = MetaRouterReportWriter.features(judged.texts, dimension: 16)
        #expect(features.rows == 300 && features.cols == 16)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-meta-\(UUID().uuidString)").path

        var two = MetaRouterExperiment.Settings()
        two.goldSizes = [30]
        two.judgeSize = 150
        two.splits = 2
        let pair = try MetaRouterExperiment.run(pair: judged.candidates[0], features: features, settings: two)
        let text = try MetaRouterReportWriter.write(pair, queries: judged.count, source: "synthetic", to: dir)
        for file in ["result.json", "curves.csv", "curves-n30.svg", "summary.txt"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + file), "\(file) missing")
        }
        #expect(text.hasPrefix("Meta-Router on synthetic: 300 queries, 2 splits, m = 150 judge rows"))
        for method in MetaRouterExperiment.methods { #expect(text.contains(method), "\(method) missing") }
        #expect(text.contains("perfect ranking") && text.contains("federated vs centralized"))
        let csv = try String(contentsOfFile: dir + "/curves.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == pair.curves.count + 1)

        var many = MultiModelMetaRouter.Settings()
        many.goldSizes = [30]
        many.judgeSize = 150
        many.splits = 2
        let m = try MultiModelMetaRouter.run(models: judged, features: features, settings: many)
        let manyText = try MetaRouterReportWriter.write(m, queries: judged.count, source: "synthetic", to: dir)
        #expect(FileManager.default.fileExists(atPath: dir + "/result-many.json"))
        #expect(try String(contentsOfFile: dir + "/summary-many.txt", encoding: .utf8) == manyText)
        for method in MultiModelMetaRouter.methods { #expect(manyText.contains(method), "\(method) missing") }
        #expect(manyText.contains("single models"))
    }
}
