/// Tensors cross process boundaries (federated updates) as `{name, shape, values}`; decoding
/// checks that the value count matches the shape.
extension Tensor: Codable {
    enum CodingKeys: String, CodingKey { case name, shape, values }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .name)
        let shape = try c.decode([Int].self, forKey: .shape)
        let values = try PackedFloats.decode(forKey: .values, in: c, decoder: decoder)
        guard ShapeLimits.checkedCount(shape) == values.count else {
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
