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
    struct Layer: Sendable {
        var query, queryBias, key, keyBias, value, valueBias: [Float]
        var attentionOut, attentionOutBias, norm1Gain, norm1Bias: [Float]
        var intermediate, intermediateBias, output, outputBias, norm2Gain, norm2Bias: [Float]
    }

    public let configuration: BertConfiguration
    public let vocabularySize: Int
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenTypeEmbedding: [Float]
    let embeddingNormGain: [Float]
    let embeddingNormBias: [Float]
    let layers: [Layer]

    /// Reads the weights from `tensors`, checking every name and shape.
    public init(tensors: [String: Tensor], configuration c: BertConfiguration = BertConfiguration(), source: String) throws {
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
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [-1, h])
        vocabularySize = wordEmbeddings.count / h
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [c.maxPositions, h])
        tokenTypeEmbedding = Array(try t("embeddings.token_type_embeddings.weight", [-1, h]).prefix(h))
        embeddingNormGain = try t("embeddings.LayerNorm.weight", [h])
        embeddingNormBias = try t("embeddings.LayerNorm.bias", [h])
        layers = try (0..<c.layers).map { l in
            let p = "encoder.layer.\(l)."
            return Layer(
                query: try t(p + "attention.self.query.weight", [h, h]), queryBias: try t(p + "attention.self.query.bias", [h]),
                key: try t(p + "attention.self.key.weight", [h, h]), keyBias: try t(p + "attention.self.key.bias", [h]),
                value: try t(p + "attention.self.value.weight", [h, h]), valueBias: try t(p + "attention.self.value.bias", [h]),
                attentionOut: try t(p + "attention.output.dense.weight", [h, h]), attentionOutBias: try t(p + "attention.output.dense.bias", [h]),
                norm1Gain: try t(p + "attention.output.LayerNorm.weight", [h]), norm1Bias: try t(p + "attention.output.LayerNorm.bias", [h]),
                intermediate: try t(p + "intermediate.dense.weight", [c.intermediate, h]), intermediateBias: try t(p + "intermediate.dense.bias", [c.intermediate]),
                output: try t(p + "output.dense.weight", [h, c.intermediate]), outputBias: try t(p + "output.dense.bias", [h]),
                norm2Gain: try t(p + "output.LayerNorm.weight", [h]), norm2Bias: try t(p + "output.LayerNorm.bias", [h]))
        }
    }

    /// Mean-pooled, L2-normalised sentence embeddings of token-id sequences (each ≤ maxPositions).
    public func embed(_ sequences: [[Int]]) -> Matrix {
        let h = configuration.hidden
        var out = Matrix(rows: sequences.count, cols: h)
        guard !sequences.isEmpty else { return out }
        let hidden = forward(sequences)
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
    func forward(_ sequences: [[Int]]) -> [Float] {
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
        layerNorm(&x, rows: n, gain: embeddingNormGain, bias: embeddingNormBias)
        for layer in layers { x = apply(layer, to: x, sequences: sequences.map(\.count)) }
        return x
    }

    /// `y = x·Wᵀ + b` for `x` of `rows × in` and `W` of `out × in`.
    func linear(_ x: [Float], rows: Int, _ w: [Float], _ b: [Float]) -> [Float] {
        let outDim = b.count
        let inDim = w.count / outDim
        var y = [Float](repeating: 0, count: rows * outDim)
        for r in 0..<rows { for j in 0..<outDim { y[r * outDim + j] = b[j] } }
        GEMM.multiply(transA: false, transB: true, m: rows, n: outDim, k: inDim, alpha: 1, a: x, lda: inDim, b: w, ldb: inDim, beta: 1, c: &y, ldc: outDim)
        return y
    }

    func apply(_ l: Layer, to x: [Float], sequences lengths: [Int]) -> [Float] {
        let c = configuration
        let h = c.hidden, d = c.headDimension
        let n = x.count / h
        let q = linear(x, rows: n, l.query, l.queryBias)
        let k = linear(x, rows: n, l.key, l.keyBias)
        let v = linear(x, rows: n, l.value, l.valueBias)
        var context = [Float](repeating: 0, count: n * h)
        let scale = 1 / Float(d).squareRoot()
        var start = 0
        var scores = [Float]()
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in context.withUnsafeMutableBufferPointer { cp in
            for len in lengths {
                scores = [Float](repeating: 0, count: len * len)
                for head in 0..<c.heads {
                    let base = start * h + head * d
                    scores.withUnsafeMutableBufferPointer { sp in
                        GEMM.multiply(transA: false, transB: true, m: len, n: len, k: d, alpha: scale, a: qp.baseAddress! + base, lda: h,
                                      b: kp.baseAddress! + base, ldb: h, beta: 0, c: sp.baseAddress!, ldc: len)
                        for r in 0..<len {
                            var m = -Float.infinity
                            for j in 0..<len { m = max(m, sp[r * len + j]) }
                            var sum: Float = 0
                            for j in 0..<len { let e = Scalar.exp(sp[r * len + j] - m); sp[r * len + j] = e; sum += e }
                            for j in 0..<len { sp[r * len + j] /= sum }
                        }
                        GEMM.multiply(transA: false, transB: false, m: len, n: d, k: len, alpha: 1, a: sp.baseAddress!, lda: len,
                                      b: vp.baseAddress! + base, ldb: h, beta: 0, c: cp.baseAddress! + base, ldc: h)
                    }
                }
                start += len
            }
        } } } }
        var y = linear(context, rows: n, l.attentionOut, l.attentionOutBias)
        for i in y.indices { y[i] += x[i] }
        layerNorm(&y, rows: n, gain: l.norm1Gain, bias: l.norm1Bias)
        var inter = linear(y, rows: n, l.intermediate, l.intermediateBias)
        for i in inter.indices { inter[i] = Scalar.gelu(inter[i]) }
        var out = linear(inter, rows: n, l.output, l.outputBias)
        for i in out.indices { out[i] += y[i] }
        layerNorm(&out, rows: n, gain: l.norm2Gain, bias: l.norm2Bias)
        return out
    }

    func layerNorm(_ x: inout [Float], rows: Int, gain: [Float], bias: [Float]) {
        let h = gain.count
        let eps = configuration.layerNormEpsilon
        for r in 0..<rows {
            var mean: Float = 0
            for j in 0..<h { mean += x[r * h + j] }
            mean /= Float(h)
            var variance: Float = 0
            for j in 0..<h { let e = x[r * h + j] - mean; variance += e * e }
            variance /= Float(h)
            let inv = 1 / (variance + eps).squareRoot()
            for j in 0..<h { x[r * h + j] = (x[r * h + j] - mean) * inv * gain[j] + bias[j] }
        }
    }
}
