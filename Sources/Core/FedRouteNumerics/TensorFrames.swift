import Foundation

extension CodingUserInfoKey {
    /// Holds a `TensorFrames.Writer` while a frame is encoded (every `Tensor`/`Matrix` value array goes
    /// to the frame's binary section and the JSON keeps `{"blob": i}`) or a `TensorFrames.Reader` while one
    /// is decoded.
    public static let tensorBlobs = CodingUserInfoKey(rawValue: "fedroute.tensorBlobs")!
}

/// A binary body: a small JSON document plus its arrays as raw little-endian bytes (float32 tensor values,
/// 64-bit masked words), so they are neither base64-encoded nor parsed as text.
///
/// Layout: `"FRF1"`, UInt32 JSON byte count, the JSON, UInt32 array count, one UInt64 byte count per array,
/// then the arrays back to back. Every count is checked against the body's size with overflow-checked
/// arithmetic before anything is allocated, and the arrays must fill the body exactly.
public enum TensorFrames {
    public static let magic = Data("FRF1".utf8)
    /// Most arrays one frame may carry.
    public static let maxArrays = 1 << 16

    /// True when `data` starts like a frame (JSON bodies start with `{`).
    public static func isFrame(_ data: Data) -> Bool { data.count >= 4 && data.prefix(4) == magic }

    /// Collects the arrays of one encode (used from one thread at a time).
    public final class Writer: @unchecked Sendable {
        var blobs: [Data] = []
        public init() {}
        /// Adds the array's little-endian bytes; returns its index for the JSON's `{"blob": i}`.
        public func append<T: BitwiseCopyable>(_ values: [T], littleEndian: (T) -> [UInt8]) -> Int {
            #if _endian(little)
            blobs.append(values.withUnsafeBytes { Data($0) })
            #else
            blobs.append(Data(values.flatMap(littleEndian)))
            #endif
            return blobs.count - 1
        }
    }

    /// The arrays of one decoded frame, as bytes.
    public final class Reader: @unchecked Sendable {
        let blobs: [Data]
        init(blobs: [Data]) { self.blobs = blobs }
        /// Array `index` as values of `width` little-endian bytes each, built by `make` from the bytes at an
        /// offset; nil when there is no such array or its size is not a whole number of values.
        func values<T>(_ index: Int, width: Int, _ make: (UnsafeRawBufferPointer, Int) -> T) -> [T]? {
            guard blobs.indices.contains(index), blobs[index].count % width == 0 else { return nil }
            let count = blobs[index].count / width
            return blobs[index].withUnsafeBytes { raw in
                [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for i in 0..<count { (buffer.baseAddress! + i).initialize(to: make(raw, i * width)) }
                    initialized = count
                }
            }
        }
    }

    /// Encodes `values` under `key` as a blob of the frame being written; false when no frame is being
    /// written (the caller then uses its JSON form).
    public static func encode<T: BitwiseCopyable, K: CodingKey>(
        _ values: [T], forKey key: K, in c: inout KeyedEncodingContainer<K>, encoder: any Encoder, littleEndian: (T) -> [UInt8]
    ) throws -> Bool {
        guard let writer = encoder.userInfo[.tensorBlobs] as? Writer else { return false }
        try c.encode(BlobReference(blob: writer.append(values, littleEndian: littleEndian)), forKey: key)
        return true
    }

    /// The blob `key` refers to, as values of `width` bytes, when a frame is being read and `key` holds a blob
    /// reference; nil otherwise (the caller then reads its JSON form). A reference to a missing array, or to one
    /// that is not whole values, is an error naming `what`.
    public static func decode<T, K: CodingKey>(
        forKey key: K, in c: KeyedDecodingContainer<K>, decoder: any Decoder, width: Int, what: String,
        _ make: (UnsafeRawBufferPointer, Int) -> T
    ) throws -> [T]? {
        guard let reader = decoder.userInfo[.tensorBlobs] as? Reader, let reference = try? c.decode(BlobReference.self, forKey: key) else { return nil }
        guard let values = reader.values(reference.blob, width: width, make) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "array \(reference.blob) is not in the frame as \(what)")
        }
        return values
    }

    /// What the JSON holds in place of an array.
    public struct BlobReference: Codable, Sendable {
        public var blob: Int
        public init(blob: Int) { self.blob = blob }
    }

    public static func encode<T: Encodable>(_ value: T, with encoder: JSONEncoder) throws -> Data {
        let writer = Writer()
        encoder.userInfo[.tensorBlobs] = writer
        defer { encoder.userInfo[.tensorBlobs] = nil }
        let json = try encoder.encode(value)
        guard json.count <= Int(UInt32.max), writer.blobs.count <= maxArrays else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "frame too large to encode"))
        }
        let bytes = writer.blobs.reduce(0) { $0 + $1.count }
        var out = Data(capacity: 12 + json.count + 8 * writer.blobs.count + bytes)
        out.append(magic)
        appendLittleEndian(UInt32(json.count), to: &out)
        out.append(json)
        appendLittleEndian(UInt32(writer.blobs.count), to: &out)
        for b in writer.blobs { appendLittleEndian(UInt64(b.count), to: &out) }
        for b in writer.blobs { out.append(b) }
        return out
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, with decoder: JSONDecoder) throws -> T {
        let (json, blobs) = try data.withUnsafeBytes { try split($0) }
        decoder.userInfo[.tensorBlobs] = Reader(blobs: blobs)
        defer { decoder.userInfo[.tensorBlobs] = nil }
        return try decoder.decode(T.self, from: json)
    }

    /// The JSON and the arrays of a frame, every size checked before it is used.
    static func split(_ bytes: UnsafeRawBufferPointer) throws -> (Data, [Data]) {
        func corrupt(_ why: String) -> DecodingError { .dataCorrupted(.init(codingPath: [], debugDescription: "tensor frame: \(why)")) }
        var offset = 0
        func read(_ width: Int) throws -> UInt64 {
            guard width <= bytes.count - offset else { throw corrupt("ends inside its header at byte \(offset)") }
            var v: UInt64 = 0
            for i in 0..<width { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            offset += width
            return v
        }
        guard bytes.count >= 4, bytes.prefix(4).elementsEqual(magic) else { throw corrupt("does not start with FRF1") }
        offset = 4
        let jsonCount = Int(try read(4))
        guard jsonCount <= bytes.count - offset else { throw corrupt("declares \(jsonCount) JSON bytes, \(bytes.count - offset) remain") }
        let json = Data(bytes[offset..<(offset + jsonCount)])
        offset += jsonCount
        let arrayCount = Int(try read(4))
        guard arrayCount <= maxArrays else { throw corrupt("declares \(arrayCount) arrays (at most \(maxArrays))") }
        guard arrayCount * 8 <= bytes.count - offset else { throw corrupt("\(arrayCount) array sizes do not fit in the body") }
        var counts: [Int] = []
        var total = 0
        for _ in 0..<arrayCount {
            let c = try read(8)
            guard c <= UInt64(bytes.count) else { throw corrupt("an array of \(c) bytes is larger than the body") }
            total += Int(c)  // each ≤ body size, at most 65,536 of them: cannot overflow
            counts.append(Int(c))
        }
        let left = bytes.count - offset
        guard total == left else { throw corrupt("the arrays declare \(total) bytes, the body has \(left) left") }
        var blobs: [Data] = []
        blobs.reserveCapacity(arrayCount)
        for c in counts {
            blobs.append(Data(bytes[offset..<(offset + c)]))
            offset += c
        }
        return (json, blobs)
    }

    static func appendLittleEndian<I: FixedWidthInteger>(_ v: I, to data: inout Data) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }
}
