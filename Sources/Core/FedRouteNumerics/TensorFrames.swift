import Foundation

extension CodingUserInfoKey {
    /// Holds a `TensorFrames.Writer` while a frame is encoded (every `Tensor`/`Matrix` value array goes
    /// to the frame's binary section and the JSON keeps `{"blob": i}`) or a `TensorFrames.Reader` while one
    /// is decoded.
    public static let tensorBlobs = CodingUserInfoKey(rawValue: "fedroute.tensorBlobs")!
}

/// A binary body: a small JSON document plus its float arrays as raw little-endian float32, so tensors are
/// neither base64-encoded nor parsed as text.
///
/// Layout: `"FRF1"`, UInt32 JSON byte count, the JSON, UInt32 array count, one UInt64 float count per array,
/// then the arrays back to back. Every count is checked against the body's size with overflow-checked
/// arithmetic before anything is allocated, and the arrays must fill the body exactly.
public enum TensorFrames {
    public static let magic = Data("FRF1".utf8)
    /// Most arrays one frame may carry.
    public static let maxArrays = 1 << 16

    /// True when `data` starts like a frame (JSON bodies start with `{`).
    public static func isFrame(_ data: Data) -> Bool { data.count >= 4 && data.prefix(4) == magic }

    /// Collects the float arrays of one encode (used from one thread at a time).
    public final class Writer: @unchecked Sendable {
        var arrays: [[Float]] = []
        public init() {}
        func append(_ values: [Float]) -> Int {
            arrays.append(values)
            return arrays.count - 1
        }
    }

    /// The arrays of one decoded frame.
    public final class Reader: @unchecked Sendable {
        let arrays: [[Float]]
        init(arrays: [[Float]]) { self.arrays = arrays }
        func array(_ index: Int) -> [Float]? { arrays.indices.contains(index) ? arrays[index] : nil }
    }

    struct BlobReference: Codable { var blob: Int }

    public static func encode<T: Encodable>(_ value: T, with encoder: JSONEncoder) throws -> Data {
        let writer = Writer()
        encoder.userInfo[.tensorBlobs] = writer
        defer { encoder.userInfo[.tensorBlobs] = nil }
        let json = try encoder.encode(value)
        guard json.count <= Int(UInt32.max), writer.arrays.count <= maxArrays else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "frame too large to encode"))
        }
        let floats = writer.arrays.reduce(0) { $0 + $1.count }
        var out = Data(capacity: 12 + json.count + 8 * writer.arrays.count + 4 * floats)
        out.append(magic)
        appendLittleEndian(UInt32(json.count), to: &out)
        out.append(json)
        appendLittleEndian(UInt32(writer.arrays.count), to: &out)
        for a in writer.arrays { appendLittleEndian(UInt64(a.count), to: &out) }
        for a in writer.arrays {
            a.withUnsafeBufferPointer { p in
                #if _endian(little)
                out.append(UnsafeBufferPointer(start: UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: UInt8.self), count: p.count * 4))
                #else
                for v in p { appendLittleEndian(v.bitPattern, to: &out) }
                #endif
            }
        }
        return out
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, with decoder: JSONDecoder) throws -> T {
        let (json, arrays) = try data.withUnsafeBytes { try split($0) }
        decoder.userInfo[.tensorBlobs] = Reader(arrays: arrays)
        defer { decoder.userInfo[.tensorBlobs] = nil }
        return try decoder.decode(T.self, from: json)
    }

    /// The JSON and the arrays of a frame, every size checked before it is used.
    static func split(_ bytes: UnsafeRawBufferPointer) throws -> (Data, [[Float]]) {
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
            guard c <= UInt64(bytes.count) else { throw corrupt("an array of \(c) floats is larger than the body") }
            total += Int(c)  // each ≤ body size, at most 65,536 of them: cannot overflow
            counts.append(Int(c))
        }
        let left = bytes.count - offset
        guard total.multipliedReportingOverflow(by: 4) == (left, false) else {
            throw corrupt("arrays of \(total) floats need \(total &* 4) bytes, the body has \(left) left")
        }
        var arrays: [[Float]] = []
        arrays.reserveCapacity(arrayCount)
        for c in counts {
            let start = offset
            arrays.append([Float](unsafeUninitializedCapacity: c) { buffer, initialized in
                for i in 0..<c {
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + i * 4, as: UInt32.self)))
                }
                initialized = c
            })
            offset += c * 4
        }
        return (json, arrays)
    }

    static func appendLittleEndian<I: FixedWidthInteger>(_ v: I, to data: inout Data) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }
}
