import FedRouteNumerics
import Foundation
import Testing

@Suite struct DirichletTests {
    @Test func gammaHasTheRightMean() {
        for shape in [0.3, 1.0, 4.5] {
            var rng = SeededRandom(seed: 3)
            let n = 20_000
            let mean = (0..<n).reduce(0.0) { s, _ in s + rng.nextGamma(shape: shape) } / Double(n)
            #expect(abs(mean - shape) < 0.05 * max(1, shape), "Gamma(\(shape)) mean \(mean)")
        }
    }

    @Test func dirichletIsAProbabilityVectorWithTheRightMean() {
        var rng = SeededRandom(seed: 1)
        let alpha = [0.5, 1.0, 2.5]
        var sums = [0.0, 0.0, 0.0]
        for _ in 0..<5_000 {
            let p = rng.dirichlet(alpha)
            #expect(abs(p.reduce(0, +) - 1) < 1e-12 && p.allSatisfy { $0 >= 0 })
            for i in 0..<3 { sums[i] += p[i] }
        }
        for i in 0..<3 { #expect(abs(sums[i] / 5_000 - alpha[i] / 4) < 0.02) }
    }

    @Test func tinyConcentrationsNeverGiveNaNAndAreSeeded() {
        var a = SeededRandom(seed: 7), b = SeededRandom(seed: 7)
        for _ in 0..<200 {
            let p = a.dirichlet(Array(repeating: 0.001, count: 10))
            #expect(p.allSatisfy(\.isFinite) && abs(p.reduce(0, +) - 1) < 1e-9)
            #expect(p == b.dirichlet(Array(repeating: 0.001, count: 10)))
        }
    }

    @Test func tensorsAndMatricesRoundTripThroughJSONAndRejectBadShapes() throws {
        let t = Tensor(name: "w", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(try JSONDecoder().decode(Tensor.self, from: JSONEncoder().encode(t)) == t)
        let m = Matrix(rows: 2, cols: 2, data: [1, 2, 3, 4])
        #expect(try JSONDecoder().decode(Matrix.self, from: JSONEncoder().encode(m)) == m)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Tensor.self, from: Data(#"{"name":"w","shape":[2,2],"values":[1]}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Matrix.self, from: Data(#"{"rows":2,"cols":2,"data":[1,2,3]}"#.utf8)) }
    }
}
