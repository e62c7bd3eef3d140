import FedRouteNumerics
import Testing

@Suite struct GEMMTests {
    func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, ta: Bool, tb: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k {
            let av = ta ? a[p * m + i] : a[i * k + p]
            let bv = tb ? b[j * k + p] : b[p * n + j]
            c[i * n + j] += av * bv
        } } }
        return c
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func portableAndDispatchedMatchNaive(_ t: (Bool, Bool)) {
        var rng = SeededRandom(seed: 7)
        let m = 13, n = 9, k = 300
        let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
        let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
        let expected = naive(a, b, m: m, n: n, k: k, ta: t.0, tb: t.1)
        var c1 = [Float](repeating: 1, count: m * n)
        GEMM.multiply(transA: t.0, transB: t.1, m: m, n: n, k: k, alpha: 1, a: a, lda: t.0 ? m : k, b: b, ldb: t.1 ? k : n, beta: 0, c: &c1, ldc: n)
        var c2 = [Float](repeating: 2, count: m * n)
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c2.withUnsafeMutableBufferPointer { pc in
            GEMM.portableMultiply(transA: t.0, transB: t.1, m: m, n: n, k: k, alpha: 2, a: pa.baseAddress!, lda: t.0 ? m : k,
                                  b: pb.baseAddress!, ldb: t.1 ? k : n, beta: 0.5, c: pc.baseAddress!, ldc: n)
        } } }
        for i in expected.indices {
            #expect(abs(c1[i] - expected[i]) < 1e-4)
            #expect(abs(c2[i] - (2 * expected[i] + 1)) < 1e-4)
        }
    }

    /// The few-row path (one query through a layer) at every vector width, against a Double reference, on
    /// widths that end inside a vector, inside a block, on a block edge and past the single row's 1,024-column chunks, both
    /// layouts of A, with padding between rows that must stay untouched; and a row's bits are the same whatever the
    /// other rows.
    @Test(arguments: [false, true])
    func fewRowsMatchReferenceAtEveryWidth(_ transA: Bool) {
        var rng = SeededRandom(seed: 23)
        for width: Int32 in [0, 1, 2] {
            for (m, n, k) in [(1, 1, 1), (1, 7, 5), (1, 64, 300), (2, 33, 17), (3, 130, 64), (4, 512, 96), (1, 515, 1024), (4, 11, 512), (3, 200, 2),
                              (1, 2 * 1024 + 13, 40), (3, 1030, 9)] {
                let lda = (transA ? m : k) + 2, ldb = n + 3, ldc = n + 5
                // Most of A zero (as a hashed TF-IDF row is), so that zero skipping is exercised: rows of B
                // under a zero of every row, of one row of a pair only, and of none.
                let a = (0..<((transA ? k : m) * lda)).map { _ in rng.nextFloat() < 0.7 ? 0 : rng.nextFloat() - 0.5 }
                let b = (0..<(k * ldb)).map { _ in rng.nextFloat() - 0.5 }
                var c = (0..<(m * ldc)).map { _ in rng.nextFloat() }
                let before = c
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    GEMM.fewRowsMultiply(transA: transA, m: m, n: n, k: k, alpha: 0.75, a: pa.baseAddress!, lda: lda,
                                         b: pb.baseAddress!, ldb: ldb, c: pc.baseAddress!, ldc: ldc, width: width)
                } } }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0.0
                        for p in 0..<k { s += Double(transA ? a[p * lda + i] : a[i * lda + p]) * Double(b[p * ldb + j]) }
                        worst = max(worst, abs(Double(c[i * ldc + j]) - (Double(before[i * ldc + j]) + 0.75 * s)))
                    }
                    #expect(c[(i * ldc + n)..<((i + 1) * ldc)] == before[(i * ldc + n)..<((i + 1) * ldc)], "padding written, width \(width)")
                }
                #expect(worst < 1e-4 * Double(max(1, k)).squareRoot(), "m \(m) n \(n) k \(k) width \(width): largest error \(worst)")
                // Each row alone gives the same bits as in the call with the others.
                for i in 0..<m {
                    var alone = Array(before[(i * ldc)..<((i + 1) * ldc)])
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in alone.withUnsafeMutableBufferPointer { pc in
                        GEMM.fewRowsMultiply(transA: transA, m: 1, n: n, k: k, alpha: 0.75, a: pa.baseAddress! + (transA ? i : i * lda), lda: lda,
                                             b: pb.baseAddress!, ldb: ldb, c: pc.baseAddress!, ldc: ldc, width: width)
                    } } }
                    #expect(alone == Array(c[(i * ldc)..<((i + 1) * ldc)]), "row \(i) of \(m), n \(n), width \(width)")
                }
            }
        }
    }

    /// The dot-product form (B transposed: a query against reference rows) at every width, against a Double
    /// reference, on depths that end inside a vector and inside the two-vector step; a row's bits do not depend
    /// on the other rows.
    @Test func fewRowsAgainstATransposedBMatchReferenceAtEveryWidth() {
        var rng = SeededRandom(seed: 29)
        for width: Int32 in [0, 1, 2] {
            for (m, n, k) in [(1, 1, 1), (1, 5, 7), (2, 9, 33), (3, 40, 64), (4, 17, 1024), (1, 300, 100), (4, 3, 2)] {
                let lda = k + 2, ldb = k + 3, ldc = n + 5
                let a = (0..<(m * lda)).map { _ in rng.nextFloat() - 0.5 }
                let b = (0..<(n * ldb)).map { _ in rng.nextFloat() - 0.5 }
                var c = (0..<(m * ldc)).map { _ in rng.nextFloat() }
                let before = c
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    GEMM.fewRowsMultiply(transA: false, transB: true, m: m, n: n, k: k, alpha: -1.5, a: pa.baseAddress!, lda: lda,
                                         b: pb.baseAddress!, ldb: ldb, c: pc.baseAddress!, ldc: ldc, width: width)
                } } }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0.0
                        for p in 0..<k { s += Double(a[i * lda + p]) * Double(b[j * ldb + p]) }
                        worst = max(worst, abs(Double(c[i * ldc + j]) - (Double(before[i * ldc + j]) - 1.5 * s)))
                    }
                    #expect(c[(i * ldc + n)..<((i + 1) * ldc)] == before[(i * ldc + n)..<((i + 1) * ldc)], "padding written, width \(width)")
                    var alone = Array(before[(i * ldc)..<((i + 1) * ldc)])
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in alone.withUnsafeMutableBufferPointer { pc in
                        GEMM.fewRowsMultiply(transA: false, transB: true, m: 1, n: n, k: k, alpha: -1.5, a: pa.baseAddress! + i * lda, lda: lda,
                                             b: pb.baseAddress!, ldb: ldb, c: pc.baseAddress!, ldc: ldc, width: width)
                    } } }
                    #expect(alone == Array(c[(i * ldc)..<((i + 1) * ldc)]), "row \(i) of \(m), k \(k), width \(width)")
                }
                #expect(worst < 1e-4 * Double(max(1, k)).squareRoot(), "m \(m) n \(n) k \(k) width \(width): largest error \(worst)")
            }
        }
    }

    /// `multiply` takes the few-row path for m ≤ 4 (any layout but both transposed) with beta applied first.
    @Test func multiplyWithFewRowsAppliesBeta() {
        var rng = SeededRandom(seed: 5)
        let m = 2, n = 40, k = 70
        let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
        let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let expected = naive(a, b, m: m, n: n, k: k, ta: ta, tb: tb)
            for beta: Float in [0, 1, -2] {
                var c = [Float](repeating: 3, count: m * n)
                GEMM.multiply(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n, beta: beta, c: &c, ldc: n)
                for i in c.indices { #expect(abs(c[i] - (expected[i] + 3 * beta)) < 1e-4, "beta \(beta), transA \(ta), transB \(tb)") }
            }
        }
    }

    /// Shapes that cross every block edge of the portable kernel (KC 192, MC 120, NC 768, micro-tiles 6 × 8/16/32),
    /// with leading dimensions larger than the rows, against a Double reference.
    @Test(arguments: [(false, false), (true, true)])
    func portableAcrossBlockEdges(_ t: (Bool, Bool)) {
        var rng = SeededRandom(seed: 11)
        let m = 127, n = 790, k = 401
        let lda = (t.0 ? m : k) + 3, ldb = (t.1 ? k : n) + 5, ldc = n + 7
        let a = (0..<((t.0 ? k : m) * lda)).map { _ in rng.nextFloat() - 0.5 }
        let b = (0..<((t.1 ? n : k) * ldb)).map { _ in rng.nextFloat() - 0.5 }
        var c = [Float](repeating: .nan, count: m * ldc)
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            GEMM.portableMultiply(transA: t.0, transB: t.1, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress!, lda: lda,
                                  b: pb.baseAddress!, ldb: ldb, beta: 0, c: pc.baseAddress!, ldc: ldc)
        } } }
        var worst = 0.0
        for i in stride(from: 0, to: m, by: 7) {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(t.0 ? a[p * lda + i] : a[i * lda + p]) * Double(t.1 ? b[j * ldb + p] : b[p * ldb + j]) }
                worst = max(worst, abs(Double(c[i * ldc + j]) - s))
            }
            // The padding between rows is never written.
            let padding = c[(i * ldc + n)..<((i + 1) * ldc)]
            #expect(padding.allSatisfy { $0.isNaN })
        }
        let message = "largest error \(worst)"
        #expect(worst < 1e-3, Comment(rawValue: message))
    }

    /// Splitting rows over threads never changes a bit.
    @Test func portableThreadCountDoesNotChangeResults() {
        var rng = SeededRandom(seed: 12)
        let m = 250, n = 96, k = 300
        let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
        let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
        func run(_ threads: Int) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                GEMM.portableMultiply(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress!, lda: k,
                                      b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n, threads: threads)
            } } }
            return c
        }
        let one = run(1)
        #expect(run(2) == one)
        #expect(run(5) == one)
    }

    @Test func matrixProductShapes() {
        let a = Matrix(rowArrays: [[1, 2, 3], [4, 5, 6]])
        let b = Matrix(rowArrays: [[1, 0], [0, 1], [1, 1]])
        #expect(a.multiplied(by: b) == Matrix(rowArrays: [[4, 5], [10, 11]]))
        #expect(a.multiplied(by: a, transposeOther: true) == Matrix(rowArrays: [[14, 32], [32, 77]]))
    }
}

