import CFedRouteKernels

/// Fused, vectorised row kernels of the networks (MLP-Router trunk, MiniLM): LayerNorm with GELU forward
/// and backward, row softmax. Pointers in, nothing allocated; rows are independent, so callers may split
/// them over threads without changing a bit.
public enum NeuralKernels {
    public typealias Vector = VectorMath.Vector

    /// One row of `LayerNorm → affine → GELU`: from `z` (n values) writes `normalized` (z − mean)/σ,
    /// `pre` = normalized·γ + β and `out` = GELU(pre); returns 1/σ. σ² is the biased variance + `epsilon`.
    @inline(__always)
    public static func layerNormGELURow(
        _ z: UnsafePointer<Float>, n: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float,
        normalized: UnsafeMutablePointer<Float>, pre: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
    ) -> Float {
        let (mean, inv) = meanAndInverseDeviation(z, n: n, epsilon: epsilon)
        var j = 0
        while j + 8 <= n {
            let nv = (VectorMath.load(z + j) - mean) * inv
            let y = nv * VectorMath.load(gamma + j) + VectorMath.load(beta + j)
            VectorMath.store(nv, normalized + j)
            VectorMath.store(y, pre + j)
            j += 8
        }
        if j < n {
            let r = n - j
            let nv = (VectorMath.loadPartial(z + j, r) - mean) * inv
            let y = nv * VectorMath.loadPartial(gamma + j, r) + VectorMath.loadPartial(beta + j, r)
            VectorMath.storePartial(nv, normalized + j, r)
            VectorMath.storePartial(y, pre + j, r)
        }
        VectorMath.gelu(pre, out, count: n)
        return inv
    }

    /// In-place LayerNorm of one row: `x = (x − mean)/σ · gain + bias`.
    @inline(__always)
    public static func layerNormRow(_ x: UnsafeMutablePointer<Float>, n: Int, gain: UnsafePointer<Float>, bias: UnsafePointer<Float>, epsilon: Float) {
        let (mean, inv) = meanAndInverseDeviation(x, n: n, epsilon: epsilon)
        var j = 0
        while j + 8 <= n {
            VectorMath.store((VectorMath.load(x + j) - mean) * inv * VectorMath.load(gain + j) + VectorMath.load(bias + j), x + j)
            j += 8
        }
        while j < n {
            x[j] = (x[j] - mean) * inv * gain[j] + bias[j]
            j += 1
        }
    }

    /// In-place LayerNorm of `rows` rows of n values, split over `executor`'s threads above 64 rows a part.
    public static func layerNormRows(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, gain: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                     epsilon: Float, on executor: any ParallelExecutor = DispatchExecutor()) {
        // Each part writes only its own rows.
        let shared = RowParallel.Shared((x: x, gain: gain, bias: bias))
        RowParallel.forEachRange(count: rows, minimumPerPart: 64, on: executor) { range in
            let (x, gain, bias) = shared.value
            for r in range { layerNormRow(x + r * n, n: n, gain: gain, bias: bias, epsilon: epsilon) }
        }
    }

    /// Mean and 1/√(variance + ε) of n values (two passes, 8 lanes, fixed summation order).
    @inline(__always)
    public static func meanAndInverseDeviation(_ z: UnsafePointer<Float>, n: Int, epsilon: Float) -> (mean: Float, inverse: Float) {
        let mean = VectorMath.sum(z, count: n) / Float(n)
        var acc = Vector()
        var j = 0
        while j + 8 <= n {
            let d = VectorMath.load(z + j) - mean
            acc += d * d
            j += 8
        }
        if j < n {
            var d = VectorMath.loadPartial(z + j, n - j) - mean
            for lane in (n - j)..<8 { d[lane] = 0 }
            acc += d * d
        }
        let variance = acc.sum() / Float(n)
        return (mean, 1 / (variance + epsilon).squareRoot())
    }

