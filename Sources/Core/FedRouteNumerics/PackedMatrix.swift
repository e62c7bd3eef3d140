import CFedRouteKernels

/// A constant right-hand operand of `C += alpha · op(A) · B`, packed once into the column panels of the
/// portable GEMM's micro-kernel.
///
/// `GEMM.multiply` packs op(B) again on every call (OpenBLAS in its copy routines, the portable kernel in
/// `fr_sgemm_rows`, once per thread). For a layer's weights, multiplied by a new batch of activations each
/// time, that is repeated work: in MiniLM's 15-token batches on the portable kernel it was 13 % of the time.
/// A packed matrix skips it. Its products read A in place when A is not transposed (packing blocks of A was
/// the next repeated copy) and walk C in column blocks of 384, rows outermost within each (blocks of 240 rows, or
/// 120 where the second-level cache is under 1 MB), so that a block of B stays in the second-level cache and a
/// block of C in cache over all of k; the micro-kernel and the order of
/// every sum are the portable kernel's, so a product is bit-identical to `GEMM.portableMultiply` at the same
/// instruction set, for any thread count.
public struct PackedMatrix: Sendable {
    /// The micro-kernel's vector width. A matrix is packed for one; asking for more than the CPU runs gives
    /// the widest it does.
    public enum InstructionSet: Int32, Sendable, CaseIterable, CustomStringConvertible {
        case generic = 0, avx2 = 1, avx512 = 2

        /// The widest this CPU runs (what `GEMM.portableMultiply` uses).
        public static var native: InstructionSet { InstructionSet(rawValue: fr_gemm_isa()) ?? .generic }

        public var description: String { ["generic", "avx2+fma", "avx512"][Int(rawValue)] }
    }

    /// Rows of B (the shared dimension of the product).
    public let k: Int
    /// Columns of B and of C.
    public let n: Int
    /// The instruction set the matrix was packed for and its products run at (the one asked for, or the
    /// widest the CPU has when that is less).
    public let instructionSet: InstructionSet
    let panels: [Float]

    /// Packs op(B) (`k × n`; B itself is `n × k` when `transposed`), row-major with leading dimension `ldb`.
    public init(b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, transposed: Bool, instructionSet: InstructionSet = .native) {
        precondition(k > 0 && n > 0 && ldb >= (transposed ? k : n), "PackedMatrix: bad shape \(k) × \(n), ldb \(ldb)")
        let width = Int(fr_gemm_panel_width(instructionSet.rawValue))
        let (columns, o1) = ((n + width - 1) / width).multipliedReportingOverflow(by: width)
        let (count, o2) = columns.multipliedReportingOverflow(by: k)
        precondition(!o1 && !o2, "PackedMatrix: \(k) × \(n) does not fit in memory")
        // What the kernels will run: the request, lowered to what the CPU has.
        let isa = InstructionSet(rawValue: min(instructionSet.rawValue, InstructionSet.native.rawValue)) ?? .generic
        self.k = k
        self.n = n
        self.instructionSet = isa
        panels = [Float](unsafeUninitializedCapacity: count) { p, initialized in
            fr_pack_b_panels(isa.rawValue, transposed ? 1 : 0, b, ldb, k, n, p.baseAddress!)
            initialized = count
        }
    }

    /// B = Wᵀ for a linear layer's weights W (`outputs × inputs`, row-major, as PyTorch stores them), so that
    /// `multiply` computes `x · Wᵀ`.
    public init(linearWeights w: [Float], outputs: Int, inputs: Int, instructionSet: InstructionSet = .native) {
        precondition(w.count == outputs * inputs, "PackedMatrix: \(w.count) weights for \(outputs) × \(inputs)")
        self = w.withUnsafeBufferPointer { PackedMatrix(b: $0.baseAddress!, ldb: inputs, k: inputs, n: outputs, transposed: true, instructionSet: instructionSet) }
    }

    /// C (`m × n`, leading dimension `ldc`) += alpha · op(A) · B, with op(A) `m × k` (A is `k × m` when
    /// `transA`); with `overwrite`, C = alpha · op(A) · B, whatever C's first n columns held (they may be
    /// uninitialised memory; the portable kernel's beta-0 product, except that a sum of exactly −0 stays −0).
    /// Rows are split over `threads` (default: as `GEMM.portableMultiply` would on `executor`) in whole
    /// micro-panels, run by `executor`; each thread writes only its own rows of C.
    public func multiply(transA: Bool = false, m: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int, overwrite: Bool = false, threads: Int? = nil,
                         on executor: any ParallelExecutor = DispatchExecutor()) {
        multiply(transA: transA, m: m, alpha: alpha, a: a, lda: lda, c: c, ldc: ldc, overwrite: overwrite, threads: threads,
                 blockRows: Self.blockRows, on: executor)
    }

    /// The rows the kernel takes over all of k at a time on this CPU (`fr_gemm_packed_block_rows`, asked once): 240,
    /// or 120 where the second-level cache is under 1 MB.
    static let blockRows = Int(fr_gemm_packed_block_rows())

    /// `multiply` with the kernel's row blocks set: `blockRows` unless a test asks for another.
    func multiply(transA: Bool = false, m: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  c: UnsafeMutablePointer<Float>, ldc: Int, overwrite: Bool = false, threads: Int? = nil, blockRows: Int,
                  on executor: any ParallelExecutor = DispatchExecutor()) {
        guard m > 0, alpha != 0 || overwrite else { return }
        let (chunk, parts) = GEMM.portableRowParts(m: m, n: n, k: k, threads: threads, available: executor.threads)
        panels.withUnsafeBufferPointer { packed in
            let job = PackedGEMMJob(isa: instructionSet.rawValue, transA: transA, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                    packed: packed.baseAddress!, c: c, ldc: ldc, overwrite: overwrite, chunk: chunk, blockRows: blockRows)
            executor.forEachPart(parts) { job.run(part: $0) }
        }
    }
}

/// Rows [part·chunk, (part+1)·chunk) of one packed product per thread (each writes only its own rows of C).
private struct PackedGEMMJob: @unchecked Sendable {
    let isa: Int32, transA: Bool, m: Int, n: Int, k: Int, alpha: Float
    let a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>
    let c: UnsafeMutablePointer<Float>, ldc: Int, overwrite: Bool, chunk: Int, blockRows: Int

    func run(part: Int) {
        // Only a transposed A is packed into the workspace; A as it is is read in place.
        let workspace = transA ? UnsafeMutableRawPointer.allocate(byteCount: fr_gemm_packed_workspace_bytes(), alignment: 64) : nil
        defer { workspace?.deallocate() }
        let m0 = part * chunk
        fr_sgemm_rows_packed(isa, transA ? 1 : 0, m0, min(m, m0 + chunk), n, k, alpha, a, lda, packed, c, ldc, overwrite ? 1 : 0,
                             blockRows, workspace)
    }
}
