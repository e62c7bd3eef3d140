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
/// Layout `FRF1`: `"FRF1"`, UInt32 JSON byte count, the JSON, UInt32 array count, one UInt64 byte count per
/// array, then the arrays back to back.
///
/// Layout `FRF2` (written only when a codec was negotiated and made some array smaller): as `FRF1`, but each
/// array's table entry is UInt64 stored byte count, UInt8 codec id (0: stored as is), UInt8 value width,
/// UInt64 decoded byte count. A reader checks the sum of the decoded sizes against its limit before it
/// decodes anything, and every codec must produce exactly the declared size.
///
/// Every count is checked against the body's size with overflow-checked arithmetic before anything is
/// allocated, and the arrays must fill the body exactly.
public enum TensorFrames {
    public static let magic = Data("FRF1".utf8)
    public static let codedMagic = Data("FRF2".utf8)
    /// Most arrays one frame may carry.
    public static let maxArrays = 1 << 16
    /// Most bytes a frame's arrays may decode to when the reader names no limit of its own.
    public static let defaultMaxDecodedBytes = 256 << 20
    /// Arrays smaller than this are written as they are (a codec would not pay for its table entry), and
    /// are not looked up in a `TensorFrameCache`.
    public static let minSharedBytes = 16 << 10

    /// True when `bytes` start like a frame (JSON bodies start with `{`).
    public static func isFrame<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        let head = bytes.prefix(4)
        return head.elementsEqual(magic) || head.elementsEqual(codedMagic)
    }

    /// How a frame is written: with which codec (nil: every array as it is) and which cache of encoded arrays.
    public struct Options: Sendable {
        public var codec: (any TensorFrameCodec)?
        public var cache: TensorFrameCache?
        public init(codec: (any TensorFrameCodec)? = nil, cache: TensorFrameCache? = nil) {
            self.codec = codec
            self.cache = cache
        }
    }

    /// One array as a frame stores it.
    public struct Blob: Sendable {
        /// The bytes in the frame (encoded when `codec` is not 0); empty when `appendValues` is set.
        public var stored: Data
        public var codec: UInt8
        public var width: UInt8
        /// Byte count once decoded.
        public var decodedCount: Int
        /// For an array written as it is and not cached: hands its bytes to the frame's sink straight from
        /// the array (which it holds), instead of from a copy in `stored`.
        var appendValues: (@Sendable ((UnsafeRawBufferPointer) -> Void) -> Void)?
        /// Whether `stored` is a `TensorFrameCache` entry's: the same `Data` in every frame that writes the array
        /// while the cache keeps it.
        var cached = false

        public init(stored: Data, codec: UInt8, width: UInt8, decodedCount: Int) {
            self.stored = stored
            self.codec = codec
            self.width = width
            self.decodedCount = decodedCount
        }

        /// Bytes this array takes in the frame.
        var storedCount: Int { appendValues == nil ? stored.count : decodedCount }
    }

    /// Collects the arrays of one encode (used from one thread at a time).
    public final class Writer: @unchecked Sendable {
        var blobs: [Blob] = []
        let options: Options
        public init(options: Options = Options()) { self.options = options }

        /// Adds the array's little-endian bytes (encoded when a codec is set, the array is `compressible`, and
        /// the codec makes it smaller); returns its index for the JSON's `{"blob": i}`.
        public func append<T: BitwiseCopyable & Sendable>(_ values: [T], compressible: Bool = true, littleEndian: (T) -> [UInt8]) throws -> Int {
            let width = MemoryLayout<T>.size
            let bytes = values.count * width
            let codec = compressible && bytes >= TensorFrames.minSharedBytes ? options.codec : nil
            func make() throws -> Blob {
                #if _endian(little)
                // The round's model, megabytes, is written here as a round starts, before any client can have it.
                let raw = values.withUnsafeBytes { RowParallel.data(copying: $0) }
                #else
                let raw = Data(values.flatMap(littleEndian))
                #endif
                if let codec, let coded = try raw.withUnsafeBytes({ try codec.encode($0, width: width) }), coded.count < raw.count {
                    return Blob(stored: coded, codec: codec.id, width: UInt8(width), decodedCount: raw.count)
                }
                return Blob(stored: raw, codec: 0, width: UInt8(width), decodedCount: raw.count)
            }
            if let cache = options.cache, bytes >= TensorFrames.minSharedBytes {
                var blob = try cache.blob(for: values, codec: codec?.id ?? 0, make)
                blob.cached = true
                blobs.append(blob)
            } else if codec == nil {
                #if _endian(little)
                var blob = Blob(stored: Data(), codec: 0, width: UInt8(width), decodedCount: bytes)
                blob.appendValues = { sink in values.withUnsafeBytes { sink($0) } }
                blobs.append(blob)
                #else
                blobs.append(try make())
                #endif
            } else {
                blobs.append(try make())
            }
            return blobs.count - 1
        }
    }

    /// The arrays of one decoded frame, as bytes.
    public final class Reader: @unchecked Sendable {
        let blobs: [Data]
        init(blobs: [Data]) { self.blobs = blobs }
        /// Array `index` as values of `width` little-endian bytes each (copied as they are on a little-endian
        /// host, else built by `make` from the bytes at an offset); nil when there is no such array or its size
        /// is not a whole number of values.
        func values<T: BitwiseCopyable>(_ index: Int, width: Int, _ make: (UnsafeRawBufferPointer, Int) -> T) -> [T]? {
            guard blobs.indices.contains(index), width == MemoryLayout<T>.size, blobs[index].count % width == 0 else { return nil }
            let count = blobs[index].count / width
            return blobs[index].withUnsafeBytes { raw in
                [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                    #if _endian(little)
                    if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw) }
                    #else
                    for i in 0..<count { (buffer.baseAddress! + i).initialize(to: make(raw, i * width)) }
                    #endif
                    initialized = count
                }
            }
        }

        /// The array `reference` names, read as in `values`; a missing array, or one that is not whole values,
        /// is an error at `key` naming `what`.
        func values<T: BitwiseCopyable, K: CodingKey>(of reference: BlobReference, forKey key: K, in c: KeyedDecodingContainer<K>, width: Int,
                                                      what: String, _ make: (UnsafeRawBufferPointer, Int) -> T) throws -> [T] {
            guard let values = values(reference.blob, width: width, make) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "array \(reference.blob) is not in the frame as \(what)")
            }
            return values
        }
    }

    /// Encodes `values` under `key` as a blob of the frame being written; false when no frame is being
    /// written (the caller then uses its JSON form). An array that is not `compressible` (random-looking
    /// words, such as secure aggregation's masked vectors) is stored as it is without trying the codec.
    public static func encode<T: BitwiseCopyable & Sendable, K: CodingKey>(
        _ values: [T], forKey key: K, in c: inout KeyedEncodingContainer<K>, encoder: any Encoder, compressible: Bool = true,
        littleEndian: (T) -> [UInt8]
    ) throws -> Bool {
        guard let writer = encoder.userInfo[.tensorBlobs] as? Writer else { return false }
        try c.encode(BlobReference(blob: try writer.append(values, compressible: compressible, littleEndian: littleEndian)), forKey: key)
        return true
    }

    /// The blob `key` refers to, as values of `width` bytes, when a frame is being read and `key` holds a blob
    /// reference; nil otherwise (the caller then reads its JSON form). A reference to a missing array, or to one
    /// that is not whole values, is an error naming `what`.
    public static func decode<T: BitwiseCopyable, K: CodingKey>(
        forKey key: K, in c: KeyedDecodingContainer<K>, decoder: any Decoder, width: Int, what: String,
        _ make: (UnsafeRawBufferPointer, Int) -> T
    ) throws -> [T]? {
        guard let reader = decoder.userInfo[.tensorBlobs] as? Reader, let reference = try? c.decode(BlobReference.self, forKey: key) else { return nil }
        return try reader.values(of: reference, forKey: key, in: c, width: width, what: what, make)
    }

    /// Encodes each of `arrays` as a blob of the frame being written, and under `key` the list of their
    /// references; false when no frame is being written (the caller then uses its JSON form).
    public static func encode<T: BitwiseCopyable & Sendable, K: CodingKey>(
        arrays: [[T]], forKey key: K, in c: inout KeyedEncodingContainer<K>, encoder: any Encoder, littleEndian: (T) -> [UInt8]
    ) throws -> Bool {
        guard let writer = encoder.userInfo[.tensorBlobs] as? Writer else { return false }
        try c.encode(try arrays.map { BlobReference(blob: try writer.append($0, littleEndian: littleEndian)) }, forKey: key)
        return true
    }

    /// The blobs a list of references under `key` names, each as values of `width` bytes, when a frame is being
    /// read and `key` holds such a list; nil otherwise. A reference to a missing array, or to one that is not
    /// whole values, is an error naming `what`.
    public static func decode<T: BitwiseCopyable, K: CodingKey>(
        arraysForKey key: K, in c: KeyedDecodingContainer<K>, decoder: any Decoder, width: Int, what: String,
        _ make: (UnsafeRawBufferPointer, Int) -> T
    ) throws -> [[T]]? {
        guard let reader = decoder.userInfo[.tensorBlobs] as? Reader, let references = try? c.decode([BlobReference].self, forKey: key) else { return nil }
        return try references.map { try reader.values(of: $0, forKey: key, in: c, width: width, what: what, make) }
    }

    /// What the JSON holds in place of an array.
    public struct BlobReference: Codable, Sendable {
        public var blob: Int
        public init(blob: Int) { self.blob = blob }
    }

    /// Encodes `value` as a frame: `FRF1`, or `FRF2` when `options.codec` made an array smaller.
    public static func encode<T: Encodable>(_ value: T, with encoder: JSONEncoder, options: Options = Options()) throws -> Data {
        var out = Data()
        try encode(value, with: encoder, options: options, reserve: { out.reserveCapacity($0) }, append: { out.append(contentsOf: $0) })
        return out
    }

    /// Encodes `value` as a frame into a sink of the caller's (a network buffer, so that the frame is not
    /// built in a `Data` and copied again): `reserve` is called once with the number of bytes `append` will get,
    /// then `append` with the frame's bytes in order, the arrays straight from their values. With
    /// `appendCached`, an array that `options.cache` holds is handed to it as the cache's `Data` instead of
    /// to `append` (in its place in the order): the same `Data` for every frame while the cache keeps the array,
    /// so a sink can send one buffer of it to every peer instead of a copy each.
    public static func encode<T: Encodable>(_ value: T, with encoder: JSONEncoder, options: Options = Options(), reserve: (Int) -> Void,
                                            append: (UnsafeRawBufferPointer) -> Void, appendCached: ((Data) -> Void)? = nil) throws {
        let writer = Writer(options: options)
        encoder.userInfo[.tensorBlobs] = writer
        defer { encoder.userInfo[.tensorBlobs] = nil }
        let json = try encoder.encode(value)
        guard json.count <= Int(UInt32.max), writer.blobs.count <= maxArrays else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "frame too large to encode"))
        }
        let coded = writer.blobs.contains { $0.codec != 0 }
        let bytes = writer.blobs.reduce(0) { $0 + $1.storedCount }
        var head = Data(capacity: 12 + json.count + (coded ? 18 : 8) * writer.blobs.count)
        head.append(coded ? codedMagic : magic)
        appendLittleEndian(UInt32(json.count), to: &head)
        head.append(json)
        appendLittleEndian(UInt32(writer.blobs.count), to: &head)
        for b in writer.blobs {
            appendLittleEndian(UInt64(b.storedCount), to: &head)
            if coded {
                head.append(b.codec)
                head.append(b.width)
                appendLittleEndian(UInt64(b.decodedCount), to: &head)
            }
        }
        let handedOver = appendCached == nil ? 0 : writer.blobs.reduce(0) { $0 + ($1.cached ? $1.storedCount : 0) }
        reserve(head.count + bytes - handedOver)
        head.withUnsafeBytes { append($0) }
        for b in writer.blobs {
            if let values = b.appendValues {
                values(append)
            } else if b.cached, let appendCached {
                appendCached(b.stored)
            } else {
                b.stored.withUnsafeBytes { append($0) }
            }
        }
    }

    /// Decodes a frame. Coded arrays are decoded by the codec of their id among `codecs` (an unknown id is an
    /// error); their decoded sizes together may not pass `maxDecodedBytes`.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, with decoder: JSONDecoder, codecs: [any TensorFrameCodec] = [],
                                            maxDecodedBytes: Int = defaultMaxDecodedBytes) throws -> T {
        // Arrays stored as they are stay views of `data` (no copy until they become values).
        let base = data.startIndex
        let (json, blobs) = try data.withUnsafeBytes {
            try split($0, codecs: codecs, maxDecodedBytes: maxDecodedBytes) { data[(base + $0.lowerBound)..<(base + $0.upperBound)] }
        }
        decoder.userInfo[.tensorBlobs] = Reader(blobs: blobs)
        defer { decoder.userInfo[.tensorBlobs] = nil }
        return try decoder.decode(T.self, from: json)
    }

    /// The JSON and the (decoded) arrays of a frame, every size checked before it is used. An array stored
    /// as it is becomes `stored(range of bytes)`: by default a copy.
    static func split(_ bytes: UnsafeRawBufferPointer, codecs: [any TensorFrameCodec] = [], maxDecodedBytes: Int = defaultMaxDecodedBytes,
                      stored view: ((Range<Int>) -> Data)? = nil) throws -> (Data, [Data]) {
        func corrupt(_ why: String) -> DecodingError { .dataCorrupted(.init(codingPath: [], debugDescription: "tensor frame: \(why)")) }
        var offset = 0
        func read(_ width: Int) throws -> UInt64 {
            guard width <= bytes.count - offset else { throw corrupt("ends inside its header at byte \(offset)") }
            var v: UInt64 = 0
            for i in 0..<width { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            offset += width
            return v
        }
        guard bytes.count >= 4 else { throw corrupt("does not start with FRF1 or FRF2") }
        let coded: Bool
        if bytes.prefix(4).elementsEqual(magic) { coded = false } else if bytes.prefix(4).elementsEqual(codedMagic) { coded = true } else {
            throw corrupt("does not start with FRF1 or FRF2")
        }
        offset = 4
        let jsonCount = Int(try read(4))
        guard jsonCount <= bytes.count - offset else { throw corrupt("declares \(jsonCount) JSON bytes, \(bytes.count - offset) remain") }
        let json = Data(bytes[offset..<(offset + jsonCount)])
        offset += jsonCount
        let arrayCount = Int(try read(4))
        let entryBytes = coded ? 18 : 8
        guard arrayCount <= maxArrays else { throw corrupt("declares \(arrayCount) arrays (at most \(maxArrays))") }
        guard arrayCount * entryBytes <= bytes.count - offset else { throw corrupt("\(arrayCount) array sizes do not fit in the body") }
        struct Entry { var count: Int; var codec: UInt8; var width: Int; var decoded: Int }
        var entries: [Entry] = []
        entries.reserveCapacity(arrayCount)
        var total = 0, decodedTotal = 0
        for i in 0..<arrayCount {
            let c = try read(8)
            guard c <= UInt64(bytes.count) else { throw corrupt("an array of \(c) bytes is larger than the body") }
            total += Int(c)  // each ≤ body size, at most 65,536 of them: cannot overflow
            var e = Entry(count: Int(c), codec: 0, width: 1, decoded: Int(c))
            if coded {
                e.codec = UInt8(try read(1))
                e.width = Int(try read(1))
                let d = try read(8)
                guard e.width > 0, d <= UInt64(maxDecodedBytes) else { throw corrupt("array \(i) declares \(d) decoded bytes (at most \(maxDecodedBytes)) or width \(e.width)") }
                e.decoded = Int(d)
                if e.codec == 0, e.decoded != e.count { throw corrupt("array \(i) is stored as is but declares \(d) decoded bytes for \(c) stored") }
            }
            let (sum, overflow) = decodedTotal.addingReportingOverflow(e.decoded)
            guard !overflow, sum <= maxDecodedBytes else { throw corrupt("the arrays decode to more than \(maxDecodedBytes) bytes") }
            decodedTotal = sum
            entries.append(e)
        }
        let left = bytes.count - offset
        guard total == left else { throw corrupt("the arrays declare \(total) bytes, the body has \(left) left") }
        var blobs: [Data] = []
        blobs.reserveCapacity(arrayCount)
        for (i, e) in entries.enumerated() {
            let stored = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + e.count)])
            if e.codec == 0 {
                blobs.append(view?(offset..<(offset + e.count)) ?? Data(stored))
            } else {
                guard let codec = codecs.first(where: { $0.id == e.codec }) else { throw corrupt("array \(i) uses codec \(e.codec), which this reader was not offered") }
                guard e.decoded / max(1, codec.maxExpansion) <= e.count else {
                    throw corrupt("array \(i) declares \(e.decoded) decoded bytes from \(e.count) stored, more than \(codec.name) can expand")
                }
                do { blobs.append(try codec.decode(stored, width: e.width, count: e.decoded)) } catch {
                    throw corrupt("array \(i) does not decode with \(codec.name): \(error)")
                }
            }
            offset += e.count
        }
        return (json, blobs)
    }

    static func appendLittleEndian<I: FixedWidthInteger>(_ v: I, to data: inout Data) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }
}
