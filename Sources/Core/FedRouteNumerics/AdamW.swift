import CFedRouteKernels

/// Hyper-parameters of decoupled-weight-decay Adam (Loshchilov & Hutter).
public struct AdamWConfiguration: Sendable, Codable, Equatable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 3e-4) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Why these settings cannot train (a learning rate ≤ 0 or not finite, a negative weight decay,
    /// β outside [0, 1), ε ≤ 0), or nil.
    public var problem: String? {
        guard learningRate.isFinite, learningRate > 0 else { return "the learning rate must be a finite number > 0, not \(learningRate)" }
        guard weightDecay.isFinite, weightDecay >= 0 else { return "the weight decay must be a finite number ≥ 0, not \(weightDecay)" }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else { return "Adam's β1 and β2 must be in [0, 1), not \(beta1) and \(beta2)" }
        guard epsilon.isFinite, epsilon > 0 else { return "Adam's ε must be > 0, not \(epsilon)" }
        return nil
    }
}

/// AdamW optimiser state for a list of tensors (PyTorch semantics: decay applied as `p -= lr·wd·p`).
public struct AdamW: Sendable {
    public var configuration: AdamWConfiguration
    public private(set) var step: Int = 0
    private var m: [[Float]]
    private var v: [[Float]]
    /// Per tensor, per block of 8 elements: whether any gradient in it has been non-zero yet. Until
    /// then its moments are exactly zero and the update is the decoupled decay alone, which the
    /// step applies without reading or writing the moments (sparse inputs leave most first-layer
    /// rows without gradient on a small client).
    private var moving: [[Bool]]
    /// Per-tensor switch: false exempts a tensor from weight decay.
    public var decayMask: [Bool]

    public init(configuration: AdamWConfiguration, shapes: [Int], decayMask: [Bool]? = nil) {
        self.configuration = configuration
        m = shapes.map { Array(repeating: 0, count: $0) }
        v = shapes.map { Array(repeating: 0, count: $0) }
        moving = shapes.map { Array(repeating: false, count: ($0 + 7) / 8) }
        self.decayMask = decayMask ?? Array(repeating: true, count: shapes.count)
    }

    /// One update of `parameters` with `gradients` (same order and sizes as at init).
    public mutating func update(_ parameters: inout [Tensor], gradients: [[Float]]) {
        precondition(parameters.count == m.count && gradients.count == m.count, "AdamW: tensor count changed")
        step += 1
        let c = configuration
        let bc1 = 1 - Float(Scalar.exp(Double(step) * Scalar.log(Double(c.beta1))))
        let bc2 = 1 - Float(Scalar.exp(Double(step) * Scalar.log(Double(c.beta2))))
        let stepSize = c.learningRate / bc1
        for t in parameters.indices {
            let decay: Float = decayMask[t] ? c.learningRate * c.weightDecay : 0
            parameters[t].values.withUnsafeMutableBufferPointer { p in
                m[t].withUnsafeMutableBufferPointer { mt in
                    v[t].withUnsafeMutableBufferPointer { vt in
                        gradients[t].withUnsafeBufferPointer { g in
                          moving[t].withUnsafeMutableBufferPointer { mv in
                            precondition(g.count == p.count, "AdamW: gradient size mismatch for tensor \(t)")
                            guard let p0 = p.baseAddress, let m0 = mt.baseAddress, let v0 = vt.baseAddress, let g0 = g.baseAddress,
                                  let a0 = mv.baseAddress else { return }
                            let shared = RowParallel.Shared((p: p0, m: m0, v: v0, g: g0, moving: a0))
                            let count = p.count, inverseBias2 = 1 / bc2
                            // Large tensors over the cores, in parts that start on multiples of 8, so every
                            // element is computed exactly as in one pass.
                            RowParallel.forEachRange(count: (count + 7) / 8, minimumPerPart: 8_192) { blocks in
                                let start = blocks.lowerBound * 8, end = min(count, blocks.upperBound * 8)
                                let (p, m, v, g, moving) = shared.value
                                Self.kernelStep(
                                    count: end - start, parameters: p + start, m: m + start, v: v + start, gradients: g + start,
                                    moving: moving + blocks.lowerBound,
                                    beta1: c.beta1, beta2: c.beta2, inverseBias2: inverseBias2, epsilon: c.epsilon, stepSize: stepSize, decay: decay)
                            }
                          }
                        }
                    }
                }
            }
        }
    }