    /// One row of the backward pass of `LayerNorm → affine → GELU (→ dropout)`.
    ///
    /// `dOut` is the gradient at the GELU's output (before dropout's mask `mask`, if any); adds
    /// dy·normalized to `gradGamma` and dy to `gradBeta`, and writes the gradient at the LayerNorm's input
    /// into `dZ`. `scratch` holds n floats.
    @inline(__always)
    public static func layerNormGELUBackwardRow(
        dOut: UnsafePointer<Float>, mask: UnsafePointer<Float>?, pre: UnsafePointer<Float>, normalized: UnsafePointer<Float>,
        inverseDeviation inv: Float, gamma: UnsafePointer<Float>, n: Int,
        gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>,
        dZ: UnsafeMutablePointer<Float>, scratch dN: UnsafeMutablePointer<Float>
    ) {
        var sumDN = Vector(), sumDNN = Vector()
        var j = 0
        @inline(__always) func step(_ g0: Vector, _ p: Vector, _ gm: Vector) -> (dy: Vector, dn: Vector) {
            let dy = g0 * VectorMath.geluDerivative(p)
            return (dy, dy * gm)
        }
        while j + 8 <= n {
            var g = VectorMath.load(dOut + j)
            if let mask { g *= VectorMath.load(mask + j) }
            let nv = VectorMath.load(normalized + j)
            let (dy, dn) = step(g, VectorMath.load(pre + j), VectorMath.load(gamma + j))
            VectorMath.store(VectorMath.load(gradGamma + j) + dy * nv, gradGamma + j)
            VectorMath.store(VectorMath.load(gradBeta + j) + dy, gradBeta + j)
            VectorMath.store(dn, dN + j)
            sumDN += dn
            sumDNN += dn * nv
            j += 8
        }
        if j < n {
            let r = n - j
            var g = VectorMath.loadPartial(dOut + j, r)
            if let mask { g *= VectorMath.loadPartial(mask + j, r) }
            let nv = VectorMath.loadPartial(normalized + j, r)
            let (dy, dn) = step(g, VectorMath.loadPartial(pre + j, r), VectorMath.loadPartial(gamma + j, r))
            VectorMath.storePartial(VectorMath.loadPartial(gradGamma + j, r) + dy * nv, gradGamma + j, r)
            VectorMath.storePartial(VectorMath.loadPartial(gradBeta + j, r) + dy, gradBeta + j, r)
            VectorMath.storePartial(dn, dN + j, r)
            sumDN += dn  // padded lanes are 0: g, nv and γ were loaded as 0
            sumDNN += dn * nv
        }
        let meanDN = sumDN.sum() / Float(n)
        let meanDNN = sumDNN.sum() / Float(n)
        j = 0
        while j + 8 <= n {
            VectorMath.store(inv * (VectorMath.load(dN + j) - meanDN - VectorMath.load(normalized + j) * meanDNN), dZ + j)
            j += 8
        }
        while j < n {
            dZ[j] = inv * (dN[j] - meanDN - normalized[j] * meanDNN)
            j += 1
        }
    }

    /// In-place softmax of one row of n values, `scale·x` first (attention's 1/√d); max-subtracted.
    @inline(__always)
    public static func softmaxRow(_ x: UnsafeMutablePointer<Float>, n: Int, scale: Float = 1) {
        guard n > 0 else { return }
        var maxV = Vector(repeating: -.infinity)
        var j = 0
        while j + 8 <= n {
            let v = VectorMath.load(x + j)
            maxV.replace(with: v, where: v .> maxV)
            j += 8
        }
        var m = maxV.max()
        while j < n {
            m = Swift.max(m, x[j])
            j += 1
        }
        let shift = m * scale
        VectorMath.expAffine(x, count: n, scale: scale, shift: shift)
        var total = Vector()
        j = 0
        while j + 8 <= n {
            total += VectorMath.load(x + j)
            j += 8
        }
        if j < n { total += VectorMath.loadPartial(x + j, n - j) }
        let inv = 1 / total.sum()
        j = 0
        while j + 8 <= n {
            VectorMath.store(VectorMath.load(x + j) * inv, x + j)
            j += 8
        }
        while j < n {
            x[j] *= inv
            j += 1
        }
    }

    /// Longest sequence and widest head `shortAttentionHead` takes.
    public static let shortAttentionMaxLength = Int(FR_SHORT_ATTENTION_MAX_LEN), shortAttentionMaxHeadDimension = Int(FR_SHORT_ATTENTION_MAX_D)

    /// Scaled dot-product attention of one head of one short sequence (len ≤ `shortAttentionMaxLength`,
    /// d ≤ `shortAttentionMaxHeadDimension`), without BLAS calls, whose set-up costs more than the
    /// arithmetic for a few tokens: `out[i] = Σ_j softmax_j(scale·q_i·k_j) v_j`. Rows of q, k, v and out
    /// are `stride` / `outStride` floats apart, `d` values each. The C kernel (`fr_short_attention_head`)
    /// transposes K so a query's scores are vector multiply-adds over the keys, and sums everything in
    /// a fixed order: every vector width (`width`: 0 generic, 1 AVX2, 2 AVX-512; nil the CPU's widest)
    /// gives the same bits.
    @inline(__always)
    public static func shortAttentionHead(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, len: Int, d: Int, scale: Float,
        out: UnsafeMutablePointer<Float>, outStride: Int, width: Int32? = nil
    ) {
        precondition((1...shortAttentionMaxLength).contains(len) && (1...shortAttentionMaxHeadDimension).contains(d),
                     "short attention takes 1…\(shortAttentionMaxLength) tokens and heads of 1…\(shortAttentionMaxHeadDimension) values")
        if let width {
            _ = fr_short_attention_head_isa(width, q, k, v, stride, len, d, scale, out, outStride)
        } else {
            _ = fr_short_attention_head(q, k, v, stride, len, d, scale, out, outStride)
        }
    }
}
