import FedRouteNumerics
import Foundation
import Testing

/// The fused row kernels against straightforward Double computations.
@Suite struct NeuralKernelsTests {
    /// Against the definition in Double, at every length up to the limit and a head width with a
    /// tail (20 = 16 + 4); every vector width gives the same bits.
    @Test func shortAttentionMatchesTheDefinitionAtEveryWidth() {
        var rng = SeededRandom(seed: 21)
        let d = 20, stride = 3 * d + 4
        for len in 1...NeuralKernels.shortAttentionMaxLength {
            let qkv = (0..<(len * stride)).map { _ in rng.nextFloat() * 4 - 2 }
            var outputs: [[Float]] = []
            for width: Int32? in [nil, 0, 1, 2] {
                var out = [Float](repeating: .nan, count: len * d)
                qkv.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in
                    NeuralKernels.shortAttentionHead(q: p.baseAddress!, k: p.baseAddress! + d, v: p.baseAddress! + 2 * d, stride: stride, len: len, d: d,
                                                     scale: 0.3, out: o.baseAddress!, outStride: d, width: width)
                } }
                outputs.append(out)
            }
            #expect(outputs.allSatisfy { $0.map(\.bitPattern) == outputs[0].map(\.bitPattern) }, "length \(len): widths disagree")
            let out = outputs[0]
            for i in 0..<len {
                let logits = (0..<len).map { j in 0.3 * (0..<d).reduce(0.0) { $0 + Double(qkv[i * stride + $1]) * Double(qkv[j * stride + d + $1]) } }
                let m = logits.max()!
                let e = logits.map { Foundation.exp($0 - m) }
                let total = e.reduce(0, +)
                for t in 0..<d {
                    let expected = (0..<len).reduce(0.0) { $0 + e[$1] / total * Double(qkv[$1 * stride + 2 * d + t]) }
                    #expect(abs(Double(out[i * d + t]) - expected) < 1e-5, "length \(len), row \(i), column \(t)")
                }
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