    /// `referenceStep` as the C kernel (`CFedRouteKernels/OptimizerKernels.c`), with 256-bit vectors where the
    /// CPU has AVX2 (`width`: 0 for the generic 128-bit build, 1 for AVX2, nil for the widest this CPU runs):
    /// the same operations in the same order, so the same bits as `referenceStep` at every width (tested).
    /// `update` uses it; Swift's own `SIMD8<Float>` runs as two 128-bit halves on baseline x86-64.
    @inline(__always)
    public static func kernelStep(
        count: Int, parameters p: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
        gradients g: UnsafePointer<Float>, moving: UnsafeMutablePointer<Bool>,
        beta1: Float, beta2: Float, inverseBias2: Float, epsilon: Float, stepSize: Float, decay: Float, width: Int32? = nil
    ) {
        if let width {
            fr_adamw_step_isa(width, count, p, m, v, g, moving, beta1, beta2, inverseBias2, epsilon, stepSize, decay)
        } else {
            fr_adamw_step(count, p, m, v, g, moving, beta1, beta2, inverseBias2, epsilon, stepSize, decay)
        }
    }

    /// One pass over a tensor, 8 lanes at a time: both moments, the decoupled decay and the step.
    /// Element i is computed by the same expression inside a vector and in the tail. The definition
    /// of the step that `kernelStep` (which `update` runs) is tested against.
    ///
    /// A block whose moments are still zero (`moving[b]` false) and whose gradient is zero takes the
    /// decay alone, `p − decay·p`: the full step would give the same bits, since its moments stay +0
    /// and its step term is `stepSize·0/ε = 0`.
    @inline(__always)
    public static func referenceStep(
        count: Int, parameters p: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
        gradients g: UnsafePointer<Float>, moving: UnsafeMutablePointer<Bool>,
        beta1: Float, beta2: Float, inverseBias2: Float, epsilon: Float, stepSize: Float, decay: Float
    ) {
        typealias V = VectorMath.Vector
        @inline(__always) func update(_ p0: V, _ m0: V, _ v0: V, _ g0: V) -> (V, V, V) {
            let m1 = beta1 * m0 + (1 - beta1) * g0
            let v1 = beta2 * v0 + (1 - beta2) * g0 * g0
            let denom = (v1 * inverseBias2).squareRoot() + epsilon
            var p1 = p0 - decay * p0
            p1 = p1 - stepSize * m1 / denom
            return (p1, m1, v1)
        }
        var i = 0
        while i + 8 <= count {
            let g0 = VectorMath.load(g + i)
            if !moving[i / 8] {
                if VectorMath.isZero(g0) {
                    if decay != 0 {
                        let p0 = VectorMath.load(p + i)
                        VectorMath.store(p0 - decay * p0, p + i)
                    }
                    i += 8
                    continue
                }
                moving[i / 8] = true
            }
            let (p1, m1, v1) = update(VectorMath.load(p + i), VectorMath.load(m + i), VectorMath.load(v + i), g0)
            VectorMath.store(p1, p + i)
            VectorMath.store(m1, m + i)
            VectorMath.store(v1, v + i)
            i += 8
        }
        if i < count {
            let r = count - i
            // The tail always takes the full step (at most 7 elements per tensor).
            moving[i / 8] = true
            let (p1, m1, v1) = update(VectorMath.loadPartial(p + i, r), VectorMath.loadPartial(m + i, r), VectorMath.loadPartial(v + i, r),
                                      VectorMath.loadPartial(g + i, r))
            VectorMath.storePartial(p1, p + i, r)
            VectorMath.storePartial(m1, m + i, r)
            VectorMath.storePartial(v1, v + i, r)
        }
    }
}
