@testable import FedRouteFederation
import FedRouteNumerics
import Foundation
import Testing

/// The server's side of a round: the fold of client updates, the average and the server step give, split
/// over the cores, the bits of the plain element-by-element loops; FedAvg keeps no moments.
@Suite struct FederatedOptimizerTests {
    /// Sizes around the split: one part below `minimumPerPart`, several above, one odd.
    static let sizes = [7, FederatedOptimizerState.minimumPerPart * 2 + 1, 200_000]

    static func values(_ n: Int, _ rng: inout SeededRandom, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in (rng.nextFloat() - 0.5) * scale }
    }

    /// Elements whose bits differ (0 when equal; a count, not two printed arrays, when they are not).
    static func differing(_ a: [Float], _ b: [Float]) -> Int { differing(a.map { UInt64($0.bitPattern) }, b.map { UInt64($0.bitPattern) }) }
    static func differing(_ a: [Double], _ b: [Double]) -> Int { differing(a.map(\.bitPattern), b.map(\.bitPattern)) }
    static func differing(_ a: [UInt64], _ b: [UInt64]) -> Int {
        a.count != b.count ? max(a.count, b.count) : zip(a, b).reduce(0) { $0 + ($1.0 != $1.1 ? 1 : 0) }
    }

    static func tensors(_ rng: inout SeededRandom) -> [Tensor] {
        sizes.enumerated().map { Tensor(name: "t\($0)", shape: [$1], values: values($1, &rng)) }
    }

    @Test func theServerStepGivesTheBitsOfTheScalarStep() {
        var rng = SeededRandom(seed: 11)
        let start = Self.tensors(&rng)
        let deltas = (0..<3).map { _ in Self.sizes.map { Self.values($0, &rng, scale: 0.01) } }
        for optimizer in [FederatedOptimizer.fedAvg(learningRate: 0.7), .fedAdam(learningRate: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3)] {
            var state = FederatedOptimizerState(optimizer, shapes: Self.sizes)
            var parameters = start
            // The reference: the loops the step replaced, one element at a time.
            var p = start.map(\.values)
            var m = Self.sizes.map { [Float](repeating: 0, count: $0) }, v = m
            for delta in deltas {
                state.apply(delta, to: &parameters)
                for t in p.indices {
                    for j in p[t].indices {
                        switch optimizer {
                        case .fedAvg(let lr):
                            p[t][j] += lr * delta[t][j]
                        case .fedAdam(let lr, let b1, let b2, let tau):
                            m[t][j] = b1 * m[t][j] + (1 - b1) * delta[t][j]
                            v[t][j] = b2 * v[t][j] + (1 - b2) * delta[t][j] * delta[t][j]
                            p[t][j] += lr * m[t][j] / (v[t][j].squareRoot() + tau)
                        }
                    }
                }
            }
            for (a, b) in zip(parameters, p) { #expect(Self.differing(a.values, b) == 0, "\(optimizer) \(a.name)") }
            #expect(parameters.map(\.values) != start.map(\.values))
        }
    }

    @Test func theFoldAndTheAverageGiveTheBitsOfTheScalarLoops() {
        var rng = SeededRandom(seed: 12)
        for n in Self.sizes {
            var sum = [Double](repeating: 0, count: n), reference = sum
            for weight in [3.0, 120.0, 0.5] {
                let update = Self.values(n, &rng)
                FederationCoordinator.accumulate(update, weight: weight, into: &sum)
                for j in 0..<n { reference[j] += weight * Double(update[j]) }
            }
            #expect(Self.differing(sum, reference) == 0, "\(n)")
            #expect(Self.differing(FederationCoordinator.divide(sum, by: 123.5), reference.map { Float($0 / 123.5) }) == 0, "\(n)")
        }
    }

    @Test func fedAvgKeepsNoMomentsAndOlderCheckpointsWithZerosStillLoad() throws {
        let shapes = [3, 4]
        let plain = FederatedOptimizerState(.plain, shapes: shapes)
        #expect(plain.m.isEmpty && plain.v.isEmpty && plain.fits(shapes: shapes))
        let adam = FederatedOptimizerState(.adam, shapes: shapes)
        #expect(adam.m.map(\.count) == shapes && adam.v.map(\.count) == shapes && adam.fits(shapes: shapes))
        // What older versions wrote for FedAvg: zero moments of the parameters' shapes. They load, and are dropped.
        var older = plain
        older.m = shapes.map { [Float](repeating: 0, count: $0) }
        older.v = older.m
        for encoded in [try FederationCoding.encoder().encode(older), try TensorFrames.encode(older, with: FederationCoding.encoder())] {
            let loaded = TensorFrames.isFrame(encoded)
                ? try TensorFrames.decode(FederatedOptimizerState.self, from: encoded, with: FederationCoding.decoder())
                : try FederationCoding.decoder().decode(FederatedOptimizerState.self, from: encoded)
            #expect(loaded.optimizer == .plain && loaded.m.isEmpty && loaded.v.isEmpty && loaded.fits(shapes: shapes))
        }
        // FedAdam still needs its moments.
        var hollow = adam
        hollow.m = []
        hollow.v = []
        #expect(!hollow.fits(shapes: shapes))
    }
}
