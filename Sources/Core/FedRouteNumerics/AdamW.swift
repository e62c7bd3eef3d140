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
    /// Per-tensor switch: false exempts a tensor from weight decay.
    public var decayMask: [Bool]

    public init(configuration: AdamWConfiguration, shapes: [Int], decayMask: [Bool]? = nil) {
        self.configuration = configuration
        m = shapes.map { Array(repeating: 0, count: $0) }
        v = shapes.map { Array(repeating: 0, count: $0) }
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
                            precondition(g.count == p.count, "AdamW: gradient size mismatch for tensor \(t)")
                            for i in 0..<p.count {
                                let gi = g[i]
                                mt[i] = c.beta1 * mt[i] + (1 - c.beta1) * gi
                                vt[i] = c.beta2 * vt[i] + (1 - c.beta2) * gi * gi
                                let denom = (vt[i] / bc2).squareRoot() + c.epsilon
                                p[i] -= decay * p[i]
                                p[i] -= stepSize * mt[i] / denom
                            }
                        }
                    }
                }
            }
        }
    }
}