@Suite struct RandomTests {
    @Test func sameSeedSameStream() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
        let xa = (0..<100).map { _ in a.next() }
        #expect(xa == (0..<100).map { _ in b.next() })
        #expect(xa != (0..<100).map { _ in c.next() })
    }

    @Test func boundedIntsAndPermutations() {
        var r = SeededRandom(seed: 1)
        var counts = [Int](repeating: 0, count: 5)
        for _ in 0..<10_000 { counts[r.nextInt(below: 5)] += 1 }
        #expect(counts.allSatisfy { (1800...2200).contains($0) })
        #expect(r.permutation(50).sorted() == Array(0..<50))
        let g = (0..<20_000).map { _ in r.nextGaussian() }
        let mean = g.reduce(0, +) / 20_000
        let variance = g.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 20_000
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
    }
}

@Suite struct OptimiserTests {
    @Test func adamWMinimisesQuadraticAndDecays() {
        var p = [Tensor(name: "w", shape: [2], values: [3, -2])]
        var opt = AdamW(configuration: AdamWConfiguration(learningRate: 0.1, weightDecay: 0), shapes: [2])
        for _ in 0..<300 { opt.update(&p, gradients: [p[0].values.map { 2 * ($0 - 1) }]) }
        #expect(p[0].values.allSatisfy { abs($0 - 1) < 1e-2 })
        // Pure decay with zero gradient shrinks by (1 − lr·wd) per step.
        var q = [Tensor(name: "w", shape: [1], values: [1])]
        var decay = AdamW(configuration: AdamWConfiguration(learningRate: 0.1, weightDecay: 0.5), shapes: [1])
        decay.update(&q, gradients: [[0]])
        #expect(abs(q[0].values[0] - 0.95) < 1e-6)
    }

