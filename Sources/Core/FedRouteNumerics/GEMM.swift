import CFedRouteKernels
import Foundation
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
/// Linux, found at run time so the package builds and runs without it) and the portable kernel
/// otherwise; OpenBLAS kernels chosen for an older CPU than this one are corrected or passed over
/// (`OpenBLASCore`). Set `FEDROUTE_BLAS=portable` to force the fallback, or `FEDROUTE_BLAS=/path/lib.so`
/// to name a CBLAS library. OpenBLAS is set to one thread and large products are split by rows over
/// fedroute's own threads (`FEDROUTE_BLAS_THREADS=library` keeps OpenBLAS's threading instead): its idle
/// workers spin in `sched_yield` and would take the cores fedroute's element-wise work and servers need.
public enum GEMM {
    /// The backend `multiply` dispatches to in this process.
    public static var backend: GEMMBackend { CBLASLibrary.loaded == nil ? .portable : CBLASLibrary.loadedBackend }

    /// OpenBLAS's kernel set when `backend` is OpenBLAS (see `OpenBLASCore` for the correction on CPUs it
    /// does not recognise).
    public static var openBLASCore: OpenBLASCore? { CBLASLibrary.loaded?.core }

    /// The backend in words, with OpenBLAS's kernels or the portable kernel's instruction set, e.g.
    /// "openblas (SkylakeX kernels; OpenBLAS chose Prescott)" or "portable (avx512)".
    public static var backendDescription: String {
        guard backend == .openBLAS, let core = openBLASCore else {
            guard backend == .portable else { return backend.rawValue }
            guard let skipped = CBLASLibrary.selection.passedOver else { return "portable (\(portableInstructionSet))" }
            return "portable (\(portableInstructionSet); OpenBLAS passed over: its \(skipped.name) kernels lack FMA)"
        }
        return "openblas (\(core.name) kernels" + (core.corrected ? "; OpenBLAS chose \(core.detected) on this CPU)" : ")")
    }

    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, on executor: any ParallelExecutor = DispatchExecutor()
    ) {
        if m == 0 || n == 0 { return }
        if m <= Int(FR_FEW_ROWS_MAX), !(transA && transB), k > 0 {
            // One query through a layer, or against reference rows: B read once in place (BLAS and the portable
            // kernel would pack all of it first).
            scaleRows(c, m: m, n: n, ldc: ldc, by: beta)
            fewRowsMultiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
            return
        }
        if let blas = CBLASLibrary.loaded, k > 0 {
            // OpenBLAS runs single-threaded (its idle workers spin in sched_yield and take the core from our own
            // threads); large products are split by rows over the executor's threads here instead.
            let parts = blas.singleThreaded ? threadCount(m: m, n: n, k: k, requested: nil, available: executor.threads) : 1
            let chunk = (m + parts - 1) / parts
            if parts <= 1 || chunk < 16 {
                blas.multiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
                return
            }
            let job = BLASRowsJob(blas: blas, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                                  beta: beta, c: c, ldc: ldc, chunk: chunk)
            executor.forEachPart((m + chunk - 1) / chunk) { job.run(part: $0) }
            return
        }
        portableMultiply(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, on: executor)
    }

    /// C += alpha · op(A) · op(B) for a few rows, B read once where it lies (no packing): what `multiply` runs for
    /// m ≤ 4, such as one query through a router's layer (B as it is) or against a kNN router's reference rows
    /// (B transposed: dot products). Each element of C is summed in an order that depends only on k and then
    /// added, so a row's result is the same bits whatever the other rows of the call. With B as it is, a zero of
    /// A skips its row of B (the same sums for finite B: a sparse query reads only its features' rows). A transposed A with a
    /// transposed B is not taken (precondition). `width` forces an instantiation (0 generic, 1 AVX2 + FMA,
    /// 2 AVX-512; lowered to what the CPU runs).
    public static func fewRowsMultiply(
        transA: Bool, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, width: Int32? = nil
    ) {
        precondition(!(transA && transB), "fewRowsMultiply: a transposed A with a transposed B")
        if let width {
            fr_sgemm_few_rows_isa(width, transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, c, ldc)
        } else {
            fr_sgemm_few_rows(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, c, ldc)
        }
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

    /// The portable kernel (register-blocked SIMD micro-kernels in `CFedRouteKernels`: AVX-512, AVX2+FMA or
    /// 128-bit vectors, chosen at run time), with rows split over `threads` threads (default: the executor's)
    /// when the product is large enough to pay for them. Public so benchmarks and tests can compare it with the BLAS path.
    /// Results are bit-identical for any thread count (each element is summed in the same order).
    public static func portableMultiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil, on executor: any ParallelExecutor = DispatchExecutor()
    ) {
        if m <= 0 || n <= 0 { return }
        scaleRows(c, m: m, n: n, ldc: ldc, by: beta)
        if k <= 0 || alpha == 0 { return }
        let (chunk, parts) = portableRowParts(m: m, n: n, k: k, threads: threads, available: executor.threads)
        let job = PortableGEMMJob(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, chunk: chunk)
        executor.forEachPart(parts) { job.run(part: $0) }
    }

    /// C = beta·C on its first n columns of m rows (zeros for beta 0, whatever C held; untouched for beta 1):
    /// the kernels that follow only add alpha·A·B.
    static func scaleRows(_ c: UnsafeMutablePointer<Float>, m: Int, n: Int, ldc: Int, by beta: Float) {
        for i in 0..<m {
            let ci = c + i * ldc
            if beta == 0 { ci.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { ci[j] *= beta } }
        }
    }

    /// How the portable kernel splits m rows over threads: `parts` chunks of `chunk` rows (whole micro-panels of
    /// 6 rows; the last chunk may be shorter), as many as `threadCount` allows.
    static func portableRowParts(m: Int, n: Int, k: Int, threads: Int?, available: Int) -> (chunk: Int, parts: Int) {
        let wanted = threadCount(m: m, n: n, k: k, requested: threads, available: available)
        let chunk = ((m + wanted - 1) / wanted + 5) / 6 * 6
        return (chunk, (m + chunk - 1) / chunk)
    }

    /// Below ~4 MFLOP a second thread costs more than it saves; above, `available` threads.
    static func threadCount(m: Int, n: Int, k: Int, requested: Int?, available: Int) -> Int {
        if let requested { return max(1, requested) }
        return Double(m) * Double(n) * Double(k) < 2e6 ? 1 : max(1, available)
    }

    /// Threads the portable kernel uses for large products: the active processor count, at most 8.
    public static let portableThreads = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))

    /// The instruction set of the portable kernel on this CPU: "avx512", "avx2+fma" or "generic".
    public static var portableInstructionSet: String { ["generic", "avx2+fma", "avx512"][Int(fr_gemm_isa())] }
}

