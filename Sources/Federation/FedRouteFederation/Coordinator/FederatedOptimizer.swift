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
    /// FedAdam's moments, one array per parameter tensor; empty for FedAvg, which keeps none (checkpoints of
    /// versions that kept zeros for it still load).
    var m: [[Float]]
    var v: [[Float]]

    init(_ optimizer: FederatedOptimizer, shapes: [Int]) {
        self.optimizer = optimizer
        switch optimizer {
        case .fedAvg:
            m = []
        case .fedAdam:
            m = shapes.map { Array(repeating: 0, count: $0) }
        }
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
        // FedAvg uses no moments: the zeros older versions kept for it are not carried on.
        if case .fedAvg = optimizer { (m, v) = ([], []) }
    }

    /// Whether the moment buffers fit parameters of these sizes and are finite (a checkpoint read
    /// from disk is checked with this before it is resumed).
    func fits(shapes: [Int]) -> Bool {
        if case .fedAvg = optimizer, m.isEmpty, v.isEmpty { return true }
        return m.count == shapes.count && v.count == shapes.count && zip(m, shapes).allSatisfy { $0.count == $1 } && zip(v, shapes).allSatisfy { $0.count == $1 }
            && m.allSatisfy { $0.allSatisfy(\.isFinite) } && v.allSatisfy { $0.allSatisfy { $0.isFinite && $0 >= 0 } }
    }

    /// One server step with the averaged delta. Element by element, over the cores for large tensors (each
    /// element gets the same operations whatever the split, so the result does not depend on it).
    mutating func apply(_ delta: [[Float]], to parameters: inout [Tensor]) {
        precondition(delta.count == parameters.count && zip(delta, parameters).allSatisfy { $0.count == $1.values.count },
                     "the average has the parameters' shapes")
        for t in parameters.indices {
            let n = delta[t].count
            delta[t].withUnsafeBufferPointer { d in
                parameters[t].values.withUnsafeMutableBufferPointer { p in
                    guard let d = d.baseAddress, let p = p.baseAddress else { return }
                    switch optimizer {
                    case .fedAvg(let lr):
                        let shared = RowParallel.Shared((d, p))
                        RowParallel.forEachRange(count: n, minimumPerPart: Self.minimumPerPart) { range in
                            let (d, p) = shared.value
                            for j in range { p[j] += lr * d[j] }
                        }
                    case .fedAdam(let lr, let b1, let b2, let tau):
                        m[t].withUnsafeMutableBufferPointer { m in
                            v[t].withUnsafeMutableBufferPointer { v in
                                guard let m = m.baseAddress, let v = v.baseAddress else { return }
                                let shared = RowParallel.Shared((d, p, m, v))
                                RowParallel.forEachRange(count: n, minimumPerPart: Self.minimumPerPart) { range in
                                    let (d, p, m, v) = shared.value
                                    for j in range {
                                        m[j] = b1 * m[j] + (1 - b1) * d[j]
                                        v[j] = b2 * v[j] + (1 - b2) * d[j] * d[j]
                                        p[j] += lr * m[j] / (v[j].squareRoot() + tau)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Elements below which a tensor's step stays on one thread.
    static let minimumPerPart = 65_536
}
