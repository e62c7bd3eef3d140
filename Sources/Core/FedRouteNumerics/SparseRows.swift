/// The non-zero entries of a row-major matrix, row by row (compressed sparse rows), for products
/// with a dense weight matrix that skip the zeros.
///
/// Hashed n-gram TF-IDF features are mostly zeros (a short query sets a few dozen of 1,024
/// columns). A dense GEMM multiplies every one of them, and, for the few-row batches of a small
/// client, packs the whole weight matrix to do so. The two products here touch only the weight rows
/// of columns that hold a value. They add the same non-zero terms as the dense product, in ascending
/// column (forward) or row (backward) order, so their results differ from a GEMM's only by rounding
/// order; they are deterministic and do not depend on the thread count. Which path a batch takes
/// depends on the whole batch's density, so `MLPNetwork` uses it for training steps only.
public struct SparseRows: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    /// `rowStarts[r]..<rowStarts[r + 1]` index row r's entries in `columns` and `values`.
    public let rowStarts: [Int]
    public let columns: [Int32]
    public let values: [Float]

    /// The largest share of non-zeros for which the sparse products beat a dense GEMM on a batch of
    /// `rows` rows: 4 % plus 2 / rows. A dense product's cost has a fixed part (packing the whole
    /// weight matrix) that a few-row batch cannot spread, the sparse one's grows with the non-zeros
    /// alone. Fitted to `fedroute-bench --only sparse` at the MLP-Router's 1,024 × 512 first layer
    /// (forward + backward against OpenBLAS with SkylakeX kernels, 2 cores, two runs): sparse wins
    /// below about 27 % density at 8 rows, 6–11 % at 32 and 3–6 % at 128 (ratios within ±0.1 of
    /// break-even on either side of the rule's line).
    public static func worthwhileDensity(rows: Int) -> Double {
        0.04 + 2 / Double(max(1, rows))
    }

    /// The non-zeros of `matrix`, or nil when more than `maximumDensity` of its entries are non-zero
    /// (default `worthwhileDensity(rows:)`), or it is empty, or has more than `Int32.max` columns.
    public init?(_ matrix: Matrix, maximumDensity: Double? = nil) {
        let total = matrix.rows * matrix.cols
        guard total > 0, matrix.cols <= Int(Int32.max) else { return nil }
        let limit = Int(Double(total) * (maximumDensity ?? Self.worthwhileDensity(rows: matrix.rows)))
        var starts = [Int](repeating: 0, count: matrix.rows + 1)
        var columns: [Int32] = []
        var values: [Float] = []
        let tooDense: Bool = matrix.data.withUnsafeBufferPointer { x in
            for r in 0..<matrix.rows {
                let row = x.baseAddress! + r * matrix.cols
                for c in 0..<matrix.cols where row[c] != 0 {
                    if columns.count == limit { return true }
                    columns.append(Int32(c))
                    values.append(row[c])
                }
                starts[r + 1] = columns.count
            }
            return false
        }
        guard !tooDense else { return nil }
        rows = matrix.rows
        cols = matrix.cols
        rowStarts = starts
        self.columns = columns
        self.values = values
    }

    /// The number of non-zero entries.
    public var nonZeroCount: Int { values.count }

    /// `out[r, :] += Σ_c self[r, c] · w[c, :]` for the `rows × n` row-major `out` and the
    /// `cols × n` row-major `w` (the forward product `X·W` added to what `out` holds, e.g. a bias).
    public func multiplyAdd(_ w: UnsafePointer<Float>, n: Int, into out: UnsafeMutablePointer<Float>) {
        columns.withUnsafeBufferPointer { cs in
            values.withUnsafeBufferPointer { vs in
                for r in 0..<rows {
                    let y = out + r * n
                    for e in rowStarts[r]..<rowStarts[r + 1] {
                        VectorMath.axpy(vs[e], w + Int(cs[e]) * n, into: y, count: n)
                    }
                }
            }
        }
    }

    /// `out[c, :] += Σ_r self[r, c] · d[r, :]` for the `rows × n` row-major `d` and the `cols × n`
    /// row-major `out` (the weight gradient `Xᵀ·dZ`). Rows of `out` whose column holds no value are
    /// not touched; each touched row sums its terms in ascending `r`.
    public func transposeMultiplyAdd(_ d: UnsafePointer<Float>, n: Int, into out: UnsafeMutablePointer<Float>) {
        columns.withUnsafeBufferPointer { cs in
            values.withUnsafeBufferPointer { vs in
                for r in 0..<rows {
                    let x = d + r * n
                    for e in rowStarts[r]..<rowStarts[r + 1] {
                        VectorMath.axpy(vs[e], x, into: out + Int(cs[e]) * n, count: n)
                    }
                }
            }
        }
    }
}
