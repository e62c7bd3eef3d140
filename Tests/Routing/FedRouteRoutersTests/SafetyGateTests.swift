import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
@testable import FedRouteRouters
import Foundation
import Testing

/// Issue 16 item 5: the safe router falls back to best-single@λ where features carry no signal and
/// keeps the router where they do; the gate travels in the router file and is checked on load.
@Suite struct SafetyGateTests {
    /// 400 queries, 2 models ("cheap" costs 0.001, "dear" 0.01). With `signal`, the points form two
    /// blobs and in each a different model is right; without, points and grades are independent noise.
    static func data(signal: Bool, seed: UInt64) throws -> (Matrix, EvaluationTable) {
        var rng = SeededRandom(seed: seed)
        var x = Matrix(rows: 400, cols: 2)
        var t = EvaluationTable(models: ["cheap", "dear"])
        for r in 0..<400 {
            let blob = r % 2
            x[r, 0] = Float((signal ? (blob == 0 ? 5.0 : 0.0) : 0.0) + rng.nextGaussian())
            x[r, 1] = Float((signal ? (blob == 0 ? 0.0 : 5.0) : 0.0) + rng.nextGaussian())
            let (cheap, dear): (Double, Double) = signal
                ? (blob == 0 ? (1, 0) : (0, 1))
                : (rng.nextDouble() < 0.5 ? 1 : 0, rng.nextDouble() < 0.6 ? 1 : 0)
            try t.append(Query(id: "q\(r)", text: "q\(r)", task: "t"), cells: [0: (cheap, 0.001), 1: (dear, 0.01)])
        }
        return (x, t)
    }

    static func safeRouter(signal: Bool) throws -> RoutingPipeline {
        let (x, t) = try data(signal: signal, seed: signal ? 1 : 2)
        var c = RouterTrainingConfiguration()
        c.kmeans = KMeansConfiguration(clusters: 8)
        let encoder = TextEncoder.hashed(HashedTFIDFEncoder(configuration: .init(dimension: 2)))
        return try c.trainSafe(.kmeans, encoder: encoder, features: x, table: t, seed: 3, validationFraction: 0.3,
                               lambdas: [0.1, 1, 10, 20, 40, 100, 1e3])
    }

    /// Share of (λ, query) pairs of fresh data on which the safe router calls best-single@λ.
    static func agreementWithBestSingle(_ pipeline: RoutingPipeline, signal: Bool) throws -> Double {
        let gate = try #require(pipeline.safety)
        let (x, _) = try data(signal: signal, seed: 9)
        let p = try pipeline.predict(features: x)
        var same = 0
        for (lambda, f) in zip(gate.lambdas, gate.fallback) { same += p.choose(lambda: lambda).filter { $0 == f }.count }
        return Double(same) / Double(gate.lambdas.count * p.rows)
    }

