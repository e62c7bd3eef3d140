import FedRouteNumerics

/// Shape of a BERT encoder.
public struct BertConfiguration: Sendable, Equatable, Codable {
    public var hidden = 384
    public var layers = 6
    public var heads = 12
    public var intermediate = 1536
    public var maxPositions = 512
    public var layerNormEpsilon: Float = 1e-12

    public init() {}

    public var headDimension: Int { hidden / heads }
}

/// A BERT encoder's weights (Hugging Face names, Linear weights `[out, in]`) and its forward pass.
///
/// Sequences are packed without padding: every operation but attention is row-wise, and attention
/// runs per sequence over its own tokens, which equals the padded, masked computation exactly.
public struct BertEncoder: Sendable {
    /// How the linear layers multiply.
    public enum LinearKernel: Sendable, Equatable, CustomStringConvertible {
        /// `GEMM.multiply` (OpenBLAS, Accelerate or the portable kernel), which packs the weights on every call.
        case gemm
        /// The weights packed once at load for the portable micro-kernel at this instruction set
        /// (`PackedMatrix`); the same bits as the portable kernel, without repacking them per batch.
        case packed(PackedMatrix.InstructionSet)

        /// Packed where the portable kernel does the work anyway (no BLAS library loaded: the README's first
        /// command on a fresh machine) and on CPUs with AVX-512; GEMM where a BLAS library is loaded on other CPUs.
        /// On the AVX-512 EPYC the packed products write their first slice over C instead of adding to zeros and
        /// read A in place, a column block of 384 at a time; so the whole forward pass ran 3–14 % faster at 15
        /// tokens than with OpenBLAS's Cooperlake kernels, and level at 64 × 256 tokens (0.95–1.03). With
        /// OpenBLAS's Haswell kernels against the AVX2 micro-kernel, OpenBLAS was 0–11 % faster, so AVX2-only CPUs
        /// keep it (README, "Performance", stop 48).
        public static var automatic: LinearKernel {
            GEMM.backend == .portable || PackedMatrix.InstructionSet.native == .avx512 ? .packed(.native) : .gemm
        }

        public var description: String {
            switch self {
            case .gemm: return "gemm (\(GEMM.backendDescription))"
            case .packed(let isa): return "packed (\(isa))"
            }
        }
    }

    /// A linear layer's weights (`out × in`, PyTorch's layout) in the form its kernel multiplies.
    struct Linear: Sendable {
        enum Weights: Sendable {
            case rows([Float])
            case packed(PackedMatrix)
        }

        let weights: Weights
        let bias: [Float]
        let inputs: Int

        init(_ w: [Float], bias: [Float], kernel: LinearKernel) {
            self.bias = bias
            inputs = w.count / bias.count
            switch kernel {
            case .gemm: weights = .rows(w)
            case .packed(let isa): weights = .packed(PackedMatrix(linearWeights: w, outputs: bias.count, inputs: inputs, instructionSet: isa))
            }
        }
    }

    struct Layer: Sendable {
        /// Query, key and value weights stacked (`[3·hidden, hidden]`) so one GEMM computes all three.
        var queryKeyValue: Linear
        var attentionOut: Linear
        var norm1Gain, norm1Bias: [Float]
        var intermediate, output: Linear
        var norm2Gain, norm2Bias: [Float]
    }

    public let configuration: BertConfiguration
    /// How the linear layers multiply (chosen at load).
    public let linearKernel: LinearKernel
    public let vocabularySize: Int
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenTypeEmbedding: [Float]
    let embeddingNormGain: [Float]
    let embeddingNormBias: [Float]
    let layers: [Layer]

