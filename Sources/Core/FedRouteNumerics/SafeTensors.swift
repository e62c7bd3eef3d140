import Foundation

/// Reads and writes the safetensors format (8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, a `__metadata__` string map, then raw
/// little-endian data). Only `F32` tensors are used by fedroute.
public enum SafeTensors {
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    /// Longest JSON header read (the format's own limit is 100 MB; fedroute's are a few kB).
    public static let maxHeaderBytes = 100_000_000

    public static func write(tensors: [Tensor], metadata: [String: String], to path: String) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for t in sorted {
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]]
            offset += t.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for t in sorted {
            t.values.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 4)) }
        }
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw FormatError(path: path, message: "cannot write: \(error.localizedDescription)")
        }
    }

    /// Tensors by name and the metadata map. With `skipNonFloat`, tensors of other dtypes (e.g. the
    /// I64 `position_ids` buffer of a Hugging Face BERT export) are left out instead of rejected.
    public static func read(path: String, skipNonFloat: Bool = false) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot read" : "no such file")
        }
        guard data.count >= 8 else { throw FormatError(path: path, message: "too short for a safetensors file") }
        let declared = data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard declared > 0, declared <= UInt64(maxHeaderBytes), Int(declared) <= data.count - 8 else {
            throw FormatError(path: path, message: "header length \(declared) is not within 1…\(min(maxHeaderBytes, data.count - 8)) (file of \(data.count) bytes, header limit \(maxHeaderBytes))")
        }
        let headerLength = Int(declared)
        let header: [String: HeaderEntry]
        do { header = try JSONDecoder().decode([String: HeaderEntry].self, from: data.subdata(in: 8..<(8 + headerLength))) } catch {
            throw FormatError(path: path, message: "header is not a safetensors JSON header: \(error)")
        }
        let body = 8 + headerLength
        let bodyBytes = data.count - body
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            let dtype: String, shape: [Int], offsets: [Int]
            switch value {
            case .metadata(let m):
                guard name == "__metadata__" else { throw FormatError(path: path, message: "tensor '\(name)' has a malformed header entry") }
                metadata = m
                continue
            case .tensor(let d, let s, let o):
                guard name != "__metadata__" else { throw FormatError(path: path, message: "__metadata__ must map strings to strings") }
                guard o.count == 2 else { throw FormatError(path: path, message: "tensor '\(name)' has \(o.count) data offsets, not 2") }
                (dtype, shape, offsets) = (d, s, o)
            }
            if dtype != "F32" && skipNonFloat { continue }
            guard dtype == "F32" else { throw FormatError(path: path, message: "tensor '\(name)' has dtype \(dtype); only F32 is supported") }
            let count: Int
            do { count = try ShapeLimits.elementCount(shape) } catch { throw FormatError(path: path, message: "tensor '\(name)': \(error)") }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= bodyBytes, offsets[1] - offsets[0] == count * 4 else {
                throw FormatError(path: path, message: "tensor '\(name)' byte range \(offsets) does not match shape \(shape) within \(bodyBytes) data bytes")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(body + offsets[0])..<(body + offsets[1])])) }
            }
            tensors[name] = Tensor(name: name, shape: shape, values: values)
        }
        return (tensors, metadata)
    }

    /// One value of the JSON header: the `__metadata__` string map or a tensor entry. Decoding
    /// integers with `JSONDecoder` refuses `1e30` or `2.5` instead of trapping on them.
    enum HeaderEntry: Decodable {
        case metadata([String: String])
        case tensor(dtype: String, shape: [Int], offsets: [Int])

        enum CodingKeys: String, CodingKey { case dtype, shape, data_offsets }

        init(from decoder: any Decoder) throws {
            if let m = try? decoder.singleValueContainer().decode([String: String].self) {
                self = .metadata(m)
                return
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self = .tensor(dtype: try c.decode(String.self, forKey: .dtype), shape: try c.decode([Int].self, forKey: .shape),
                           offsets: try c.decode([Int].self, forKey: .data_offsets))
        }
    }
}