    @Test func withoutSignalTheSafeRouterIsBestSingleAndWithSignalItIsTheRouter() throws {
        let noisy = try Self.safeRouter(signal: false)
        let noise = try #require(noisy.safety)
        #expect(noise.validationQueries == 120 && noise.pairs.allSatisfy { $0 >= SafetyGate.minimumPairs })
        // Every band the router keeps, it did no worse than best-single@λ on validation; where its
        // choices were noise it lost and the band fell back.
        for (use, d) in zip(noise.useRouter, noise.meanDifference) where use { #expect(d ?? -1 >= 0) }
        #expect(noise.useRouter.contains(false), "\(noise)")
        #expect(try Self.agreementWithBestSingle(noisy, signal: false) >= 0.95)
        let informed = try Self.safeRouter(signal: true)
        let signal = try #require(informed.safety)
        #expect(signal.useRouter.allSatisfy { $0 }, "\(signal)")
        #expect(zip(signal.lambdas, signal.meanDifference).contains { $0.0 <= 10 && ($0.1 ?? 0) > 0.3 }, "the router is far better at small λ")
        #expect(try Self.agreementWithBestSingle(informed, signal: true) <= 0.8)
    }

    /// The gate is calibrated on the router before the held-out rows join it: a kNN-Router holding
    /// a validation query in its reference set answers it partly with the query's own grade. The
    /// gate equals the one of the router trained on the other rows alone, not the one of the saved
    /// router (which holds every row and scores the validation rows differently).
    @Test func theGateNeverSeesARouterThatHoldsItsValidationRows() throws {
        // Two blobs, each with a better model, graded right 70 % of the time.
        var rng = SeededRandom(seed: 5)
        var x = Matrix(rows: 400, cols: 2)
        var t = EvaluationTable(models: ["cheap", "dear"])
        for r in 0..<400 {
            let blob = r % 2
            x[r, 0] = Float((blob == 0 ? 5.0 : 0.0) + rng.nextGaussian())
            x[r, 1] = Float((blob == 0 ? 0.0 : 5.0) + rng.nextGaussian())
            let right = rng.nextDouble() < 0.7
            let cheap: Double = (blob == 0) == right ? 1 : 0, dear: Double = (blob == 1) == right ? 1 : 0
            try t.append(Query(id: "q\(r)", text: "q\(r)", task: "t"), cells: [0: (cheap, 0.001), 1: (dear, 0.01)])
        }
        var c = RouterTrainingConfiguration()
        c.knnCandidates = [1, 2]
        let lambdas = [0.1, 1, 10, 20, 40, 100, 1e3]
        let encoder = TextEncoder.hashed(HashedTFIDFEncoder(configuration: .init(dimension: 2)))
        let pipeline = try c.trainSafe(.knn, encoder: encoder, features: x, table: t, seed: 3, validationFraction: 0.3, lambdas: lambdas)
        let gate = try #require(pipeline.safety)
        let saved = try #require(pipeline.router.as(KNNRouter.self))
        #expect(saved.reference.rows == 400, "the held-out rows join the saved router")
        // The same split as trainSafe's.
        var order = Array(0..<400)
        var split = SeededRandom(seed: 3).derived(0x5AFE)
        split.shuffle(&order)
        let validationRows = Array(order.prefix(120)).sorted(), fitRows = Array(order.dropFirst(120)).sorted()
        let held = (features: x.gatherRows(validationRows), table: t.subset(validationRows))
        let unpooled = try ModelSelection.knn(features: x.gatherRows(fitRows), table: t.subset(fitRows), candidates: [1, 2], validation: held,
                                              poolValidation: false).router
        #expect(unpooled.reference.rows == 280 && unpooled.k == saved.k)
        let honest = try SafetyGate.calibrate(predictions: try unpooled.predict(features: held.features), validation: held.table,
                                              training: t.subset(fitRows), lambdas: lambdas)
        let leaky = try SafetyGate.calibrate(predictions: try saved.predict(features: held.features), validation: held.table,
                                             training: t.subset(fitRows), lambdas: lambdas)
        #expect(gate == honest)
        // Its fallback is best-single@λ as an evaluation on all training rows picks it (fit and
        // held-out rows together), not the fit rows' own pick.
        let everyRow = UtilityBaseline(table: t)
        #expect(gate.fallback == SafetyGate.bestSingle(models: t.models, meanScore: everyRow.meanScore, meanCost: everyRow.meanCost, lambdas: lambdas))
        #expect(leaky.meanDifference != honest.meanDifference, "the saved router scores its own validation rows differently: \(leaky) vs \(honest)")
    }

    @Test func inAFallbackBandEveryQueryGoesToBestSingleAndTheRouterOrderFollows() throws {
        let pipeline = try Self.safeRouter(signal: false)
        let gate = try #require(pipeline.safety)
        let band = try #require(gate.useRouter.firstIndex(of: false))
        let lambda = gate.lambdas[band]
        let (x, _) = try Self.data(signal: false, seed: 9)
        let safe = try pipeline.predict(features: x)
        #expect(safe.choose(lambda: lambda).allSatisfy { $0 == gate.fallback[band] })
        #expect((0..<safe.rows).allSatisfy { safe.ranked(row: $0, lambda: lambda).first == gate.fallback[band] })
        var raw = safe
        raw.safety = nil
        #expect(raw.choose(lambda: lambda) != safe.choose(lambda: lambda), "the raw router routes differently here")
        #expect(gate.band(for: 0) == 0 && gate.band(for: 1e9) == gate.lambdas.count - 1)
    }

    /// 100 validation queries; per band a mean difference of 0.15, 0.25 and 0 with standard
    /// deviations 1, 1 and 0: 1.5 and 2.5 standard errors above 0, and a band where the router
    /// always agreed with best-single@λ.
    @Test func aBandIsKeptOnlyWhenItsGainIsTheMarginOfStandardErrorsAboveZero() throws {
        var s = ValidationStatistics(bands: 3)
        s.queries = 100
        for (b, (mean, sd)) in [(0.15, 1.0), (0.25, 1.0), (0.0, 0.0)].enumerated() {
            s.differenceSum[b] = mean * 100
            s.differenceSquares[b] = (sd * sd + mean * mean) * 100
        }
        let bands = ValidationBands(lambdas: [1, 10, 100], fallback: [0, 0, 1])
        let lenient = try SafetyGate(bands: bands, statistics: s, standardErrors: 1)
        #expect(lenient.useRouter == [true, true, true] && lenient.standardErrors == 1)
        // No validation query fully graded: the weighted margin, 2 standard errors.
        let strict = try SafetyGate(bands: bands, statistics: s)
        #expect(strict.useRouter == [false, true, true] && strict.standardErrors == SafetyGate.weightedStandardErrors)
        var paired = s
        paired.fullyGradedQueries = 100
        let dense = try SafetyGate(bands: bands, statistics: paired)
        #expect(dense.useRouter == [true, true, true] && dense.standardErrors == SafetyGate.pairedStandardErrors)
        paired.fullyGradedQueries = 60
        #expect(abs(SafetyGate.automaticStandardErrors(paired) - 1.4) < 1e-12)
        #expect(try SafetyGate(bands: bands, statistics: paired).useRouter == [true, true, true], "1.5 standard errors clear a 1.4 margin")
        paired.fullyGradedQueries = nil
        #expect(SafetyGate.automaticStandardErrors(paired) == SafetyGate.weightedStandardErrors, "a holder that did not count")
        #expect(try SafetyGate(bands: bands, statistics: s, standardErrors: 3).useRouter == [false, false, true])
        #expect(try SafetyGate(bands: bands, statistics: s, standardErrors: 0).useRouter == [true, true, true])
        for bad in [-1, .nan, .infinity, SafetyGate.maxStandardErrors + 1] {
            #expect(throws: RouterError.self) { _ = try SafetyGate(bands: bands, statistics: s, standardErrors: bad) }
        }
        // A gate written before the margin was recorded decodes with none (it used 1).
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(strict)) as! [String: Any]
        old.removeValue(forKey: "standardErrors")
        let decoded = try JSONDecoder().decode(SafetyGate.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(decoded.standardErrors == nil && decoded.useRouter == strict.useRouter && decoded.problem(models: 2) == nil)
        var absurd = strict
        absurd.standardErrors = 1e9
        #expect(absurd.problem(models: 2)?.contains("standard errors") == true)
    }

    @Test func theGateTravelsInTheRouterFileAndATamperedOneIsRefused() throws {
        let pipeline = try Self.safeRouter(signal: true)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("safe-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RouterFile.save(pipeline, to: path)
        #expect(try RouterFile.load(path: path).safety == pipeline.safety)
        let (tensors, stored) = try SafeTensors.read(path: path)
        var metadata = stored
        var gate = try #require(pipeline.safety)
        gate.fallback[0] = 7
        metadata["safety.gate"] = String(decoding: try JSONEncoder().encode(gate), as: UTF8.self)
        try SafeTensors.write(tensors: Array(tensors.values), metadata: metadata, to: path)
        #expect { _ = try RouterFile.load(path: path) } throws: { "\($0)".contains("safety.gate") && "\($0)".contains("not one of the 2 models") }
    }
}
