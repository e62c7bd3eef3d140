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

    static func encode<K: CodingKey>(_ values: [Float], forKey key: K, in c: inout KeyedEncodingContainer<K>, encoder: any Encoder) throws {
        if let frame = encoder.userInfo[.tensorBlobs] as? TensorFrames.Writer {
            try c.encode(TensorFrames.BlobReference(blob: frame.append(values)), forKey: key)
        } else if encoder.userInfo[.packedFloats] as? Bool == true {
            try c.encode(pack(values), forKey: key)
        } else {
            try c.encode(values, forKey: key)
        }
    }

    static func decode<K: CodingKey>(forKey key: K, in c: KeyedDecodingContainer<K>, decoder: any Decoder) throws -> [Float] {
        if let frame = decoder.userInfo[.tensorBlobs] as? TensorFrames.Reader, let reference = try? c.decode(TensorFrames.BlobReference.self, forKey: key) {
            guard let values = frame.array(reference.blob) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "array \(reference.blob) is not in the frame (or not float32)")
            }
            return values
        }
        if let s = try? c.decode(String.self, forKey: key) {
            guard let v = unpack(s) else { throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not base64 of float32 values") }
            return v
        }
        return try c.decode([Float].self, forKey: key)
    }
}
