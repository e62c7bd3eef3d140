import FedRouteEmbedding
import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
@testable import FedRouteRouters
import Foundation
import Testing

@Suite struct KMeansTests {
    static func blobs(seed: UInt64) -> (Matrix, [Int]) {
        var rng = SeededRandom(seed: seed)
        let centres: [[Float]] = [[0, 0], [10, 0], [0, 10], [10, 10]]
        var rows: [[Float]] = [], labels: [Int] = []
        for i in 0..<200 {
            let c = i % 4
            rows.append([centres[c][0] + Float(rng.nextGaussian()) * 0.5, centres[c][1] + Float(rng.nextGaussian()) * 0.5])
            labels.append(c)
        }
        return (Matrix(rowArrays: rows), labels)
    }

    @Test(arguments: [KMeansConfiguration.Initialization.kMeansPlusPlus, .random])
    func recoversSeparableBlobs(_ initialization: KMeansConfiguration.Initialization) throws {
        let (x, labels) = Self.blobs(seed: 3)
        var c = KMeansConfiguration(clusters: 4)
        c.initialization = initialization
        c.restarts = 5
        c.seed = 1
        let r = try KMeans.fit(points: x, configuration: c)
        // Every true blob maps to exactly one cluster, and the mapping is a bijection.
        var mapping: [Int: Int] = [:]
        for (i, l) in labels.enumerated() {
            if let m = mapping[l] { #expect(m == r.assignments[i]) } else { mapping[l] = r.assignments[i] }
        }
        #expect(Set(mapping.values).count == 4)
        #expect(r.inertia / 200 < 0.6)
        #expect(try KMeans.fit(points: x, configuration: c) == r)
    }

    /// Above the size where nearest centres, centre sums and variances are split over the cores, every
    /// figure equals the one-row-at-a-time reference exactly (each sum keeps its order).
    @Test func parallelStepsEqualTheSequentialReference() {
        var rng = SeededRandom(seed: 5)
        let n = 9_000, d = 160, k = 7
        let x = Matrix(rows: n, cols: d, data: (0..<(n * d)).map { _ in rng.nextFloat() - 0.5 })
        let w = (0..<n).map { _ in Float(rng.nextInt(below: 3)) }
        let centres = x.gatherRows([3, 50, 700, 1_000, 4_000, 6_000, 8_999])
        let (a, dist) = KMeans.assign(points: x, centroids: centres)
        let dots = x.multiplied(by: centres, transposeOther: true)
        let pn = x.rowSquaredNorms(), cn = centres.rowSquaredNorms()
        var counts = [Float](repeating: 0, count: k)
        for i in 0..<n {
            var bestJ = 0
            var bestD = Float.infinity
            for j in 0..<k where pn[i] - 2 * dots.data[i * k + j] + cn[j] < bestD { bestD = pn[i] - 2 * dots.data[i * k + j] + cn[j]; bestJ = j }
            #expect(a[i] == bestJ && dist[i] == max(0, bestD))
            counts[a[i]] += w[i]
        }
        let sums = KMeans.centroidsOf(x, w, assignments: a, counts: counts, previous: centres)
        var reference = Matrix(rows: k, cols: d)
        for i in 0..<n where w[i] > 0 { for f in 0..<d { reference.data[a[i] * d + f] += w[i] * x.data[i * d + f] } }
        for j in 0..<k { for f in 0..<d { reference.data[j * d + f] = counts[j] > 0 ? reference.data[j * d + f] / counts[j] : centres.data[j * d + f] } }
        #expect(sums.data == reference.data)
        let total = w.reduce(0.0) { $0 + Double($1) }
        var variance = 0.0
        for f in 0..<d {
            var mean = 0.0
            for i in 0..<n { mean += Double(w[i]) * Double(x[i, f]) }
            mean /= total
            var v = 0.0
            for i in 0..<n { let e = Double(x[i, f]) - mean; v += Double(w[i]) * e * e }
            variance += v / total
        }
        #expect(KMeans.meanVariance(x, w) == variance / Double(d))
    }

    @Test func weightsAndEmptyClusters() throws {
        // Duplicate points: 3 distinct locations, 3 clusters, one location carries all weight.
        let x = Matrix(rowArrays: [[0], [0], [0], [5], [9]])
        var c = KMeansConfiguration(clusters: 3)
        c.initialization = .random
        c.seed = 2
        let r = try KMeans.fit(points: x, configuration: c)
        #expect(Set(r.assignments).count == 3)
        let w = try KMeans.fit(points: Matrix(rowArrays: [[0], [1], [10]]), weights: [1, 100, 1], configuration: KMeansConfiguration(clusters: 1))
        #expect(abs(w.centroids[0, 0] - 110.0 / 102.0) < 1e-4)
        #expect(throws: RouterError.self) { try KMeans.fit(points: x, configuration: KMeansConfiguration(clusters: 6)) }
        #expect(throws: RouterError.self) { try KMeans.fit(points: x, weights: [1, 1, 1, 1, -1], configuration: KMeansConfiguration(clusters: 2)) }
    }

    @Test func kMeansRouterNeverChoosesUnobservedCells() throws {
        let (x, _) = Self.blobs(seed: 4)
        var t = EvaluationTable(models: ["cheap", "good"])
        for r in 0..<x.rows {
            // "good" is only ever observed in the blob around (0, 0).
            var cells: [Int: (score: Double, cost: Double)] = [0: (0.2, 0.001)]
            if r % 4 == 0 { cells[1] = (1.0, 0.01) }
            try t.append(Query(id: "\(r)", text: "", task: "t"), cells: cells)
        }
        var c = KMeansConfiguration(clusters: 4)
        c.seed = 1
        let router = try KMeansRouter.train(features: x, table: t, configuration: c)
        let p = try router.predict(features: x)
        let choice = p.choose(lambda: 0)
        for r in 0..<x.rows { #expect(choice[r] == (r % 4 == 0 ? 1 : 0)) }
        #expect(abs(p.score[1] - 1) < 1e-12 && abs(p.cost[0] - 0.001) < 1e-12)
    }
}

@Suite struct RouterFileTests {
    func tempPath() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("fr-\(UUID().uuidString).safetensors").path }

    @Test func everyFamilyRoundTripsWithIdenticalPredictions() throws {
        let (x0, t) = try MLPTrainingTests.toyTable(60, seed: 2, sparse: true)
        let texts = t.queries.map { $0.task == "A" ? "alpha task question \($0.id)" : "beta other prompt \($0.id)" }
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 32))
        encoder.fit(texts)
        let x = encoder.encode(texts)
        _ = x0
        var mc = MLPTrainingConfiguration()
        mc.hiddenDimension = 8; mc.epochs = 2
        var kc = KMeansConfiguration(clusters: 3)
        kc.seed = 1
        let routers: [AnyRouter] = [
            AnyRouter(try MLPTrainer.train(features: x, table: t, configuration: mc)),
            AnyRouter(try KMeansRouter.train(features: x, table: t, configuration: kc)),
            AnyRouter(try KNNRouter.train(features: x, table: t, k: 5)),
        ]
        for router in routers {
            let path = tempPath()
            defer { try? FileManager.default.removeItem(atPath: path) }
            let pipeline = try RoutingPipeline(encoder: encoder, router: router)
            try RouterFile.save(pipeline, to: path)
            let loaded = try RouterFile.load(path: path)
            let a = try pipeline.predict(texts: ["alpha task question new"]), b = try loaded.predict(texts: ["alpha task question new"])
            #expect(a.choose(lambda: 1) == b.choose(lambda: 1))
            for i in a.score.indices {
                #expect(abs(a.score[i] - b.score[i]) < 1e-6)
                #expect(abs(a.cost[i] - b.cost[i]) <= 1e-6 * max(1, a.cost[i]))
            }
        }
    }

    @Test func mismatchedFilesAreClearErrors() throws {
        let path = tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafeTensors.write(tensors: [], metadata: ["format": "fedroute-router", "version": "99", "kind": "mlp"], to: path)
        do { _ = try RouterFile.load(path: path); Issue.record("expected error") } catch let e as RouterFile.LoadError {
            #expect(e.message.contains("version 99"))
        }
        try SafeTensors.write(tensors: [], metadata: ["format": "something-else"], to: path)
        #expect(throws: RouterFile.LoadError.self) { try RouterFile.load(path: path) }
        // A real file with one tensor of the wrong shape.
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 8))
        encoder.fit(["a b", "c d"])
        let router = try KNNRouter(models: ["m"], k: 1, reference: Matrix(rows: 1, cols: 8, repeating: 0.1), scores: [1], costs: [0.1], observed: [true])
        try RouterFile.save(try RoutingPipeline(encoder: encoder, router: AnyRouter(router)), to: path)
        var (tensors, meta) = try SafeTensors.read(path: path)
        tensors["knn.score"] = Tensor(name: "knn.score", shape: [2], values: [1, 1])
        try SafeTensors.write(tensors: Array(tensors.values), metadata: meta, to: path)
        do { _ = try RouterFile.load(path: path); Issue.record("expected error") } catch let e as RouterFile.LoadError {
            #expect(e.message.contains("knn.score"))
        }
        meta["models"] = "not json"
        try SafeTensors.write(tensors: Array(tensors.values), metadata: meta, to: path)
        #expect(throws: RouterFile.LoadError.self) { try RouterFile.load(path: path) }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: MiniLMEncoder.configuredDirectory + "/model.safetensors")))
    func minilmRoutersRecordTheirEncoderAndRefuseOtherWeights() throws {
        let minilm = try MiniLMEncoder(directory: MiniLMEncoder.configuredDirectory, maxTokens: 64, truncation: .tail)
        let router = try KNNRouter(models: ["m"], k: 1, reference: Matrix(rows: 1, cols: 384, repeating: 0.05), scores: [1], costs: [0.1], observed: [true])
        let pipeline = try RoutingPipeline(encoder: .minilm(minilm), router: AnyRouter(router))
        let path = tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RouterFile.save(pipeline, to: path)
        let loaded = try RouterFile.load(path: path)
        // (Compared as Booleans: a failing `==` on an encoder would print its 90 MB of weights.)
        let sameEncoder = loaded.encoder == pipeline.encoder
        #expect(sameEncoder)
        guard case .minilm(let e) = loaded.encoder else { Issue.record("expected a MiniLM encoder"); return }
        #expect(e.maxTokens == 64 && e.truncation == .tail)
        // Weights other than the ones it was trained with are refused.
        var (tensors, meta) = try SafeTensors.read(path: path)
        meta["encoder"] = meta["encoder"]!.replacingOccurrences(of: minilm.fingerprint, with: "minilm-l6-v2-0000000000000000")
        try SafeTensors.write(tensors: Array(tensors.values), metadata: meta, to: path)
        do { _ = try RouterFile.load(path: path); Issue.record("expected error") } catch let e as RouterFile.LoadError {
            #expect(e.message.contains("0000000000000000"))
        }
        #expect(throws: RouterFile.LoadError.self) { try RouterFile.load(path: path, minilmDirectory: "/nonexistent") }
    }
}

