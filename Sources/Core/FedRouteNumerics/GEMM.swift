#if canImport(Accelerate)
import Accelerate
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Which implementation `GEMM` uses.
public enum GEMMBackend: String, Sendable {
    /// Apple's Accelerate framework.
    case accelerate
    /// OpenBLAS, loaded at run time (`libopenblas.so.0`); absent libraries fall back to `portable`.
    case openBLAS = "openblas"
    /// Cache-blocked pure Swift; always available.
    case portable
}

/// Single-precision general matrix multiply, `C = alpha·op(A)·op(B) + beta·C`, row-major.
///
/// Uses an optimised BLAS where the machine has one (Accelerate on Apple platforms, OpenBLAS on
/// Linux, found at run time so the package builds and runs without it) and a portable Swift kernel
/// otherwise. Set `FEDROUTE_BLAS=portable` to force the fallback, or `FEDROUTE_BLAS=/path/lib.so`
/// to name a CBLAS library.
public enum GEMM {
    /// The backend `multiply` dispatches to in this process.
    public static var backend: GEMMBackend { CBLASLibrary.loaded == nil ? .portable : CBLASLibrary.loadedBackend }

    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if let blas = CBLASLibrary.loaded, k > 0 {
            blas.sgemm(
                101, transA ? 112 : 111, transB ? 112 : 111, Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        portableMultiply(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// Array convenience over the pointer form.
    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float, c: inout [Float], ldc: Int
    ) {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    multiply(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                        a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                        beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            }
        }
    }

    /// The pure-Swift kernel, public so benchmarks and tests can compare it with the BLAS path.
    public static func portableMultiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // Scale C by beta first.
        for i in 0..<m {
            let ci = c + i * ldc
            if beta == 0 { ci.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { ci[j] *= beta } }
        }
        if k == 0 || alpha == 0 { return }
        // Pack op(B) as a contiguous k×n block so the inner loop is a unit-stride axpy.
        let packedB = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        defer { packedB.deallocate() }
        if transB {
            for p in 0..<k { for j in 0..<n { packedB[p * n + j] = b[j * ldb + p] } }
        } else {
            for p in 0..<k { (packedB + p * n).update(from: b + p * ldb, count: n) }
        }
        let rowA = UnsafeMutablePointer<Float>.allocate(capacity: k)
        defer { rowA.deallocate() }
        let blockK = 256
        for i in 0..<m {
            if transA { for p in 0..<k { rowA[p] = a[p * lda + i] } } else { rowA.update(from: a + i * lda, count: k) }
            let ci = c + i * ldc
            var p0 = 0
            while p0 < k {
                let p1 = min(p0 + blockK, k)
                for p in p0..<p1 {
                    let s = alpha * rowA[p]
                    if s == 0 { continue }
                    let bp = packedB + p * n
                    for j in 0..<n { ci[j] += s * bp[j] }
                }
                p0 = p1
            }
        }
    }
}

/// CBLAS entry points resolved from a shared library.
struct CBLASLibrary: @unchecked Sendable {
    typealias SGEMM = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
        UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    let sgemm: SGEMM

    /// Resolved once per process; immutable afterwards.
    static let loaded: CBLASLibrary? = load()

    static var loadedBackend: GEMMBackend {
        #if canImport(Accelerate)
        return .accelerate
        #else
        return .openBLAS
        #endif
    }

    private static func load() -> CBLASLibrary? {
        let request = getEnvironment("FEDROUTE_BLAS")
        if request == "portable" || request == "none" { return nil }
        #if canImport(Accelerate)
        return CBLASLibrary(sgemm: { order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
            cblas_sgemm(
                CBLAS_ORDER(rawValue: UInt32(order)), CBLAS_TRANSPOSE(rawValue: UInt32(ta)),
                CBLAS_TRANSPOSE(rawValue: UInt32(tb)), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        })
        #elseif canImport(Glibc) || canImport(Musl)
        let candidates = request.map { [$0] } ?? [
            "libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblas64_.so.0",
        ]
        for name in candidates {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let symbol = dlsym(handle, "cblas_sgemm") else { continue }
            return CBLASLibrary(sgemm: unsafeBitCast(symbol, to: SGEMM.self))
        }
        return nil
        #else
        return nil
        #endif
    }
}

func getEnvironment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
