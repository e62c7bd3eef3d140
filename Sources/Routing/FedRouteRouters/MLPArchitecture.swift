import FedRouteNumerics

/// What a trunk layer does after its linear map.
public enum TrunkKind: String, Sendable, Codable, CaseIterable {
    /// Linear → LayerNorm → GELU → Dropout: the MLP-Router.
    case gelu
    /// Linear only: a learned low-rank projection `W x + w₀` of the features. With one such layer
    /// the heads compute ⟨W x + w₀, e_m⟩ + b_m — the MF-Router (`MFRouter`).
    case linear
}

/// Architecture of the MLP-Router network (and, with a linear trunk, of the MF-Router).
public struct MLPArchitecture: Sendable, Codable, Equatable {
    public var inputDimension: Int
    public var hiddenDimension: Int
    public var trunkLayers: Int
    public var modelCount: Int
    public var dropout: Float
    /// `gelu` unless stated; files and messages written before the MF-Router have no `trunk` key.
    public var trunk: TrunkKind

    public init(inputDimension: Int, hiddenDimension: Int = 512, trunkLayers: Int = 2, modelCount: Int, dropout: Float = 0.1,
                trunk: TrunkKind = .gelu) {
        self.inputDimension = inputDimension
        self.hiddenDimension = hiddenDimension
        self.trunkLayers = trunkLayers
        self.modelCount = modelCount
        self.dropout = dropout
        self.trunk = trunk
    }

    enum CodingKeys: String, CodingKey { case inputDimension, hiddenDimension, trunkLayers, modelCount, dropout, trunk }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputDimension = try c.decode(Int.self, forKey: .inputDimension)
        hiddenDimension = try c.decode(Int.self, forKey: .hiddenDimension)
        trunkLayers = try c.decode(Int.self, forKey: .trunkLayers)
        modelCount = try c.decode(Int.self, forKey: .modelCount)
        dropout = try c.decode(Float.self, forKey: .dropout)
        trunk = try c.decodeIfPresent(TrunkKind.self, forKey: .trunk) ?? .gelu
    }

    /// The `gelu` trunk is written without a `trunk` key, so MLP files and messages keep their bytes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inputDimension, forKey: .inputDimension)
        try c.encode(hiddenDimension, forKey: .hiddenDimension)
        try c.encode(trunkLayers, forKey: .trunkLayers)
        try c.encode(modelCount, forKey: .modelCount)
        try c.encode(dropout, forKey: .dropout)
        if trunk != .gelu { try c.encode(trunk, forKey: .trunk) }
    }

    /// Tensors per trunk layer: weight and bias, plus the LayerNorm gain and bias of a `gelu` trunk.
    var tensorsPerLayer: Int { trunk == .gelu ? 4 : 2 }

    /// Limits on an architecture read from a file, a checkpoint or the wire (a bigger one is refused
    /// before anything is allocated): at most `maxParameters` weights in all.
    public static let maxTrunkLayers = 64
    public static let maxParameters = 1 << 28

    /// Parameter names and shapes, in the order of `MLPNetwork.parameters`, without allocating them.
    public var parameterShapes: [(name: String, shape: [Int])] {
        var p: [(String, [Int])] = []
        for l in 0..<max(0, min(trunkLayers, Self.maxTrunkLayers)) {
            let fanIn = l == 0 ? inputDimension : hiddenDimension
            p += [("trunk.\(l).weight", [fanIn, hiddenDimension]), ("trunk.\(l).bias", [hiddenDimension])]
            if trunk == .gelu { p += [("trunk.\(l).norm.weight", [hiddenDimension]), ("trunk.\(l).norm.bias", [hiddenDimension])] }
        }
        for head in ["accuracy_head", "cost_head"] { p += [(head + ".weight", [hiddenDimension, modelCount]), (head + ".bias", [modelCount])] }
        return p
    }

    /// Checks dimensions, layer count, dropout and the total parameter count (with checked
    /// arithmetic), naming what is out of range.
    public func validate() throws(RouterError) {
        guard inputDimension > 0, hiddenDimension > 0, modelCount > 0 else {
            throw .invalidConfiguration("MLP architecture needs positive dimensions (input \(inputDimension), hidden \(hiddenDimension), models \(modelCount))")
        }
        guard (0...Self.maxTrunkLayers).contains(trunkLayers) else {
            throw .invalidConfiguration("MLP architecture has \(trunkLayers) trunk layers; allowed 0…\(Self.maxTrunkLayers)")
        }
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw .invalidConfiguration("MLP dropout \(dropout) is not in [0, 1)") }
        var total = 0
        for (name, shape) in parameterShapes {
            guard let n = ShapeLimits.checkedCount(shape, limit: Self.maxParameters), case (let t, false) = total.addingReportingOverflow(n),
                  t <= Self.maxParameters else {
                throw .invalidConfiguration("MLP architecture (input \(inputDimension), hidden \(hiddenDimension), \(trunkLayers) layers, \(modelCount) models) needs more than \(Self.maxParameters) parameters (at \(name))")
            }
            total = t
        }
    }
}