    /// Blocks whose gradient has always been zero take the decay alone (without touching their
    /// moments); every element must still get exactly the bits of the full step, on both sides of
    /// the first non-zero gradient, with and without decay, at sizes that split over the cores.
    @Test func adamWSkipsStillBlocksBitForBit() {
        for (count, decay) in [(37, Float(0.01)), (70_003, 0.01), (70_003, 0)] {
            let c = AdamWConfiguration(learningRate: 0.01, weightDecay: decay)
            var rng = SeededRandom(seed: UInt64(count))
            var p = [Tensor(name: "w", shape: [count], values: (0..<count).map { _ in rng.nextFloat() * 2 - 1 })]
            var reference = p[0].values
            var m = [Float](repeating: 0, count: count), v = m
            var opt = AdamW(configuration: c, shapes: [count])
            for step in 1...6 {
                // Half the 8-blocks start moving only at step 4, a quarter never; -0 counts as zero.
                let g: [Float] = (0..<count).map { i in
                    let block = i / 8
                    if block % 4 == 3 || (block % 2 == 1 && step < 4) { return i % 3 == 0 ? -0.0 : 0 }
                    return rng.nextFloat() * 2 - 1
                }
                opt.update(&p, gradients: [g])
                // The full step as a scalar loop: the kernel's expression, lane by lane.
                let bc1 = 1 - Float(Scalar.exp(Double(step) * Scalar.log(Double(c.beta1))))
                let bc2 = 1 - Float(Scalar.exp(Double(step) * Scalar.log(Double(c.beta2))))
                let stepSize = c.learningRate / bc1, inverseBias2 = 1 / bc2, lrDecay = c.learningRate * c.weightDecay
                for i in 0..<count {
                    m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i]
                    v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i]
                    let denom = (v[i] * inverseBias2).squareRoot() + c.epsilon
                    var q = reference[i] - lrDecay * reference[i]
                    q = q - stepSize * m[i] / denom
                    reference[i] = q
                }
                let same = zip(p[0].values, reference).allSatisfy { $0.bitPattern == $1.bitPattern }
                #expect(same, "size \(count), decay \(decay), step \(step)")
            }
        }
    }

    /// The C kernel `update` runs gives the Swift reference step's bits at every vector width: every
    /// tail length, blocks at rest and moving, ±0, NaN and ±∞ gradients, with and without decay.
    @Test func adamWKernelIsBitIdenticalToTheSwiftStepAtEveryWidth() {
        var rng = SeededRandom(seed: 19)
        for count in Array(1...41) + [1_000] {
            for decay: Float in [0, 3e-6] {
                let p0 = (0..<count).map { _ in rng.nextFloat() * 4 - 2 }
                let m0 = (0..<count).map { i in i % 5 == 0 ? 0 : rng.nextFloat() * 0.2 - 0.1 }
                let v0 = (0..<count).map { i in i % 5 == 0 ? 0 : rng.nextFloat() * 0.01 }
                var g = (0..<count).map { i -> Float in (i / 8) % 3 == 1 ? (i % 2 == 0 ? 0 : -0.0) : rng.nextFloat() * 2 - 1 }
                if count > 20 { g[3] = .nan; g[11] = .infinity; g[12] = -.infinity }
                let moving0 = (0..<(count + 7) / 8).map { $0 % 2 == 0 }
                func run(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>,
                                  UnsafeMutablePointer<Bool>) -> Void) -> [UInt32] {
                    var p = p0, m = m0, v = v0, moving = moving0
                    p.withUnsafeMutableBufferPointer { p in m.withUnsafeMutableBufferPointer { m in v.withUnsafeMutableBufferPointer { v in
                        g.withUnsafeBufferPointer { g in moving.withUnsafeMutableBufferPointer { a in
                            body(p.baseAddress!, m.baseAddress!, v.baseAddress!, g.baseAddress!, a.baseAddress!)
                        } }
                    } } }
                    return (p + m + v).map(\.bitPattern) + moving.map { $0 ? 1 : 0 }
                }
                let expected = run { p, m, v, g, a in
                    AdamW.referenceStep(count: count, parameters: p, m: m, v: v, gradients: g, moving: a, beta1: 0.9, beta2: 0.999,
                                        inverseBias2: 1 / 0.002, epsilon: 1e-8, stepSize: 1e-3 / 0.1, decay: decay)
                }
                for width: Int32? in [nil, 0, 1, 2] {
                    let got = run { p, m, v, g, a in
                        AdamW.kernelStep(count: count, parameters: p, m: m, v: v, gradients: g, moving: a, beta1: 0.9, beta2: 0.999,
                                         inverseBias2: 1 / 0.002, epsilon: 1e-8, stepSize: 1e-3 / 0.1, decay: decay, width: width)
                    }
                    #expect(got == expected, "\(count) elements, decay \(decay), width \(String(describing: width))")
                }
            }
        }
    }

    @Test func clipping() {
        var g: [[Float]] = [[3], [4]]
        let norm = GradientClipping.clipGlobalNorm(&g, maxNorm: 1)
        #expect(abs(norm - 5) < 1e-5)
        #expect(abs((g[0][0] * g[0][0] + g[1][0] * g[1][0]).squareRoot() - 1) < 1e-4)
    }

    @Test func safetensorsRoundTripAndErrors() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fr-\(UInt32.random(in: 0...UInt32.max)).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = [Tensor(name: "b", shape: [3], values: [1, 2, 3]), Tensor(name: "a", shape: [2, 2], values: [0.5, -1, .pi, 4])]
        try SafeTensors.write(tensors: t, metadata: ["k": "v"], to: path)
        let (read, meta) = try SafeTensors.read(path: path)
        #expect(meta == ["k": "v"] && read["a"] == t[1] && read["b"] == t[0])
        try Data("garbage!garbage!".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: SafeTensors.FormatError.self) { try SafeTensors.read(path: path) }
    }
}

import Foundation