/// One portable product, split into row chunks that threads run independently (each writes only its
/// own rows of C, so sharing the pointers is safe).
private struct PortableGEMMJob: @unchecked Sendable {
    let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
    let a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
    let c: UnsafeMutablePointer<Float>, ldc: Int, chunk: Int

    func run(part: Int) {
        let workspace = UnsafeMutableRawPointer.allocate(byteCount: fr_gemm_workspace_bytes(), alignment: 64)
        defer { workspace.deallocate() }
        let m0 = part * chunk
        fr_sgemm_rows(transA ? 1 : 0, transB ? 1 : 0, m0, min(m, m0 + chunk), n, k, alpha, a, lda, b, ldb, c, ldc, workspace)
    }
}

/// Rows [part·chunk, (part+1)·chunk) of one BLAS product per thread: op(A)'s rows and C's rows only.
private struct BLASRowsJob: @unchecked Sendable {
    let blas: CBLASLibrary
    let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
    let a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float
    let c: UnsafeMutablePointer<Float>, ldc: Int, chunk: Int

    func run(part: Int) {
        let m0 = part * chunk
        // Row i of op(A) starts at a + i·lda, or at a + i when A is stored transposed.
        blas.multiply(transA: transA, transB: transB, m: min(m, m0 + chunk) - m0, n: n, k: k, alpha: alpha,
                      a: a + (transA ? m0 : m0 * lda), lda: lda, b: b, ldb: ldb, beta: beta, c: c + m0 * ldc, ldc: ldc)
    }
}

/// CBLAS entry points resolved from a shared library.
struct CBLASLibrary: @unchecked Sendable {
    typealias SGEMM = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
        UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    let sgemm: SGEMM
    /// True when the library's own threading was turned off at load (OpenBLAS: `openblas_set_num_threads(1)`).
    var singleThreaded = false
    /// OpenBLAS's kernel set (nil for another library).
    var core: OpenBLASCore?

