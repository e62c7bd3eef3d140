import Foundation

/// A float32 array in NumPy's `.npy` format (`numpy.save`), the form Flower's `Array` carries.
///
/// Encoding writes format 1.0, little-endian `'<f4'`, C order, the header padded with spaces to a
/// multiple of 64 bytes and ending in a newline, exactly as NumPy does (so object ids match Python's).
/// Decoding accepts format 1.0–3.0 and `'<f4'` or `'<f8'` (converted to float32), C order only, and
/// refuses anything else with the reason.
public struct NumpyArray: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    /// The most elements `decode` accepts (guards allocations sized by a peer's header).
    public static let maxElements = 1 << 28

    public init(shape: [Int], values: [Float]) throws(FlowerError) {
        guard let count = Self.elementCount(shape), count == values.count else {
            throw .array("shape \(shape) does not hold \(values.count) values")
        }
        self.shape = shape
        self.values = values
    }

    /// Elements of `shape`, or nil if a dimension is negative or the product overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            n = p
        }
        return n
    }

    /// The header dictionary literal NumPy writes for this shape.
    var headerText: String {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        return "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
    }

    /// The bytes of `numpy.save` for this array.
    public func encoded() -> Data {
        var header = headerText
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data(capacity: 10 + header.utf8.count + values.count * 4)
        out.append(contentsOf: [0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        out.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        out.append(contentsOf: Array(header.utf8))
        #if _endian(little)
        values.withUnsafeBytes { out.append(contentsOf: $0) }
        #else
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        #endif
        return out
    }

    /// Reads `numpy.save` bytes; every field is checked against the data length before use.
    public static func decode(_ data: Data, maxElements: Int = NumpyArray.maxElements) throws(FlowerError) -> NumpyArray {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw .array("not a .npy file (no \\x93NUMPY magic; \(bytes.count) bytes)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw .array("truncated header length") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw .array("format version \(major).\(bytes[7]) is not supported")
        }
        guard headerLength <= 65_536, headerStart + headerLength <= bytes.count else {
            throw .array("header of \(headerLength) bytes does not fit in \(bytes.count) bytes")
        }
        guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .isoLatin1) else {
            throw .array("header is not text")
        }
        let (descr, fortran, shape) = try parseHeader(header)
        guard !fortran else { throw .array("Fortran-ordered arrays are not supported") }
        let width: Int
        switch descr {
        case "<f4": width = 4
        case "<f8": width = 8
        default: throw .array("dtype \(descr) is not supported (float32 '<f4' or float64 '<f8')")
        }
        guard let count = elementCount(shape), count <= maxElements else {
            throw .array("shape \(shape) exceeds the limit of \(maxElements) elements")
        }
        let start = headerStart + headerLength
        guard bytes.count - start == count * width else {
            throw .array("shape \(shape) of \(descr) needs \(count * width) data bytes, the file has \(bytes.count - start)")
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            if width == 4 {
                for i in 0..<count { values[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self))) }
            } else {
                for i in 0..<count { values[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * i, as: UInt64.self)))) }
            }
        }
        return try NumpyArray(shape: shape, values: values)
    }

    /// Parses NumPy's header literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    static func parseHeader(_ text: String) throws(FlowerError) -> (descr: String, fortran: Bool, shape: [Int]) {
        func value(after key: String) throws(FlowerError) -> Substring {
            guard let r = text.range(of: "'\(key)':") else { throw .array("header has no '\(key)': \(text.prefix(120))") }
            return text[r.upperBound...].drop { $0 == " " }
        }
        let d = try value(after: "descr")
        guard d.first == "'", let close = d.dropFirst().firstIndex(of: "'") else { throw .array("unreadable descr in header") }
        let descr = String(d[d.index(after: d.startIndex)..<close])
        let f = try value(after: "fortran_order")
        let fortran: Bool
        if f.hasPrefix("False") { fortran = false } else if f.hasPrefix("True") { fortran = true } else { throw .array("unreadable fortran_order in header") }
        let s = try value(after: "shape")
        guard s.first == "(", let end = s.firstIndex(of: ")") else { throw .array("unreadable shape in header") }
        let inner = s[s.index(after: s.startIndex)..<end]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let n = Int(t), n >= 0 else { throw .array("shape entry '\(t)' is not a size") }
            shape.append(n)
        }
        return (descr, fortran, shape)
    }
}
