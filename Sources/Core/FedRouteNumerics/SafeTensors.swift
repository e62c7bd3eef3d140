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
        let headerLength = Int(data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        guard headerLength > 0, 8 + headerLength <= data.count else { throw FormatError(path: path, message: "header length \(headerLength) exceeds file size") }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any] else {
            throw FormatError(path: path, message: "header is not a JSON object")
        }
        let body = 8 + headerLength
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw FormatError(path: path, message: "__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw FormatError(path: path, message: "tensor '\(name)' has a malformed header entry") }
            if dtype != "F32" && skipNonFloat { continue }
            guard dtype == "F32" else { throw FormatError(path: path, message: "tensor '\(name)' has dtype \(dtype); only F32 is supported") }
            let count = shape.reduce(1, *)
            guard offsets[0] >= 0, offsets[1] - offsets[0] == count * 4, body + offsets[1] <= data.count else {
                throw FormatError(path: path, message: "tensor '\(name)' byte range \(offsets) does not match shape \(shape)")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(body + offsets[0])..<(body + offsets[1])])) }
            }
            tensors[name] = Tensor(name: name, shape: shape, values: values)
        }
        return (tensors, metadata)
    }
}