/// Issue 16 item 3: empirical-Bayes shrinkage of sparse cell means, with known answers.
@Suite struct ScoreShrinkageTests {
    /// Two clusters of 10 observations each, mean scores 0.9 and 0.1 (global 0.5): σ² = 0.25,
    /// MS_between = 10·0.16·2 / 1 = 3.2, n₀ = (20 − 200/20) / 1 = 10, τ² = (3.2 − 0.25)/10 = 0.295,
    /// κ = 0.25/0.295; the first cell moves from 0.9 to (9 + 0.5κ)/(10 + κ) = 0.86875….
    @Test func aCellMovesByTheDocumentedAmount() {
        let prior = ScoreShrinkage.prior(groups: 2, models: 1, count: [10, 10], scoreSum: [9, 1], costSum: [1, 3])
        let kappa = 0.25 / 0.295
        #expect(abs(prior.strength[0] - kappa) < 1e-12 && prior.meanScore[0] == 0.5 && prior.meanCost[0] == 0.2)
        let e = prior.estimate(model: 0, n: 10, s: 9, c: 1, shrinkage: .empiricalBayes)
        #expect(abs(e!.score - (9 + 0.5 * kappa) / (10 + kappa)) < 1e-12 && abs(e!.score - 0.868_75) < 1e-4)
        #expect(e!.cost == 0.1, "costs are not shrunk")
        #expect(prior.estimate(model: 0, n: 10, s: 9, c: 1, shrinkage: .none)!.score == 0.9)
        // A one-observation cell of the same model moves much further: (1 + 0.5κ)/(1 + κ).
        let one = prior.estimate(model: 0, n: 1, s: 1, c: 0.1, shrinkage: .empiricalBayes)!.score
        #expect(abs(one - (1 + 0.5 * kappa) / (1 + kappa)) < 1e-12 && one < 0.8)
        // No observation: no estimate, shrunk or not.
        #expect(prior.estimate(model: 0, n: 0, s: 0, c: 0, shrinkage: .empiricalBayes) == nil)
    }

