import FedRouteNumerics

/// Targets of one mini-batch: observed score and normalised cost per (row, model), with the mask.
public struct MLPBatchTargets: Sendable {
    public var score: [Float]
    public var cost: [Float]
    public var mask: [Float]
    /// Optional distillation targets on every cell: a teacher's predicted probability and
    /// normalised cost. Their squared errors, averaged over all cells, are added with `distillationWeight`.
    public var teacher: (score: [Float], cost: [Float])?
    public var distillationWeight: Float = 0

    public init(score: [Float], cost: [Float], mask: [Float]) {
        self.score = score
        self.cost = cost
        self.mask = mask
    }

    public var observedCount: Int { mask.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
}

/// The MLP-Router network: trunk of `[Linear → LayerNorm → GELU → Dropout]` layers (or, for the
/// MF-Router, `[Linear]` layers: `TrunkKind.linear`), then a per-model accuracy head (sigmoid) and
/// cost head (normalised log-cost).
///
/// Parameters are a flat list of named tensors (weights stored `[in, out]`), which is what
/// optimisers, federated averaging and the safetensors file see.
public struct MLPNetwork: Sendable, Equatable {
    public let architecture: MLPArchitecture
    public var parameters: [Tensor]
    public static let layerNormEpsilon: Float = 1e-5

