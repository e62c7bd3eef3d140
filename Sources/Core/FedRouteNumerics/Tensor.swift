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
