import FedRouteNumerics
import Foundation

/// `--only sparse`: the MLP's first-layer products on sparse inputs (hashed TF-IDF), `SparseRows`
/// against the dense GEMM the network would otherwise call, interleaved, best of 25 each, at the
/// MLP-Router's shape (1,024 inputs × 512 hidden) for a small client's batch and a full one.
/// Forward is `Z = bias + X·W`, backward `dW = Xᵀ·dZ` into a zeroed buffer, as in `MLPNetwork`.
func sparseBench() {
    let cols = 1024, n = 512
    var rng = SeededRandom(seed: 7)
    let w = (0..<(cols * n)).map { _ in rng.nextFloat() - 0.5 }
    print("First-layer products on sparse inputs (\(cols) inputs × \(n) hidden; GEMM backend: \(GEMM.backendDescription))")
    print("rows  density  nnz/row   GEMM fwd+bwd   sparse fwd+bwd   sparse / GEMM   MLPNetwork takes")
    for rows in [8, 32, 128] {
        for density in [0.01, 0.03, 0.06, 0.12, 0.2, 0.3] {
            var x = Matrix(rows: rows, cols: cols)
            let perRow = max(1, Int(density * Double(cols)))
            for r in 0..<rows { for _ in 0..<perRow { x[r, rng.nextInt(below: cols)] = rng.nextFloat() } }
            guard let sparse = SparseRows(x, maximumDensity: 1) else { continue }
            let bias = [Float](repeating: 0.1, count: rows * n)
            let dZ = (0..<(rows * n)).map { _ in rng.nextFloat() - 0.5 }
            var z = bias, grad = [Float](repeating: 0, count: cols * n)
            var tDense = Double.infinity, tSparse = Double.infinity
            for _ in 0..<25 {
                tDense = min(tDense, seconds {
                    z = bias
                    GEMM.multiply(transA: false, transB: false, m: rows, n: n, k: cols, alpha: 1, a: x.data, lda: cols, b: w, ldb: n, beta: 1, c: &z, ldc: n)
                    grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                    GEMM.multiply(transA: true, transB: false, m: cols, n: n, k: rows, alpha: 1, a: x.data, lda: cols, b: dZ, ldb: n, beta: 0, c: &grad, ldc: n)
                })
                tSparse = min(tSparse, seconds {
                    z = bias
                    w.withUnsafeBufferPointer { wp in z.withUnsafeMutableBufferPointer { sparse.multiplyAdd(wp.baseAddress!, n: n, into: $0.baseAddress!) } }
                    grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                    dZ.withUnsafeBufferPointer { d in grad.withUnsafeMutableBufferPointer { sparse.transposeMultiplyAdd(d.baseAddress!, n: n, into: $0.baseAddress!) } }
                })
            }
            let measured = Double(sparse.nonZeroCount) / Double(rows * cols)
            let chosen = SparseRows(x) == nil ? "GEMM" : "sparse"
            print(String(format: "%4d  %6.3f  %7.1f   %9.1f µs   %11.1f µs   %8.2f       ", rows, measured, Double(sparse.nonZeroCount) / Double(rows),
                         tDense * 1e6, tSparse * 1e6, tSparse / tDense) + chosen)
        }
    }
}