    /// Groups that differ only by noise (τ² = 0) all say the global mean; a single group or a
    /// noiseless model keeps its raw means.
    @Test func noSpreadMeansTheGlobalMeanAndNothingToPoolMeansRaw() {
        // Means 0.6 and 0.4 from 10 each: MS_between = 10·0.01·2 / 1 = 0.2 < σ² = 0.25 → τ² = 0.
        let flat = ScoreShrinkage.prior(groups: 2, models: 1, count: [10, 10], scoreSum: [6, 4], costSum: [1, 1])
        #expect(flat.strength[0].isInfinite)
        #expect(flat.estimate(model: 0, n: 10, s: 6, c: 1, shrinkage: .empiricalBayes)!.score == 0.5)
        let single = ScoreShrinkage.prior(groups: 2, models: 1, count: [4, 0], scoreSum: [3, 0], costSum: [1, 0])
        #expect(single.strength[0] == 0 && single.estimate(model: 0, n: 4, s: 3, c: 1, shrinkage: .empiricalBayes)!.score == 0.75)
        let perfect = ScoreShrinkage.prior(groups: 2, models: 1, count: [4, 5], scoreSum: [4, 5], costSum: [1, 1])
        #expect(perfect.strength[0] == 0)
    }

    /// The K-Means-Router uses it by default, records it in the file, and an older file without
    /// the key loads with raw means.
    @Test func theKMeansRouterStoresItsShrinkage() throws {
        let (x, _) = KMeansTests.blobs(seed: 4)
        var t = EvaluationTable(models: ["a", "b"])
        for r in 0..<x.rows {
            let cells: [Int: (score: Double, cost: Double)] = r % 3 == 2 ? [:] : [r % 3: (Double(r % 2), 0.001 * Double(1 + r % 2))]
            try t.append(Query(id: "\(r)", text: "q\(r)", task: "t"), cells: cells)
        }
        var c = KMeansConfiguration(clusters: 4)
        c.seed = 1
        let router = try KMeansRouter.train(features: x, table: t, configuration: c)
        #expect(router.shrinkage == .empiricalBayes)
        var contents = RouterFileContents(path: "kmeans-test.safetensors")
        try router.store(in: &contents)
        #expect(contents.metadata["kmeans.shrinkage"] == "empirical-bayes")
        #expect(try KMeansRouter.load(from: contents, models: router.models).shrinkage == .empiricalBayes)
        contents.metadata["kmeans.shrinkage"] = nil
        #expect(try KMeansRouter.load(from: contents, models: router.models).shrinkage == ScoreShrinkage.none)
        contents.metadata["kmeans.shrinkage"] = "bogus"
        #expect(throws: RouterFile.LoadError.self) { try KMeansRouter.load(from: contents, models: router.models) }
    }
}