    /// Reads the weights from `tensors`, checking every name and shape.
    public init(tensors: [String: Tensor], configuration c: BertConfiguration = BertConfiguration(), source: String,
                linearKernel: LinearKernel = .automatic) throws {
        func t(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let x = tensors[name] ?? tensors["bert." + name] else { throw EmbeddingError.invalidModel("\(source) has no tensor \(name)") }
            guard x.shape == shape || (shape.first == -1 && x.shape.count == shape.count && Array(x.shape.dropFirst()) == Array(shape.dropFirst())) else {
                throw EmbeddingError.invalidModel("\(source): tensor \(name) has shape \(x.shape), expected \(shape)")
            }
            guard x.values.allSatisfy(\.isFinite) else { throw EmbeddingError.invalidModel("\(source): tensor \(name) contains NaN or infinity") }
            return x.values
        }
        let h = c.hidden
        configuration = c
        self.linearKernel = linearKernel
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [-1, h])
        vocabularySize = wordEmbeddings.count / h
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [c.maxPositions, h])
        tokenTypeEmbedding = Array(try t("embeddings.token_type_embeddings.weight", [-1, h]).prefix(h))
        embeddingNormGain = try t("embeddings.LayerNorm.weight", [h])
        embeddingNormBias = try t("embeddings.LayerNorm.bias", [h])
        layers = try (0..<c.layers).map { l in
            let p = "encoder.layer.\(l)."
            return Layer(
                queryKeyValue: Linear(try t(p + "attention.self.query.weight", [h, h]) + t(p + "attention.self.key.weight", [h, h])
                                        + t(p + "attention.self.value.weight", [h, h]),
                                      bias: try t(p + "attention.self.query.bias", [h]) + t(p + "attention.self.key.bias", [h])
                                        + t(p + "attention.self.value.bias", [h]), kernel: linearKernel),
                attentionOut: Linear(try t(p + "attention.output.dense.weight", [h, h]), bias: try t(p + "attention.output.dense.bias", [h]),
                                     kernel: linearKernel),
                norm1Gain: try t(p + "attention.output.LayerNorm.weight", [h]), norm1Bias: try t(p + "attention.output.LayerNorm.bias", [h]),
                intermediate: Linear(try t(p + "intermediate.dense.weight", [c.intermediate, h]),
                                     bias: try t(p + "intermediate.dense.bias", [c.intermediate]), kernel: linearKernel),
                output: Linear(try t(p + "output.dense.weight", [h, c.intermediate]), bias: try t(p + "output.dense.bias", [h]), kernel: linearKernel),
                norm2Gain: try t(p + "output.LayerNorm.weight", [h]), norm2Bias: try t(p + "output.LayerNorm.bias", [h]))
        }
    }

    /// Mean-pooled, L2-normalised sentence embeddings of token-id sequences (each ≤ maxPositions), computed by a
    /// `SpinningTeam` of `GEMM.portableThreads` threads that lives for this call: a forward pass is dozens of short
    /// parallel steps, and the team's threads wait for the next one spinning instead of asleep. Each call brings its
    /// own team, so callers that embed at once on the same cores should take turns (the gateway's `RoutingBatcher`
    /// runs one batch at a time) or pass a `DispatchExecutor` to `embed(_:on:)`.
    public func embed(_ sequences: [[Int]]) -> Matrix {
        SpinningTeam.run { embed(sequences, on: $0) }
    }

    /// `embed(_:)` with its parallel steps on `executor`: the same bits whatever the executor.
    public func embed(_ sequences: [[Int]], on executor: any ParallelExecutor) -> Matrix {
        let h = configuration.hidden
        var out = Matrix(rows: sequences.count, cols: h)
        guard !sequences.isEmpty else { return out }
        let hidden = forward(sequences, on: executor)
        var offset = 0
        for (s, ids) in sequences.enumerated() {
            var pooled = [Float](repeating: 0, count: h)
            for t in 0..<ids.count { for j in 0..<h { pooled[j] += hidden[(offset + t) * h + j] } }
            offset += ids.count
            var norm: Float = 0
            for j in 0..<h { pooled[j] /= Float(max(1, ids.count)); norm += pooled[j] * pooled[j] }
            let inv = 1 / max(norm.squareRoot(), 1e-12)
            for j in 0..<h { out.data[s * h + j] = pooled[j] * inv }
        }
        return out
    }

    /// Last hidden states of all tokens, sequences packed one after another (`Σ len × hidden`).
    func forward(_ sequences: [[Int]], on executor: any ParallelExecutor) -> [Float] {
        let c = configuration
        let h = c.hidden
        let n = sequences.reduce(0) { $0 + $1.count }
        var x = [Float](repeating: 0, count: n * h)
        var row = 0
        for ids in sequences {
            for (t, id) in ids.enumerated() {
                for j in 0..<h {
                    x[row * h + j] = wordEmbeddings[id * h + j] + positionEmbeddings[t * h + j] + tokenTypeEmbedding[j]
                }
                row += 1
            }
        }
        layerNorm(&x, rows: n, gain: embeddingNormGain, bias: embeddingNormBias, on: executor)
        for layer in layers { x = apply(layer, to: x, sequences: sequences.map(\.count), on: executor) }
        return x
    }

    /// `y = x·Wᵀ + b` for `x` of `rows × in` and `W` of `out × in`; with `addBias` false, `x·Wᵀ` alone, for a caller
    /// that adds the bias in a pass it makes over the rows anyway (`biasResidualNorm`, `biasGELU`).
    func linear(_ x: [Float], rows: Int, _ layer: Linear, addBias: Bool = true, on executor: any ParallelExecutor) -> [Float] {
        let b = layer.bias
        let outDim = b.count
        let inDim = layer.inputs
        // Every element is written: each row starts as the bias, or the product overwrites (BLAS with beta 0, the
        // packed kernel storing its first slice) rows that start unwritten.
        let overwrites = !addBias
        var y = [Float](unsafeUninitializedCapacity: rows * outDim) { yp, initialized in
            if addBias {
                b.withUnsafeBufferPointer { bp in
                    let shared = RowParallel.Shared((y: yp.baseAddress!, b: bp.baseAddress!))
                    RowParallel.forEachRange(count: rows, minimumPerPart: max(1, 65_536 / max(1, outDim)), on: executor) { range in
                        for r in range { (shared.value.y + r * outDim).initialize(from: shared.value.b, count: outDim) }
                    }
                }
            }
            initialized = rows * outDim
        }
        switch layer.weights {
        case .rows(let w):
            GEMM.multiply(transA: false, transB: true, m: rows, n: outDim, k: inDim, alpha: 1, a: x, lda: inDim, b: w, ldb: inDim,
                          beta: overwrites ? 0 : 1, c: &y, ldc: outDim, on: executor)
        case .packed(let w):
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                w.multiply(m: rows, a: xp.baseAddress!, lda: inDim, c: yp.baseAddress!, ldc: outDim, overwrite: overwrites, on: executor)
            } }
        }
        return y
    }

    /// Rows this many at a time in the fused passes: a block of rows stays in the first-level cache between the
    /// pass's steps.
    static let fusedRowBlock = 8

    /// `y ← LayerNorm(y + b + residual)` row by row (the bias first, then the residual, the order of the unfused
    /// steps), each block of rows added and normalized while it is in cache, the rows split over the cores.
    func biasResidualNorm(_ y: inout [Float], bias: [Float], residual: [Float], rows: Int, gain: [Float], normBias: [Float],
                          on executor: any ParallelExecutor) {
        let h = bias.count
        let eps = configuration.layerNormEpsilon
        y.withUnsafeMutableBufferPointer { yp in residual.withUnsafeBufferPointer { xp in bias.withUnsafeBufferPointer { bp in
            gain.withUnsafeBufferPointer { gp in normBias.withUnsafeBufferPointer { np in
                let shared = RowParallel.Shared((y: yp.baseAddress!, x: xp.baseAddress!, b: bp.baseAddress!, g: gp.baseAddress!, n: np.baseAddress!))
                RowParallel.forEachRange(count: rows, minimumPerPart: 64, on: executor) { range in
                    let v = shared.value
                    var r = range.lowerBound
                    while r < range.upperBound {
                        let end = min(range.upperBound, r + Self.fusedRowBlock)
                        for i in r..<end {
                            VectorMath.add(v.b, into: v.y + i * h, count: h)
                            VectorMath.add(v.x + i * h, into: v.y + i * h, count: h)
                        }
                        for i in r..<end { NeuralKernels.layerNormRow(v.y + i * h, n: h, gain: v.g, bias: v.n, epsilon: eps) }
                        r = end
                    }
                }
            } }
        } } }
    }

    /// `y ← GELU(y + b)` row by row, each row's bias added and activated while it is in cache, the rows split over
    /// the cores.
    func biasGELU(_ y: inout [Float], bias: [Float], rows: Int, on executor: any ParallelExecutor) {
        let n = bias.count
        y.withUnsafeMutableBufferPointer { yp in bias.withUnsafeBufferPointer { bp in
            let shared = RowParallel.Shared((y: yp.baseAddress!, b: bp.baseAddress!))
            RowParallel.forEachRange(count: rows, minimumPerPart: max(1, 32_768 / max(1, n)), on: executor) { range in
                let v = shared.value
                for i in range {
                    VectorMath.add(v.b, into: v.y + i * n, count: n)
                    VectorMath.gelu(v.y + i * n, v.y + i * n, count: n)
                }
            }
        } }
    }

    func apply(_ l: Layer, to x: [Float], sequences lengths: [Int], on executor: any ParallelExecutor) -> [Float] {
        let c = configuration
        let h = c.hidden, d = c.headDimension
        let n = x.count / h
        let qkv = linear(x, rows: n, l.queryKeyValue, on: executor)
        // Attention writes every element of its sequence's rows (each head its d columns).
        var context = [Float](unsafeUninitializedCapacity: n * h) { _, initialized in initialized = n * h }
        var starts: [Int] = []
        var offset = 0
        for len in lengths {
            starts.append(offset)
            offset += len
        }
        qkv.withUnsafeBufferPointer { p in context.withUnsafeMutableBufferPointer { cp in
            let job = AttentionJob(q: p.baseAddress!, k: p.baseAddress! + h, v: p.baseAddress! + 2 * h, stride: 3 * h, context: cp.baseAddress!,
                                   hidden: h, heads: c.heads, headDimension: d, starts: starts, lengths: lengths)
            // Sequences are independent, each a part (each writes only its own rows).
            executor.forEachPart(lengths.count) { job.run(sequence: $0) }
        } }
        // The three products below leave their bias to the pass that follows them (one pass over the rows instead of
        // a bias fill before the product and separate passes after it).
        var y = linear(context, rows: n, l.attentionOut, addBias: false, on: executor)
        biasResidualNorm(&y, bias: l.attentionOut.bias, residual: x, rows: n, gain: l.norm1Gain, normBias: l.norm1Bias, on: executor)
        var inter = linear(y, rows: n, l.intermediate, addBias: false, on: executor)
        biasGELU(&inter, bias: l.intermediate.bias, rows: n, on: executor)
        var out = linear(inter, rows: n, l.output, addBias: false, on: executor)
        biasResidualNorm(&out, bias: l.output.bias, residual: y, rows: n, gain: l.norm2Gain, normBias: l.norm2Bias, on: executor)
        return out
    }

    func layerNorm(_ x: inout [Float], rows: Int, gain: [Float], bias: [Float], on executor: any ParallelExecutor) {
        let h = gain.count
        let eps = configuration.layerNormEpsilon
        x.withUnsafeMutableBufferPointer { xp in gain.withUnsafeBufferPointer { g in bias.withUnsafeBufferPointer { b in
            NeuralKernels.layerNormRows(xp.baseAddress!, rows: rows, n: h, gain: g.baseAddress!, bias: b.baseAddress!, epsilon: eps, on: executor)
        } } }
    }
}

