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

    /// Moments as base64 float32 per tensor when the encoder packs floats (the checkpoint does: as JSON
    /// numbers, 2 × 0.8 M values took a quarter of a network round to write); plain number arrays are read too.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(optimizer, forKey: .optimizer)
        if encoder.userInfo[.packedFloats] as? Bool == true {
            try c.encode(m.map(PackedFloats.pack), forKey: .m)
            try c.encode(v.map(PackedFloats.pack), forKey: .v)
        } else {
            try c.encode(m, forKey: .m)
            try c.encode(v, forKey: .v)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        optimizer = try c.decode(FederatedOptimizer.self, forKey: .optimizer)
        func moments(_ key: CodingKeys) throws -> [[Float]] {
            guard let packed = try? c.decode([String].self, forKey: key) else { return try c.decode([[Float]].self, forKey: key) }
            return try packed.map {
                guard let values = PackedFloats.unpack($0) else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not base64 of float32 values")
                }
                return values
            }
        }
        m = try moments(.m)
        v = try moments(.v)
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