extension ScoreShrinkageTests {
    /// The kNN-Router estimates κ from training neighbourhoods, keeps it exactly through a file, and
    /// an older file without it loads with raw means.
    @Test func theKNNRouterEstimatesAndStoresItsShrinkage() throws {
        let table = try SyntheticData.table(queries: 80, seed: 12)
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 32))
        encoder.fit(table.queries.map(\.text))
        let x = encoder.encode(table.queries.map(\.text))
        let router = try KNNRouter.train(features: x, table: table, k: 5)
        #expect(router.shrinkage == .empiricalBayes && router.shrinkageStrength.count == table.modelCount)
        #expect(router.shrinkageStrength.allSatisfy { $0 >= 0 })
        var contents = RouterFileContents(path: "knn-test.safetensors")
        try router.store(in: &contents)
        let loaded = try KNNRouter.load(from: contents, models: router.models)
        // Strengths are kept exactly ("inf" included); cells go through float32 like every kNN file.
        #expect(loaded.shrinkage == router.shrinkage && loaded.shrinkageStrength == router.shrinkageStrength)
        let (a, b) = (try loaded.predict(features: x), try router.predict(features: x))
        #expect(a.available == b.available && zip(a.score, b.score).allSatisfy { abs($0 - $1) < 1e-6 })
        contents.metadata["knn.shrinkage"] = nil
        contents.metadata["knn.shrinkage_strength"] = nil
        let old = try KNNRouter.load(from: contents, models: router.models)
        #expect(old.shrinkage == ScoreShrinkage.none)
        // Shrunk scores lie between the raw neighbourhood mean and the model's training mean.
        let raw = try old.predict(features: x), shrunk = try router.predict(features: x)
        let m = table.modelCount
        for i in raw.score.indices where raw.available[i] {
            let j = i % m
            let rows = (0..<table.queryCount).filter { table.isObserved($0, j) }
            let mu = rows.map { table.scores[table.index($0, j)] }.reduce(0, +) / Double(rows.count)
            #expect(shrunk.score[i] >= min(raw.score[i], mu) - 1e-9 && shrunk.score[i] <= max(raw.score[i], mu) + 1e-9)
        }
    }
}

