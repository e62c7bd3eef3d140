/// Dense symmetric positive-definite solves in double precision (ridge normal equations,
/// Newton steps); sizes here are a few hundred, so a plain Cholesky is enough.
public enum LinearSolve {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case notPositiveDefinite(pivot: Int)
        case shape(String)
        public var description: String {
            switch self {
            case .notPositiveDefinite(let p): "matrix is not positive definite (pivot \(p)); add regularisation"
            case .shape(let why): "shape mismatch: \(why)"
            }
        }
    }

    /// Solves A·x = b for symmetric positive-definite `a` (row-major n×n).
    public static func cholesky(_ a: [Double], _ b: [Double], n: Int) throws -> [Double] {
        guard a.count == n * n, b.count == n else { throw Failure.shape("A has \(a.count) values, b \(b.count), n = \(n)") }
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = a[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard s > 0, s.isFinite else { throw Failure.notPositiveDefinite(pivot: i) }
                    l[i * n + i] = s.squareRoot()
                } else {
                    l[i * n + j] = s / l[j * n + j]
                }
            }
        }
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = b[i]
            for k in 0..<i { s -= l[i * n + k] * y[k] }
            y[i] = s / l[i * n + i]
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = y[i]
            for k in (i + 1)..<n { s -= l[k * n + i] * x[k] }
            x[i] = s / l[i * n + i]
        }
        return x
    }
}
