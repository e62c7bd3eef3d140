/// A named parameter tensor (weights, biases, LayerNorm gains…).
public struct Tensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) vs \(values.count) values")
        self.name = name
        self.shape = shape
        self.values = values
    }

    public init(name: String, shape: [Int], repeating value: Float) {
        self.init(name: name, shape: shape, values: Array(repeating: value, count: shape.reduce(1, *)))
    }

    public var count: Int { values.count }
}

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

/// Gradient clipping by global L2 norm.
public enum GradientClipping {
    /// Scales `gradients` in place so their joint L2 norm is at most `maxNorm`; returns the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(_ gradients: inout [[Float]], maxNorm: Float) -> Float {
        var total: Double = 0
        for g in gradients { for x in g { total += Double(x) * Double(x) } }
        let norm = Float(total.squareRoot())
        if maxNorm > 0, norm > maxNorm {
            let scale = maxNorm / (norm + 1e-6)
            for t in gradients.indices { for i in gradients[t].indices { gradients[t][i] *= scale } }
        }
        return norm
    }
}

/// Tensors cross process boundaries (federated updates) as `{name, shape, values}`; decoding
/// checks that the value count matches the shape.
extension Tensor: Codable {
    enum CodingKeys: String, CodingKey { case name, shape, values }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .name)
        let shape = try c.decode([Int].self, forKey: .shape)
        let values = try PackedFloats.decode(forKey: .values, in: c)
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw DecodingError.dataCorruptedError(forKey: .values, in: c, debugDescription: "tensor \(name) of shape \(shape) carries \(values.count) values")
        }
        self.init(name: name, shape: shape, values: values)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(shape, forKey: .shape)
        try PackedFloats.encode(values, forKey: .values, in: &c, encoder: encoder)
    }
}
