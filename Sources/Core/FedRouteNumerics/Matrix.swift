/// A dense, row-major matrix of `Float`.
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public private(set) var cols: Int
    /// Row-major storage, `rows * cols` elements.
    public var data: [Float]

    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && cols >= 0, "matrix dimensions must be non-negative")
        self.rows = rows
        self.cols = cols
        self.data = Array(repeating: value, count: rows * cols)
    }

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "matrix data has \(data.count) elements, expected \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// Builds a matrix from equally long rows.
    public init(rowArrays: [[Float]]) {
        let cols = rowArrays.first?.count ?? 0
        precondition(rowArrays.allSatisfy { $0.count == cols }, "rows of unequal length")
        self.init(rows: rowArrays.count, cols: cols, data: rowArrays.flatMap { $0 })
    }

    @inlinable public subscript(row: Int, col: Int) -> Float {
        get { data[row * cols + col] }
        set { data[row * cols + col] = newValue }
    }

    /// A copy of one row.
    public func row(_ index: Int) -> [Float] {
        Array(data[(index * cols)..<((index + 1) * cols)])
    }

    /// The rows at `indices`, in that order.
    public func gatherRows(_ indices: [Int]) -> Matrix {
        var out = Matrix(rows: indices.count, cols: cols)
        data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for (r, i) in indices.enumerated() {
                    let s = src.baseAddress! + i * cols
                    (dst.baseAddress! + r * cols).update(from: s, count: cols)
                }
            }
        }
        return out
    }

    public func transposed() -> Matrix {
        var out = Matrix(rows: cols, cols: rows)
        for r in 0..<rows {
            for c in 0..<cols { out.data[c * rows + r] = data[r * cols + c] }
        }
        return out
    }

    /// Squared L2 norm of every row.
    public func rowSquaredNorms() -> [Float] {
        (0..<rows).map { r in
            var s: Float = 0
            for c in 0..<cols { let v = data[r * cols + c]; s += v * v }
            return s
        }
    }

    /// True when every element is finite.
    public var isFinite: Bool { data.allSatisfy { $0.isFinite } }
}

extension Matrix {
    /// `self · other` (with optional transposes), computed by `GEMM`.
    public func multiplied(by other: Matrix, transposeSelf: Bool = false, transposeOther: Bool = false) -> Matrix {
        let m = transposeSelf ? cols : rows
        let k = transposeSelf ? rows : cols
        let k2 = transposeOther ? other.cols : other.rows
        let n = transposeOther ? other.rows : other.cols
        precondition(k == k2, "matrix product shape mismatch: \(m)x\(k) · \(k2)x\(n)")
        var out = Matrix(rows: m, cols: n)
        GEMM.multiply(
            transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k,
            alpha: 1, a: data, lda: cols, b: other.data, ldb: other.cols, beta: 0, c: &out.data, ldc: n)
        return out
    }
}

/// Matrices cross process boundaries (federated messages) as `{rows, cols, data}`; decoding checks
/// that the element count matches the shape.
extension Matrix: Codable {
    enum CodingKeys: String, CodingKey { case rows, cols, data }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let rows = try c.decode(Int.self, forKey: .rows)
        let cols = try c.decode(Int.self, forKey: .cols)
        let data = try PackedFloats.decode(forKey: .data, in: c, decoder: decoder)
        guard ShapeLimits.checkedCount([rows, cols]) == data.count else {
            throw DecodingError.dataCorruptedError(forKey: .data, in: c, debugDescription: "matrix \(rows)×\(cols) carries \(data.count) values")
        }
        self.init(rows: rows, cols: cols, data: data)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rows, forKey: .rows)
        try c.encode(cols, forKey: .cols)
        try PackedFloats.encode(data, forKey: .data, in: &c, encoder: encoder)
    }
}
