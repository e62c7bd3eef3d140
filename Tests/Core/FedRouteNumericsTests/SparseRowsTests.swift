import FedRouteNumerics
import Testing

/// `SparseRows`' products against dense GEMMs, and its density limit.
@Suite struct SparseRowsTests {
    /// A `rows × cols` matrix with `perRow` non-zeros per row at seeded columns (some negative).
    func sparseMatrix(rows: Int, cols: Int, perRow: Int, seed: UInt64) -> Matrix {
        var rng = SeededRandom(seed: seed)
        var m = Matrix(rows: rows, cols: cols)
        for r in 0..<rows {
            for _ in 0..<perRow { m[r, Int(rng.next() % UInt64(cols))] = rng.nextFloat() * 2 - 1 }
        }
        return m
    }

    @Test func productsMatchDenseGEMM() throws {
        let rows = 9, cols = 300, n = 37
        let x = sparseMatrix(rows: rows, cols: cols, perRow: 7, seed: 1)
        let sparse = try #require(SparseRows(x))
        #expect(sparse.nonZeroCount == x.data.filter { $0 != 0 }.count)
        var rng = SeededRandom(seed: 2)
        let w = (0..<(cols * n)).map { _ in rng.nextFloat() * 2 - 1 }
        let bias = (0..<(rows * n)).map { _ in rng.nextFloat() }
        // Forward: bias + X·W.
        var dense = bias, viaSparse = bias
        GEMM.multiply(transA: false, transB: false, m: rows, n: n, k: cols, alpha: 1, a: x.data, lda: cols, b: w, ldb: n, beta: 1, c: &dense, ldc: n)
        w.withUnsafeBufferPointer { wp in viaSparse.withUnsafeMutableBufferPointer { o in sparse.multiplyAdd(wp.baseAddress!, n: n, into: o.baseAddress!) } }
        for i in dense.indices { #expect(abs(dense[i] - viaSparse[i]) <= 1e-5 * max(1, abs(dense[i])), "forward[\(i)]") }
        // Backward: Xᵀ·dZ into zeros; rows of unused columns stay exactly zero.
        let d = (0..<(rows * n)).map { _ in rng.nextFloat() * 2 - 1 }
        var gradDense = [Float](repeating: 0, count: cols * n), gradSparse = gradDense
        GEMM.multiply(transA: true, transB: false, m: cols, n: n, k: rows, alpha: 1, a: x.data, lda: cols, b: d, ldb: n, beta: 0, c: &gradDense, ldc: n)
        d.withUnsafeBufferPointer { dp in gradSparse.withUnsafeMutableBufferPointer { o in sparse.transposeMultiplyAdd(dp.baseAddress!, n: n, into: o.baseAddress!) } }
        for i in gradDense.indices { #expect(abs(gradDense[i] - gradSparse[i]) <= 1e-5 * max(1, abs(gradDense[i])), "gradient[\(i)]") }
        let used = Set(sparse.columns.map(Int.init))
        for c in 0..<cols where !used.contains(c) { #expect(gradSparse[(c * n)..<((c + 1) * n)].allSatisfy { $0 == 0 }) }
    }

    @Test func denseOrEmptyInputsAreRefused() {
        // 7 of 300 per row is 2.3 %: sparse. 30 of 64 per row is ~37 %: dense at 64 rows (limit 7.1 %).
        #expect(SparseRows(sparseMatrix(rows: 4, cols: 300, perRow: 7, seed: 3)) != nil)
        #expect(SparseRows(sparseMatrix(rows: 64, cols: 64, perRow: 30, seed: 4)) == nil)
        // The default limit falls with the batch size: a few rows cannot spread a GEMM's packing.
        #expect(SparseRows.worthwhileDensity(rows: 8) == 0.29 && SparseRows.worthwhileDensity(rows: 128) == 0.04 + 1.0 / 64)
        let twelvePercent = sparseMatrix(rows: 8, cols: 1000, perRow: 128, seed: 5)
        #expect(SparseRows(twelvePercent) != nil)
        #expect(SparseRows(Matrix(rows: 128, cols: 1000, data: Array(repeating: twelvePercent.data, count: 16).flatMap { $0 })) == nil)
        #expect(SparseRows(Matrix(rows: 0, cols: 10)) == nil)
        // An all-zero batch is the sparsest there is: no entries, every row empty.
        let zero = SparseRows(Matrix(rows: 3, cols: 10))
        #expect(zero?.nonZeroCount == 0 && zero?.rowStarts == [0, 0, 0, 0])
        // The limit is exact: 2 of 20 entries pass at density 0.1 and fail at 0.05.
        var two = Matrix(rows: 2, cols: 10)
        two[0, 1] = 1
        two[1, 9] = -2
        #expect(SparseRows(two, maximumDensity: 0.1)?.columns == [1, 9])
        #expect(SparseRows(two, maximumDensity: 0.05) == nil)
    }
}
