import CFedRouteKernels
@testable import FedRouteNumerics
import Testing

@Suite struct PackedMatrixTests {
    /// op(A)·op(B) in Double, row-major.
    func reference(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool, transB: Bool) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k {
            c[i * n + j] += Double(transA ? a[p * m + i] : a[i * k + p]) * Double(transB ? b[j * k + p] : b[p * n + j])
        } } }
        return c
    }

    /// Shapes that end inside a micro-panel of rows and of columns, a depth over one KC slice (192), more
    /// columns than one NC block (768) and than one column block of a packed product (384; the last block
    /// whole panels, or ending inside one), more rows than one row block of a packed product (240); A read in
    /// place (as it is) and packed (transposed); both layouts of B; C with spare columns that must stay as they
    /// were.
    static let shapes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (5, 37, 7), (13, 100, 193), (61, 800, 400), (120, 64, 384), (250, 40, 200),
                                                     (7, 390, 20)]

    /// A product with the packed B is the portable kernel's product, bit for bit, at the CPU's instruction set,
    /// for every thread count.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func packedProductIsThePortableKernelsBits(_ t: (Bool, Bool)) {
        var rng = SeededRandom(seed: 31)
        for (m, n, k) in Self.shapes {
            let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
            let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
            let ldc = n + 3
            let start = (0..<(m * ldc)).map { _ in rng.nextFloat() }
            var portable = start
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in portable.withUnsafeMutableBufferPointer { pc in
                GEMM.portableMultiply(transA: t.0, transB: t.1, m: m, n: n, k: k, alpha: 0.75, a: pa.baseAddress!, lda: t.0 ? m : k,
                                      b: pb.baseAddress!, ldb: t.1 ? k : n, beta: 1, c: pc.baseAddress!, ldc: ldc)
            } } }
            let packed = b.withUnsafeBufferPointer { PackedMatrix(b: $0.baseAddress!, ldb: t.1 ? k : n, k: k, n: n, transposed: t.1) }
            #expect(packed.k == k && packed.n == n && packed.instructionSet == .native)
            for threads in [1, 2, 3] {
                var c = start
                a.withUnsafeBufferPointer { pa in c.withUnsafeMutableBufferPointer { pc in
                    packed.multiply(transA: t.0, m: m, alpha: 0.75, a: pa.baseAddress!, lda: t.0 ? m : k, c: pc.baseAddress!, ldc: ldc, threads: threads)
                } }
                #expect(c == portable, "\(m)×\(n)×\(k), transposed \(t), \(threads) threads")
            }
        }
    }

    /// The kernel's row blocks are 240 rows, or 120 on a CPU whose second-level cache is under 1 MB (Zen 3's
    /// 512 kB), and a product is the same bits whatever the block: the size this CPU does not use is checked here too.
    @Test(arguments: [false, true])
    func everyRowBlockGivesTheSameBits(_ transA: Bool) {
        #expect([120, 240].contains(PackedMatrix.blockRows) && PackedMatrix.blockRows == fr_gemm_packed_block_rows())
        var rng = SeededRandom(seed: 34)
        for (m, n, k) in Self.shapes + [(370, 50, 100)] {
            let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
            let w = (0..<(n * k)).map { _ in rng.nextFloat() - 0.5 }
            let packed = PackedMatrix(linearWeights: w, outputs: n, inputs: k)
            var results: [[Float]] = []
            // 1 becomes one micro-panel, 1000 the workspace's 240, 125 becomes 120.
            for blockRows in [240, 120, 6, 1, 1000, 125] {
                var c = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { pa in c.withUnsafeMutableBufferPointer { pc in
                    packed.multiply(transA: transA, m: m, a: pa.baseAddress!, lda: transA ? m : k, c: pc.baseAddress!, ldc: n,
                                    overwrite: true, threads: 2, blockRows: blockRows)
                } }
                results.append(c)
            }
            for (i, c) in results.enumerated().dropFirst() {
                let same = c == results[0]
                #expect(same, "\(m)×\(n)×\(k), transposed A \(transA), setting \(i)")
            }
            let unwritten = results[0].contains { $0.isNaN }
            #expect(!unwritten, "\(m)×\(n)×\(k): an element was not written")
        }
    }

    /// Every instruction set (lowered to what the CPU runs) against a Double reference.
    @Test(arguments: PackedMatrix.InstructionSet.allCases)
    func everyInstructionSetMatchesTheReference(_ isa: PackedMatrix.InstructionSet) {
        var rng = SeededRandom(seed: 32)
        for (m, n, k) in Self.shapes {
            let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
            let w = (0..<(n * k)).map { _ in rng.nextFloat() - 0.5 }
            // A linear layer's weights (n × k) multiply as Wᵀ.
            let expected = reference(a, w, m: m, n: n, k: k, transA: false, transB: true)
            let packed = PackedMatrix(linearWeights: w, outputs: n, inputs: k, instructionSet: isa)
            #expect(packed.instructionSet.rawValue == min(isa.rawValue, PackedMatrix.InstructionSet.native.rawValue))
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { pa in c.withUnsafeMutableBufferPointer { pc in
                packed.multiply(m: m, a: pa.baseAddress!, lda: k, c: pc.baseAddress!, ldc: n)
            } }
            let worst = zip(c, expected).map { abs(Double($0) - $1) }.max() ?? 0
            #expect(worst < 1e-4 * Double(max(1, k / 32)), "\(isa) \(m)×\(n)×\(k): worst error \(worst)")
        }
    }

    /// With `overwrite`, what C held (NaN here) does not matter: the product is the portable kernel's with beta 0,
    /// bit for bit, for A read in place and packed and for every thread count; C's spare columns stay as they were.
    @Test(arguments: [false, true])
    func overwritingIgnoresWhatCHeld(_ transA: Bool) {
        var rng = SeededRandom(seed: 33)
        for (m, n, k) in Self.shapes {
            let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
            let w = (0..<(n * k)).map { _ in rng.nextFloat() - 0.5 }
            let ldc = n + 2
            var portable = [Float](repeating: 0, count: m * ldc)
            a.withUnsafeBufferPointer { pa in w.withUnsafeBufferPointer { pw in portable.withUnsafeMutableBufferPointer { pc in
                GEMM.portableMultiply(transA: transA, transB: true, m: m, n: n, k: k, alpha: 1.5, a: pa.baseAddress!, lda: transA ? m : k,
                                      b: pw.baseAddress!, ldb: k, beta: 0, c: pc.baseAddress!, ldc: ldc)
            } } }
            let packed = PackedMatrix(linearWeights: w, outputs: n, inputs: k)
            for threads in [1, 2] {
                var c = [Float](repeating: .nan, count: m * ldc)
                a.withUnsafeBufferPointer { pa in c.withUnsafeMutableBufferPointer { pc in
                    packed.multiply(transA: transA, m: m, alpha: 1.5, a: pa.baseAddress!, lda: transA ? m : k, c: pc.baseAddress!, ldc: ldc,
                                    overwrite: true, threads: threads)
                } }
                for i in 0..<m {
                    #expect(Array(c[(i * ldc)..<(i * ldc + n)]) == Array(portable[(i * ldc)..<(i * ldc + n)]), "\(m)×\(n)×\(k) row \(i), \(threads) threads")
                    let spareWritten = c[(i * ldc + n)..<((i + 1) * ldc)].contains { !$0.isNaN }
                    #expect(!spareWritten, "\(m)×\(n)×\(k) row \(i): a spare column was written")
                }
            }
        }
    }

    /// An overwriting product with alpha 0 writes zeros over what C held.
    @Test func anOverwritingProductWithAlphaZeroWritesZeros() {
        let packed = PackedMatrix(linearWeights: [1, 2, 3, 4, 5, 6], outputs: 2, inputs: 3)
        var c: [Float] = [.nan, 8, .nan]
        let a: [Float] = [1, 1, 1]
        a.withUnsafeBufferPointer { pa in c.withUnsafeMutableBufferPointer { pc in
            packed.multiply(m: 1, alpha: 0, a: pa.baseAddress!, lda: 3, c: pc.baseAddress!, ldc: 3, overwrite: true)
        } }
        let spareKept = c[2].isNaN
        #expect(c[0] == 0 && c[1] == 0 && spareKept)
    }

    /// m = 0 and alpha = 0 leave C as it was.
    @Test func emptyProductsLeaveCAlone() {
        let packed = PackedMatrix(linearWeights: [1, 2, 3, 4, 5, 6], outputs: 2, inputs: 3)
        var c: [Float] = [7, 8]
        let a: [Float] = [1, 1, 1]
        a.withUnsafeBufferPointer { pa in c.withUnsafeMutableBufferPointer { pc in
            packed.multiply(m: 0, a: pa.baseAddress!, lda: 3, c: pc.baseAddress!, ldc: 2)
            packed.multiply(m: 1, alpha: 0, a: pa.baseAddress!, lda: 3, c: pc.baseAddress!, ldc: 2)
        } }
        #expect(c == [7, 8])
        a.withUnsafeBufferPointer { pa in c.withUnsafeMutableBufferPointer { pc in
            packed.multiply(m: 1, a: pa.baseAddress!, lda: 3, c: pc.baseAddress!, ldc: 2)
        } }
        #expect(c == [13, 23])
    }
}