/// Self-attention of one packed sequence at a time: per head, scores `Q·Kᵀ/√d` (one GEMM), a fused
/// row softmax, and `P·V` (one GEMM) into the sequence's rows of the context; up to 32 tokens, the C
/// kernel `NeuralKernels.shortAttentionHead` instead of the two GEMM calls. A sequence is one part of its step, so
/// its products run on the part's thread alone (`InlineExecutor`).
private struct AttentionJob: @unchecked Sendable {
    /// Row i of Q, K and V starts at `q`, `k`, `v` + i·stride (they are column blocks of one `[n, 3·hidden]` product).
    let q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int
    let context: UnsafeMutablePointer<Float>
    let hidden: Int, heads: Int, headDimension: Int
    let starts: [Int], lengths: [Int]

    func run(sequence s: Int) {
        let len = lengths[s], h = hidden, d = headDimension
        guard len > 0 else { return }
        let scale = 1 / Float(d).squareRoot()
        if len <= NeuralKernels.shortAttentionMaxLength && d <= NeuralKernels.shortAttentionMaxHeadDimension {
            for head in 0..<heads {
                let base = starts[s] * stride + head * d
                NeuralKernels.shortAttentionHead(q: q + base, k: k + base, v: v + base, stride: stride, len: len, d: d, scale: scale,
                                                 out: context + starts[s] * h + head * d, outStride: h)
            }
            return
        }
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: len * len)
        defer { scores.deallocate() }
        for head in 0..<heads {
            let base = starts[s] * stride + head * d
            GEMM.multiply(transA: false, transB: true, m: len, n: len, k: d, alpha: scale, a: q + base, lda: stride,
                          b: k + base, ldb: stride, beta: 0, c: scores, ldc: len, on: InlineExecutor())
            for r in 0..<len { NeuralKernels.softmaxRow(scores + r * len, n: len) }
            GEMM.multiply(transA: false, transB: false, m: len, n: d, k: len, alpha: 1, a: scores, lda: len,
                          b: v + base, ldb: stride, beta: 0, c: context + starts[s] * h + head * d, ldc: h, on: InlineExecutor())
        }
    }
}