    /// PyTorch-default initialisation (uniform ±1/√fan_in), LayerNorm gain 1 and bias 0.
    public init(architecture a: MLPArchitecture, seed: UInt64) {
        architecture = a
        var rng = SeededRandom(seed: seed)
        func uniform(_ count: Int, _ bound: Float) -> [Float] {
            // A local generator and a plain loop: drawing through the captured one costs an
            // exclusivity check per number, which dominated creating a client's network.
            var local = rng
            var v = [Float](repeating: 0, count: count)
            v.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] = (local.nextFloat() * 2 - 1) * bound } }
            rng = local
            return v
        }
        func linear(_ name: String, _ fanIn: Int, _ fanOut: Int) -> [Tensor] {
            let bound = 1 / Float(fanIn).squareRoot()
            let w = uniform(fanIn * fanOut, bound)
            let b = uniform(fanOut, bound)
            return [Tensor(name: name + ".weight", shape: [fanIn, fanOut], values: w), Tensor(name: name + ".bias", shape: [fanOut], values: b)]
        }
        var p: [Tensor] = []
        for l in 0..<a.trunkLayers {
            p += linear("trunk.\(l)", l == 0 ? a.inputDimension : a.hiddenDimension, a.hiddenDimension)
            guard a.trunk == .gelu else { continue }
            p.append(Tensor(name: "trunk.\(l).norm.weight", shape: [a.hiddenDimension], repeating: 1))
            p.append(Tensor(name: "trunk.\(l).norm.bias", shape: [a.hiddenDimension], repeating: 0))
        }
        p += linear("accuracy_head", a.hiddenDimension, a.modelCount)
        p += linear("cost_head", a.hiddenDimension, a.modelCount)
        parameters = p
    }

    /// A network with given parameters; the architecture is validated and the names, shapes and
    /// values (finite) are checked against it before anything is allocated.
    public init(architecture: MLPArchitecture, parameters: [Tensor]) throws {
        try architecture.validate()
        let expected = architecture.parameterShapes
        guard parameters.map(\.name) == expected.map(\.name) else {
            throw RouterError.invalidConfiguration("MLP parameters \(parameters.map(\.name)) do not match the architecture's \(expected.map(\.name))")
        }
        for (p, r) in zip(parameters, expected) where p.shape != r.shape {
            throw RouterError.invalidConfiguration("MLP tensor \(p.name) has shape \(p.shape), expected \(r.shape)")
        }
        if let bad = parameters.first(where: { !$0.values.allSatisfy(\.isFinite) }) {
            throw RouterError.invalidConfiguration("MLP tensor \(bad.name) holds NaN or infinity")
        }
        self.architecture = architecture
        self.parameters = parameters
    }

    /// Weight decay applies to Linear weights only (not biases or LayerNorm), as is customary.
    public var decayMask: [Bool] { parameters.map { $0.name.hasSuffix(".weight") && !$0.name.contains(".norm.") } }

    // Tensor positions.
    func linearIndex(_ layer: Int) -> Int { layer * architecture.tensorsPerLayer }
    var accuracyHeadIndex: Int { architecture.trunkLayers * architecture.tensorsPerLayer }
    var costHeadIndex: Int { accuracyHeadIndex + 2 }

    struct LayerCache {
        var input: Matrix
        var normalized: Matrix
        var invStd: [Float]
        var preActivation: Matrix
        var dropMask: [Float]?
        /// The input's non-zeros when it is sparse enough for `SparseRows`' products (first layer only).
        var sparseInput: SparseRows? = nil
    }

    /// Forward pass: accuracy logits and normalised-cost predictions, `B × M` each.
    func forward(_ x: Matrix, training: Bool, rng: inout SeededRandom, caches: inout [LayerCache]) -> (logits: Matrix, cost: Matrix, hidden: Matrix) {
        let a = architecture
        var h = x
        caches.removeAll(keepingCapacity: true)
        for l in 0..<a.trunkLayers {
            let wi = linearIndex(l)
            let inDim = h.cols
            var z = Matrix(rows: h.rows, cols: a.hiddenDimension)
            for r in 0..<h.rows { z.data.replaceSubrange((r * a.hiddenDimension)..<((r + 1) * a.hiddenDimension), with: parameters[wi + 1].values) }
            // Sparse inputs (hashed TF-IDF) skip their zeros in training; hidden activations are dense.
            // Inference keeps the GEMM (the sparse path is chosen by the batch's density, which would make a
            // query's sums depend on the queries batched with it). A query routed alone (up to 4 rows: the
            // few-row kernel) and the same query in a test set (BLAS) get the same scores up to float rounding
            // (a few units in the last place), as rows split differently by OpenBLAS always did.
            let sparse = l == 0 && training ? SparseRows(h) : nil
            if let sparse {
                parameters[wi].values.withUnsafeBufferPointer { w in z.data.withUnsafeMutableBufferPointer { zp in
                    sparse.multiplyAdd(w.baseAddress!, n: a.hiddenDimension, into: zp.baseAddress!)
                } }
            } else {
                GEMM.multiply(transA: false, transB: false, m: h.rows, n: a.hiddenDimension, k: inDim, alpha: 1,
                              a: h.data, lda: inDim, b: parameters[wi].values, ldb: a.hiddenDimension, beta: 1, c: &z.data, ldc: a.hiddenDimension)
            }
            guard a.trunk == .gelu else {
                // A linear trunk layer is the projection itself: no normalisation, activation or dropout.
                caches.append(LayerCache(input: h, normalized: Matrix(rows: 0, cols: 0), invStd: [], preActivation: Matrix(rows: 0, cols: 0),
                                         dropMask: nil, sparseInput: sparse))
                h = z
                continue
            }
            let n = a.hiddenDimension
            let rows = h.rows
            var normalized = Matrix(rows: rows, cols: n)
            var pre = Matrix(rows: rows, cols: n)
            var out = Matrix(rows: rows, cols: n)
            var invStd = [Float](repeating: 0, count: rows)
            z.data.withUnsafeBufferPointer { zp in
                parameters[wi + 2].values.withUnsafeBufferPointer { gamma in
                    parameters[wi + 3].values.withUnsafeBufferPointer { beta in
                        normalized.data.withUnsafeMutableBufferPointer { np in
                            pre.data.withUnsafeMutableBufferPointer { pp in
                                out.data.withUnsafeMutableBufferPointer { op in
                                    for r in 0..<rows {
                                        invStd[r] = NeuralKernels.layerNormGELURow(
                                            zp.baseAddress! + r * n, n: n, gamma: gamma.baseAddress!, beta: beta.baseAddress!,
                                            epsilon: Self.layerNormEpsilon, normalized: np.baseAddress! + r * n,
                                            pre: pp.baseAddress! + r * n, out: op.baseAddress! + r * n)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var mask: [Float]?
            if training && a.dropout > 0 {
                // Inverted dropout; the random numbers are drawn in row-major order, one per element.
                let keep = 1 - a.dropout
                let kept = 1 / keep
                var m = [Float](repeating: 0, count: out.data.count)
                m.withUnsafeMutableBufferPointer { mp in
                    out.data.withUnsafeMutableBufferPointer { op in
                        for i in 0..<mp.count {
                            let v: Float = rng.nextFloat() < keep ? kept : 0
                            mp[i] = v
                            op[i] *= v
                        }
                    }
                }
                mask = m
            }
            caches.append(LayerCache(input: h, normalized: normalized, invStd: invStd, preActivation: pre, dropMask: mask, sparseInput: sparse))
            h = out
        }
        let logits = head(h, accuracyHeadIndex)
        let cost = head(h, costHeadIndex)
        return (logits, cost, h)
    }

    func head(_ h: Matrix, _ index: Int) -> Matrix {
        let m = architecture.modelCount
        var out = Matrix(rows: h.rows, cols: m)
        for r in 0..<h.rows { out.data.replaceSubrange((r * m)..<((r + 1) * m), with: parameters[index + 1].values) }
        GEMM.multiply(transA: false, transB: false, m: h.rows, n: m, k: h.cols, alpha: 1, a: h.data, lda: h.cols,
                      b: parameters[index].values, ldb: m, beta: 1, c: &out.data, ldc: m)
        return out
    }

    /// Inference: predicted probability of success and normalised cost per model.
    public func predict(_ x: Matrix) -> (score: Matrix, normalizedCost: Matrix) {
        guard x.rows > Self.predictionBlockRows else { return predictBlock(x) }
        // Blocks of rows, so that every activation stays a few megabytes: on tens of thousands of rows
        // (a 25,000-row test set through a 512-wide network) each layer's output was tens of megabytes,
        // which glibc maps afresh and the kernel faults in page by page on every call. A row's outputs equal
        // the one-pass ones to rounding (OpenBLAS rounds a row by where a call's rows are split, ≤ 2e-7).
        let m = architecture.modelCount
        var score = Matrix(rows: x.rows, cols: m), cost = Matrix(rows: x.rows, cols: m)
        for start in stride(from: 0, to: x.rows, by: Self.predictionBlockRows) {
            let end = min(x.rows, start + Self.predictionBlockRows)
            let (s, c) = predictBlock(Matrix(rows: end - start, cols: x.cols, data: Array(x.data[(start * x.cols)..<(end * x.cols)])))
            score.data.replaceSubrange((start * m)..<(end * m), with: s.data)
            cost.data.replaceSubrange((start * m)..<(end * m), with: c.data)
        }
        return (score, cost)
    }

    /// Rows per forward pass in `predict`.
    static let predictionBlockRows = 2_048

    func predictBlock(_ x: Matrix) -> (score: Matrix, normalizedCost: Matrix) {
        var rng = SeededRandom(seed: 0)
        var caches: [LayerCache] = []
        let (logits, cost, _) = forward(x, training: false, rng: &rng, caches: &caches)
        var score = logits
        logits.data.withUnsafeBufferPointer { lp in score.data.withUnsafeMutableBufferPointer { sp in
            VectorMath.map(lp.baseAddress!, sp.baseAddress!, count: lp.count) { VectorMath.sigmoid($0) }
        } }
        return (score, cost)
    }

    /// Masked loss of one batch: MSE(sigmoid(logit), score) + SmoothL1(cost), both summed over
    /// observed cells and divided by their count. Unobserved cells contribute nothing.
    public func loss(_ x: Matrix, _ t: MLPBatchTargets) -> Double {
        var rng = SeededRandom(seed: 0)
        var caches: [LayerCache] = []
        let (logits, cost, _) = forward(x, training: false, rng: &rng, caches: &caches)
        return Self.maskedLoss(logits: logits, cost: cost, t).loss
    }

    static func maskedLoss(logits: Matrix, cost: Matrix, _ t: MLPBatchTargets) -> (loss: Double, dLogits: Matrix, dCost: Matrix) {
        let count = Float(max(1, t.observedCount))
        var dLogits = Matrix(rows: logits.rows, cols: logits.cols)
        var dCost = dLogits
        var loss: Double = 0
        for i in logits.data.indices where t.mask[i] > 0 {
            let p = Scalar.sigmoid(logits.data[i])
            let e = p - t.score[i]
            loss += Double(e * e)
            dLogits.data[i] = 2 * e * p * (1 - p) / count
            let d = cost.data[i] - t.cost[i]
            let ad = abs(d)
            loss += Double(ad < 1 ? 0.5 * d * d : ad - 0.5)
            dCost.data[i] = (ad < 1 ? d : (d > 0 ? 1 : -1)) / count
        }
        loss /= Double(count)
        if let teacher = t.teacher, t.distillationWeight > 0 {
            // β · mean over all cells of (p − p_teacher)² + (c − c_teacher)².
            let scale = t.distillationWeight / Float(max(1, logits.data.count))
            var distill: Double = 0
            for i in logits.data.indices {
                let p = Scalar.sigmoid(logits.data[i])
                let e = p - teacher.score[i]
                let d = cost.data[i] - teacher.cost[i]
                distill += Double(e * e + d * d)
                dLogits.data[i] += scale * 2 * e * p * (1 - p)
                dCost.data[i] += scale * 2 * d
            }
            loss += Double(scale) * distill
        }
        return (loss, dLogits, dCost)
    }

    /// Loss and gradients (same order as `parameters`) of one batch.
    public func lossAndGradients(_ x: Matrix, _ t: MLPBatchTargets, training: Bool, rng: inout SeededRandom) -> (loss: Double, gradients: [[Float]]) {
        var grads: [[Float]] = []
        let loss = lossAndGradients(x, t, training: training, rng: &rng, into: &grads)
        return (loss, grads)
    }

    /// Loss of one batch, with the gradients written into `grads` (reallocated only when its shapes do
    /// not match the parameters', so a training loop reuses one buffer for every batch).
    public func lossAndGradients(_ x: Matrix, _ t: MLPBatchTargets, training: Bool, rng: inout SeededRandom, into grads: inout [[Float]]) -> Double {
        let a = architecture
        var caches: [LayerCache] = []
        let (logits, cost, hidden) = forward(x, training: training, rng: &rng, caches: &caches)
        let (loss, dLogits, dCost) = Self.maskedLoss(logits: logits, cost: cost, t)
        if grads.count == parameters.count, zip(grads, parameters).allSatisfy({ $0.count == $1.count }) {
            for i in grads.indices { grads[i].withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        } else {
            grads = parameters.map { [Float](repeating: 0, count: $0.count) }
        }
        let b = x.rows
        let m = a.modelCount
        let n = a.hiddenDimension
        // Heads.
        for (index, d) in [(accuracyHeadIndex, dLogits), (costHeadIndex, dCost)] {
            GEMM.multiply(transA: true, transB: false, m: n, n: m, k: b, alpha: 1, a: hidden.data, lda: n, b: d.data, ldb: m, beta: 0, c: &grads[index], ldc: m)
            d.data.withUnsafeBufferPointer { dp in grads[index + 1].withUnsafeMutableBufferPointer { gp in
                VectorMath.addColumnSums(dp.baseAddress!, rows: b, cols: m, into: gp.baseAddress!)
            } }
        }
        var dH = [Float](repeating: 0, count: b * n)
        GEMM.multiply(transA: false, transB: true, m: b, n: n, k: m, alpha: 1, a: dLogits.data, lda: m, b: parameters[accuracyHeadIndex].values, ldb: m, beta: 0, c: &dH, ldc: n)
        GEMM.multiply(transA: false, transB: true, m: b, n: n, k: m, alpha: 1, a: dCost.data, lda: m, b: parameters[costHeadIndex].values, ldb: m, beta: 1, c: &dH, ldc: n)
        // Trunk, last layer first.
        for l in stride(from: a.trunkLayers - 1, through: 0, by: -1) {
            let cache = caches[l]
            let wi = linearIndex(l)
            // A linear layer passes the gradient through unchanged; a GELU layer's is computed below.
            var dZ = a.trunk == .linear ? dH : [Float](repeating: 0, count: b * n)
            if a.trunk == .gelu {
                var scratch = [Float](repeating: 0, count: n)
                let inv = cache.invStd
                var gradGamma: [Float] = []
                var gradBeta: [Float] = []
                swap(&gradGamma, &grads[wi + 2])
                swap(&gradBeta, &grads[wi + 3])
                defer {
                    swap(&gradGamma, &grads[wi + 2])
                    swap(&gradBeta, &grads[wi + 3])
                }
                dH.withUnsafeBufferPointer { dh in
                    cache.preActivation.data.withUnsafeBufferPointer { pre in
                        cache.normalized.data.withUnsafeBufferPointer { nrm in
                            parameters[wi + 2].values.withUnsafeBufferPointer { gamma in
                                gradGamma.withUnsafeMutableBufferPointer { gg in
                                    gradBeta.withUnsafeMutableBufferPointer { gb in
                                        dZ.withUnsafeMutableBufferPointer { dz in
                                            scratch.withUnsafeMutableBufferPointer { sc in
                                                withOptionalPointer(cache.dropMask) { maskBase in
                                                for r in 0..<b {
                                                    NeuralKernels.layerNormGELUBackwardRow(
                                                        dOut: dh.baseAddress! + r * n, mask: maskBase.map { $0 + r * n },
                                                        pre: pre.baseAddress! + r * n, normalized: nrm.baseAddress! + r * n,
                                                        inverseDeviation: inv[r], gamma: gamma.baseAddress!, n: n,
                                                        gradGamma: gg.baseAddress!, gradBeta: gb.baseAddress!,
                                                        dZ: dz.baseAddress! + r * n, scratch: sc.baseAddress!)
                                                }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let inDim = cache.input.cols
            if let sparse = cache.sparseInput {
                // grads[wi] is zero here; only the rows of columns the batch uses get terms.
                dZ.withUnsafeBufferPointer { dp in grads[wi].withUnsafeMutableBufferPointer { gp in
                    sparse.transposeMultiplyAdd(dp.baseAddress!, n: n, into: gp.baseAddress!)
                } }
            } else {
                GEMM.multiply(transA: true, transB: false, m: inDim, n: n, k: b, alpha: 1, a: cache.input.data, lda: inDim, b: dZ, ldb: n, beta: 0, c: &grads[wi], ldc: n)
            }
            dZ.withUnsafeBufferPointer { dp in grads[wi + 1].withUnsafeMutableBufferPointer { gp in
                VectorMath.addColumnSums(dp.baseAddress!, rows: b, cols: n, into: gp.baseAddress!)
            } }
            if l > 0 {
                var dIn = [Float](repeating: 0, count: b * inDim)
                GEMM.multiply(transA: false, transB: true, m: b, n: inDim, k: n, alpha: 1, a: dZ, lda: n, b: parameters[wi].values, ldb: n, beta: 0, c: &dIn, ldc: inDim)
                dH = dIn
            }
        }
        return loss
    }
}

extension MLPNetwork {
    /// Names of the tensors of the shared trunk (everything but the two heads).
    public var trunkTensorNames: [String] { parameters.prefix(accuracyHeadIndex).map(\.name) }

    /// The same network with `count` more models: the heads gain freshly initialised columns
    /// (PyTorch-default uniform ±1/√hidden, drawn from `seed`), everything else is unchanged.
    public func addingModels(_ count: Int, seed: UInt64) throws -> MLPNetwork {
        guard count >= 1 else { throw RouterError.invalidConfiguration("add at least one model") }
        var a = architecture
        let old = a.modelCount
        a.modelCount += count
        var rng = SeededRandom(seed: seed)
        let hidden = a.hiddenDimension
        let bound = 1 / Float(hidden).squareRoot()
        var p = parameters
        for head in [accuracyHeadIndex, costHeadIndex] {
            var w = [Float]()
            w.reserveCapacity(hidden * a.modelCount)
            for r in 0..<hidden {
                w += p[head].values[(r * old)..<((r + 1) * old)]
                for _ in 0..<count { w.append((rng.nextFloat() * 2 - 1) * bound) }
            }
            p[head] = Tensor(name: p[head].name, shape: [hidden, a.modelCount], values: w)
            p[head + 1] = Tensor(name: p[head + 1].name, shape: [a.modelCount],
                                 values: p[head + 1].values + (0..<count).map { _ in (rng.nextFloat() * 2 - 1) * bound })
        }
        return try MLPNetwork(architecture: a, parameters: p)
    }

    /// Freeze mask (true = frozen) that leaves only the head columns of models `from...` trainable:
    /// what "add new models with the trunk frozen" trains.
    public func freezeAllButModels(from first: Int) -> [[Bool]] {
        let m = architecture.modelCount
        return parameters.enumerated().map { i, t in
            guard i >= accuracyHeadIndex else { return Array(repeating: true, count: t.count) }
            return (0..<t.count).map { $0 % m < first }
        }
    }
}

extension MLPNetwork {
    /// Starts the accuracy head at each model's prior: bias b_m = logit(p̄_m) with p̄_m the mean
    /// observed training score (clamped to [0.02, 0.98]), so that the network learns a residual
    /// around best-single@λ's estimates and, where the features carry no signal, stays near them.
    /// Models without a prior (`nil`) keep their initial bias.
    public mutating func setScorePriors(_ means: [Double?]) {
        guard means.count == architecture.modelCount else { return }
        let bias = accuracyHeadIndex + 1
        for (m, p) in means.enumerated() {
            guard let p, p.isFinite else { continue }
            let q = min(0.98, max(0.02, p))
            parameters[bias].values[m] = Float(Scalar.log(q / (1 - q)))
        }
    }
}

/// Runs `body` with the array's base address, or with nil when there is no array.
private func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