    func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        sgemm(101, transA ? 112 : 111, transB ? 112 : 111, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Resolved once per process; immutable afterwards.
    static let selection: (library: CBLASLibrary?, passedOver: OpenBLASCore?) = load()
    static var loaded: CBLASLibrary? { selection.library }

    static var loadedBackend: GEMMBackend {
        #if canImport(Accelerate)
        return .accelerate
        #else
        return .openBLAS
        #endif
    }

    /// The library, or nil and the OpenBLAS core passed over in favour of the portable kernel.
    private static func load() -> (library: CBLASLibrary?, passedOver: OpenBLASCore?) {
        let request = getEnvironment("FEDROUTE_BLAS")
        if request == "portable" || request == "none" { return (nil, nil) }
        #if canImport(Accelerate)
        return (CBLASLibrary(sgemm: { order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
            cblas_sgemm(
                CBLAS_ORDER(rawValue: UInt32(order)), CBLAS_TRANSPOSE(rawValue: UInt32(ta)),
                CBLAS_TRANSPOSE(rawValue: UInt32(tb)), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }), nil)
        #elseif canImport(Glibc) || canImport(Musl)
        // A core the user pinned with OPENBLAS_CORETYPE is neither corrected nor passed over.
        let pinned = getEnvironment("OPENBLAS_CORETYPE") != nil
        let candidates = request.map { [$0] } ?? [
            "libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblas64_.so.0",
        ]
        for name in candidates {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let symbol = dlsym(handle, "cblas_sgemm") else { continue }
            var library = CBLASLibrary(sgemm: unsafeBitCast(symbol, to: SGEMM.self))
            if let core = adoptCore(handle, correcting: !pinned) {
                library.core = core
                // Kernels without FMA on a CPU with it: the portable GEMM is 2–3× faster (an explicit library or core is honoured).
                if request == nil, !pinned, OpenBLASCore.portableIsFaster(than: core.name, portableLevel: Int(fr_gemm_isa())) { return (nil, core) }
            }
            if getEnvironment("FEDROUTE_BLAS_THREADS") != "library", let setThreads = dlsym(handle, "openblas_set_num_threads") {
                typealias SetThreads = @convention(c) (Int32) -> Void
                unsafeBitCast(setThreads, to: SetThreads.self)(1)
                library.singleThreaded = true
            }
            return (library, nil)
        }
        return (nil, nil)
        #else
        return (nil, nil)
        #endif
    }
}

#if !canImport(Accelerate) && (canImport(Glibc) || canImport(Musl))
extension CBLASLibrary {
    /// OpenBLAS's kernel set, re-initialised with the CPU's own (`OpenBLASCore`) when `correcting` and OpenBLAS
    /// fell back to kernels without FMA; nil for a library that is not OpenBLAS.
    ///
    /// Re-initialising is OpenBLAS's own path: `gotoblas_dynamic_quit()` forgets the choice and
    /// `gotoblas_dynamic_init()` makes it again from `OPENBLAS_CORETYPE`, which is set for that call only.
    /// It runs once, while the library is loaded and before any product has used it.
    fileprivate static func adoptCore(_ handle: UnsafeMutableRawPointer, correcting: Bool) -> OpenBLASCore? {
        typealias CoreName = @convention(c) () -> UnsafePointer<CChar>?
        typealias Hook = @convention(c) () -> Void
        guard let symbol = dlsym(handle, "openblas_get_corename") else { return nil }
        let coreName = unsafeBitCast(symbol, to: CoreName.self)
        func current() -> String { coreName().map { String(cString: $0) } ?? "unknown" }
        let detected = current()
        guard correcting,
              let target = OpenBLASCore.replacement(for: detected, cpuLevel: OpenBLASCore.cpuLevel),
              let quit = dlsym(handle, "gotoblas_dynamic_quit"), let initialise = dlsym(handle, "gotoblas_dynamic_init")
        else { return OpenBLASCore(name: detected, detected: detected) }
        setenv("OPENBLAS_CORETYPE", target, 1)
        unsafeBitCast(quit, to: Hook.self)()
        unsafeBitCast(initialise, to: Hook.self)()
        unsetenv("OPENBLAS_CORETYPE")
        return OpenBLASCore(name: current(), detected: detected)
    }
}
#endif

func getEnvironment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
