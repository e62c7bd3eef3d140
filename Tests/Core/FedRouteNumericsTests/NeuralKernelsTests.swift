import FedRouteNumerics
import Foundation
import Testing

/// The fused row kernels against straightforward Double computations.
@Suite struct NeuralKernelsTests {
    @Test func shortAttentionMatchesTheDefinition() {
        var rng = SeededRandom(seed: 21)
        let len = 13, d = 20, stride = 3 * d + 4
        let qkv = (0..<(len * stride)).map { _ in rng.nextFloat() * 2 - 1 }
        var out = [Float](repeating: .nan, count: len * d)
        var scores = [Float](repeating: 0, count: len)
        qkv.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in scores.withUnsafeMutableBufferPointer { s in
            NeuralKernels.shortAttentionHead(q: p.baseAddress!, k: p.baseAddress! + d, v: p.baseAddress! + 2 * d, stride: stride, len: len, d: d,
                                             scale: 0.3, out: o.baseAddress!, outStride: d, scores: s.baseAddress!)
        } } }
        for i in 0..<len {
            let logits = (0..<len).map { j in 0.3 * (0..<d).reduce(0.0) { $0 + Double(qkv[i * stride + $1]) * Double(qkv[j * stride + d + $1]) } }
            let m = logits.max()!
            let e = logits.map { Foundation.exp($0 - m) }
            let total = e.reduce(0, +)
            for t in 0..<d {
                let expected = (0..<len).reduce(0.0) { $0 + e[$1] / total * Double(qkv[$1 * stride + 2 * d + t]) }
                #expect(abs(Double(out[i * d + t]) - expected) < 1e-5)
            }
        }
    }

    @Test func layerNormGELURowAndItsBackwardMatchFiniteDifferences() {
        var rng = SeededRandom(seed: 22)
        let n = 19
        let z = (0..<n).map { _ in rng.nextFloat() * 4 - 2 }
        let gamma = (0..<n).map { _ in rng.nextFloat() + 0.5 }
        let beta = (0..<n).map { _ in rng.nextFloat() - 0.5 }
        let upstream = (0..<n).map { _ in rng.nextFloat() - 0.5 }
        func forward(_ z: [Float]) -> (out: [Float], normalized: [Float], pre: [Float], inv: Float) {
            var normalized = [Float](repeating: 0, count: n), pre = normalized, out = normalized
            let inv = z.withUnsafeBufferPointer { zp in
                NeuralKernels.layerNormGELURow(zp.baseAddress!, n: n, gamma: gamma, beta: beta, epsilon: 1e-5,
                                               normalized: &normalized, pre: &pre, out: &out)
            }
            return (out, normalized, pre, inv)
        }
        let f = forward(z)
        var gg = [Float](repeating: 0, count: n), gb = gg, dz = gg, scratch = gg
        NeuralKernels.layerNormGELUBackwardRow(dOut: upstream, mask: nil, pre: f.pre, normalized: f.normalized, inverseDeviation: f.inv,
                                               gamma: gamma, n: n, gradGamma: &gg, gradBeta: &gb, dZ: &dz, scratch: &scratch)
        for i in 0..<n {
            var plus = z, minus = z
            plus[i] += 1e-2
            minus[i] -= 1e-2
            let lp = zip(forward(plus).out, upstream).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let lm = zip(forward(minus).out, upstream).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs((lp - lm) / 2e-2 - Double(dz[i])) < 2e-3)
        }
    }
}