extension ScoreShrinkageTests {
    /// The bounded selection of neighbours gives exactly the first k of the full sort (similarity
    /// descending, ties to the lower index), with and without an excluded row.
    @Test func neighbourSelectionEqualsTheSortedPrefix() throws {
        var rng = SeededRandom(seed: 21)
        let reference = Matrix(rows: 3, cols: 1, data: [1, 0, 1])
        for k in [1, 3, 25] {
            let router = try KNNRouter(models: ["a"], k: k, reference: reference, scores: [0, 0, 0], costs: [0, 0, 0], observed: [true, true, true])
            for _ in 0..<50 {
                // Few distinct values, so ties are common.
                let sims = (0..<40).map { _ in Float(rng.nextInt(below: 6)) / 5 }
                for excluded in [nil, 7] as [Int?] {
                    let sorted = (0..<sims.count).filter { $0 != excluded }.sorted { sims[$0] > sims[$1] || (sims[$0] == sims[$1] && $0 < $1) }
                    #expect(router.neighbours(sims, excluding: excluded) == Array(sorted.prefix(k)))
                }
            }
        }
    }
}

/// A K-Means-Router of several clusterings (`ClusterCountPolicy.average`): its estimate, its file
/// and what a hostile file gets.
@Suite struct KMeansResolutionTests {
    static func router() throws -> (KMeansRouter, HashedTFIDFEncoder, Matrix, EvaluationTable) {
        let table = try SyntheticData.table(queries: 120, seed: 5)
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 32))
        encoder.fit(table.queries.map(\.text))
        let x = encoder.encode(table.queries.map(\.text))
        let router = try ModelSelection.kmeans(features: x, table: table, configuration: KMeansConfiguration(clusters: 3),
                                               candidates: [2, 5, 9], validation: nil).router
        return (router, encoder, x, table)
    }

    @Test func itsFileKeepsEveryClusteringAndOlderFilesHoldOne() throws {
        let (router, encoder, x, _) = try Self.router()
        #expect(router.clusterCounts == [2, 5, 9])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kmeans-res-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RouterFile.save(try RoutingPipeline(encoder: encoder, router: AnyRouter(router)), to: path)
        let loaded = try #require(try RouterFile.load(path: path).router.as(KMeansRouter.self))
        #expect(loaded.clusterCounts == [2, 5, 9])
        let (a, b) = (try router.predict(features: x), try loaded.predict(features: x))
        #expect(a.available == b.available && zip(a.score, b.score).allSatisfy { abs($0 - $1) < 1e-6 })
        var (tensors, meta) = try SafeTensors.read(path: path)
        #expect(meta["kmeans.resolutions"] == "3" && tensors["kmeans.r2.centroids"]?.shape == [9, 32])
        // Hostile or broken headers: a clear error naming the key, never a crash.
        for (value, expected) in [("0", "kmeans.resolutions"), ("65", "kmeans.resolutions"), ("-1", "kmeans.resolutions"), ("x", "kmeans.resolutions"),
                                  ("4", "kmeans.r3.centroids")] {
            meta["kmeans.resolutions"] = value
            try SafeTensors.write(tensors: Array(tensors.values), metadata: meta, to: path)
            do { _ = try RouterFile.load(path: path); Issue.record("expected an error for \(value)") } catch let e as RouterFile.LoadError {
                #expect(e.message.contains(expected), "\(e.message)")
            }
        }
        // A clustering of another dimension.
        meta["kmeans.resolutions"] = "3"
        tensors["kmeans.r1.centroids"] = Tensor(name: "kmeans.r1.centroids", shape: [5, 31], values: Array(repeating: 0, count: 155))
        try SafeTensors.write(tensors: Array(tensors.values), metadata: meta, to: path)
        #expect(throws: RouterFile.LoadError.self) { try RouterFile.load(path: path) }
        // Without the key (files of one clustering): clustering 0 only.
        meta["kmeans.resolutions"] = nil
        try SafeTensors.write(tensors: Array(tensors.values), metadata: meta, to: path)
        #expect(try RouterFile.load(path: path).router.as(KMeansRouter.self)?.clusterCounts == [2])
    }

    @Test func growthAndModelsApplyToEveryClustering() throws {
        let (router, _, x, table) = try Self.router()
        let more = try router.resolutions.map { try ClusterStatistics(centroids: $0.centroids, features: x, table: table) }
        let doubled = try router.adding(more)
        for (a, b) in zip(doubled.resolutions, router.resolutions) { #expect(a.statistics.count == b.statistics.count.map { 2 * $0 }) }
        let grown = try router.addingModels(["new"])
        #expect(grown.resolutions.allSatisfy { $0.statistics.models == table.modelCount + 1 })
        let p = try grown.predict(features: x)
        #expect((0..<x.rows).allSatisfy { !p.available[$0 * grown.models.count + table.modelCount] }, "a model no clustering observed is never available")
        #expect(throws: RouterError.self) { try KMeansRouter(models: router.models, resolutions: []) }
        #expect(throws: RouterError.self) {
            try KMeansRouter(models: router.models, resolutions: Array(repeating: router.resolutions[0], count: KMeansRouter.maxResolutions + 1))
        }
    }
}
