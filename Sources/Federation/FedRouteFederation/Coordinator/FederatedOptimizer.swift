import FedRouteNumerics

/// How the server turns the averaged client delta into the next global model.
public enum FederatedOptimizer: Sendable, Codable, Equatable {
    /// θ ← θ + η·Δ̄ (η = 1 is plain FedAvg).
    case fedAvg(learningRate: Float)
    /// FedAdam (Reddi et al., 2021): Adam on the pseudo-gradient −Δ̄ with adaptivity τ.
    case fedAdam(learningRate: Float, beta1: Float, beta2: Float, tau: Float)

    public static let plain = FederatedOptimizer.fedAvg(learningRate: 1)
    public static let adam = FederatedOptimizer.fedAdam(learningRate: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3)
}

/// Server-side optimiser state (FedAdam's moments), part of a training checkpoint.
public struct FederatedOptimizerState: Sendable, Codable {
    public let optimizer: FederatedOptimizer
    var m: [[Float]]
    var v: [[Float]]

    init(_ optimizer: FederatedOptimizer, shapes: [Int]) {
        self.optimizer = optimizer
        m = shapes.map { Array(repeating: 0, count: $0) }
        v = m
    }

    enum CodingKeys: String, CodingKey { case optimizer, m, v }

    /// Moments as raw float32 blobs when a tensor frame is written (the checkpoint is one), as base64
    /// float32 per tensor when the encoder packs floats (as JSON numbers, 2 × 0.8 M values took a quarter
    /// of a network round to write); all three forms are read, plain number arrays too.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(optimizer, forKey: .optimizer)
        try PackedFloats.encode(arrays: m, forKey: .m, in: &c, encoder: encoder)
        try PackedFloats.encode(arrays: v, forKey: .v, in: &c, encoder: encoder)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        optimizer = try c.decode(FederatedOptimizer.self, forKey: .optimizer)
        m = try PackedFloats.decode(arraysForKey: .m, in: c, decoder: decoder)
        v = try PackedFloats.decode(arraysForKey: .v, in: c, decoder: decoder)
    }

    /// Whether the moment buffers fit parameters of these sizes and are finite (a checkpoint read
    /// from disk is checked with this before it is resumed).
    func fits(shapes: [Int]) -> Bool {
        m.count == shapes.count && v.count == shapes.count && zip(m, shapes).allSatisfy { $0.count == $1 } && zip(v, shapes).allSatisfy { $0.count == $1 }
            && m.allSatisfy { $0.allSatisfy(\.isFinite) } && v.allSatisfy { $0.allSatisfy { $0.isFinite && $0 >= 0 } }
    }

    mutating func apply(_ delta: [[Float]], to parameters: inout [Tensor]) {
        switch optimizer {
        case .fedAvg(let lr):
            for t in parameters.indices { for j in parameters[t].values.indices { parameters[t].values[j] += lr * delta[t][j] } }
        case .fedAdam(let lr, let b1, let b2, let tau):
            for t in parameters.indices {
                for j in parameters[t].values.indices {
                    let d = delta[t][j]
                    m[t][j] = b1 * m[t][j] + (1 - b1) * d
                    v[t][j] = b2 * v[t][j] + (1 - b2) * d * d
                    parameters[t].values[j] += lr * m[t][j] / (v[t][j].squareRoot() + tau)
                }
            }
        }
    }
}
