import Foundation

extension CodingUserInfoKey {
    /// Set to `true` in an encoder's `userInfo` to write `Tensor` and `Matrix` values as base64 of
    /// little-endian float32 (a third of the size of JSON numbers, and NaN/∞ survive the trip).
    /// Decoding accepts both forms whatever the flag.
    public static let packedFloats = CodingUserInfoKey(rawValue: "fedroute.packedFloats")!
}

/// Base64 of little-endian float32 values.
public enum PackedFloats {
    public static func pack(_ values: [Float]) -> String {
        #if _endian(little)
        return values.withUnsafeBytes { Data($0) }.base64EncodedString()
        #else
        var data = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data.base64EncodedString()
        #endif
    }

    /// Nil when the string is not base64 of a whole number of float32 values.
    public static func unpack(_ string: String) -> [Float]? {
        guard let data = Data(base64Encoded: string), data.count % 4 == 0 else { return nil }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// The little-endian bytes of one value, and one value from little-endian bytes at an offset.
    static func bytes(_ v: Float) -> [UInt8] { withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    static func float(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Float {
        Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    static func encode<K: CodingKey>(_ values: [Float], forKey key: K, in c: inout KeyedEncodingContainer<K>, encoder: any Encoder) throws {
        if try TensorFrames.encode(values, forKey: key, in: &c, encoder: encoder, littleEndian: bytes) {
            return
        } else if encoder.userInfo[.packedFloats] as? Bool == true {
            try c.encode(pack(values), forKey: key)
        } else {
            try c.encode(values, forKey: key)
        }
    }

    static func decode<K: CodingKey>(forKey key: K, in c: KeyedDecodingContainer<K>, decoder: any Decoder) throws -> [Float] {
        if let values = try TensorFrames.decode(forKey: key, in: c, decoder: decoder, width: 4, what: "float32 values", float) { return values }
        if let s = try? c.decode(String.self, forKey: key) { return try unpack(s, forKey: key, in: c) }
        return try c.decode([Float].self, forKey: key)
    }

    /// Writes a list of float arrays under `key`: blobs of the frame being written, else base64 strings when
    /// the encoder packs floats, else arrays of JSON numbers.
    public static func encode<K: CodingKey>(arrays: [[Float]], forKey key: K, in c: inout KeyedEncodingContainer<K>, encoder: any Encoder) throws {
        if try TensorFrames.encode(arrays: arrays, forKey: key, in: &c, encoder: encoder, littleEndian: bytes) {
            return
        } else if encoder.userInfo[.packedFloats] as? Bool == true {
            try c.encode(arrays.map(pack), forKey: key)
        } else {
            try c.encode(arrays, forKey: key)
        }
    }

    /// Reads what `encode(arrays:forKey:in:encoder:)` wrote, in any of its three forms.
    public static func decode<K: CodingKey>(arraysForKey key: K, in c: KeyedDecodingContainer<K>, decoder: any Decoder) throws -> [[Float]] {
        if let arrays = try TensorFrames.decode(arraysForKey: key, in: c, decoder: decoder, width: 4, what: "float32 values", float) { return arrays }
        if let packed = try? c.decode([String].self, forKey: key) { return try packed.map { try unpack($0, forKey: key, in: c) } }
        return try c.decode([[Float]].self, forKey: key)
    }

    /// `unpack`, with a string that is not base64 of float32 values an error at `key`.
    static func unpack<K: CodingKey>(_ string: String, forKey key: K, in c: KeyedDecodingContainer<K>) throws -> [Float] {
        guard let values = unpack(string) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not base64 of float32 values")
        }
        return values
    }
}
