import FedRouteNumerics
import Foundation
import Testing

/// Hostile safetensors headers (issue 15, item 3): each is an error that names the file, never a trap
/// or an allocation sized by the header.
@Suite struct SafeTensorsTests {
    static func file(header: String, declaredLength: UInt64? = nil, data: [UInt8] = []) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString).safetensors").path
        var bytes = Data()
        let json = Data(header.utf8)
        withUnsafeBytes(of: (declaredLength ?? UInt64(json.count)).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(json)
        bytes.append(contentsOf: data)
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: [
        // (header, declared length, data bytes, what the error says)
        ("{}", UInt64(Int64.max), 0, "header length"),
        ("{}", UInt64.max, 0, "header length"),
        ("{}", 0, 0, "header length"),
        (#"{"t":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#, nil, 4, "more than"),
        (#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, nil, 4, "negative"),
        (#"{"t":{"dtype":"F32","shape":[9223372036854775807,2],"data_offsets":[0,8]}}"#, nil, 8, "more than"),
        (#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, nil, 4, "byte range"),
        (#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,9223372036854775807]}}"#, nil, 4, "byte range"),
        (#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775804,9223372036854775807]}}"#, nil, 4, "byte range"),
        (#"{"t":{"dtype":"F32","shape":[1e30],"data_offsets":[0,4]}}"#, nil, 4, "not a safetensors JSON header"),
        (#"{"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,4]}}"#, nil, 4, "not a safetensors JSON header"),
        (#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, nil, 4, "data offsets"),
        (#"{"__metadata__":{"a":1}}"#, nil, 0, "__metadata__"),
        (#"[1, 2]"#, nil, 0, "not a safetensors JSON header"),
    ] as [(String, UInt64?, Int, String)])
    func hostileHeadersAreErrors(_ c: (String, UInt64?, Int, String)) throws {
        let path = try Self.file(header: c.0, declaredLength: c.1, data: Array(repeating: 0, count: c.2))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { _ = try SafeTensors.read(path: path) } throws: { error in
            "\(error)".contains(path) && "\(error)".contains(c.3)
        }
    }

    @Test func goodFilesStillRoundTrip() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = Tensor(name: "w", shape: [2, 3], values: [1, 2, 3, 4, 5, .nan])
        try SafeTensors.write(tensors: [t, Tensor(name: "b", shape: [0], values: [])], metadata: ["k": "v"], to: path)
        let (tensors, meta) = try SafeTensors.read(path: path)
        #expect(meta == ["k": "v"] && tensors["w"]?.shape == [2, 3] && tensors["b"]?.count == 0)
        #expect(tensors["w"]!.values[..<5] == t.values[..<5] && tensors["w"]!.values[5].isNaN)
    }

    @Test func shapeLimitsUseCheckedArithmetic() {
        #expect(ShapeLimits.checkedCount([2, 3]) == 6 && ShapeLimits.checkedCount([]) == 1 && ShapeLimits.checkedCount([0, 1 << 62]) == 0)
        #expect(ShapeLimits.checkedCount([1 << 40, 1 << 40]) == nil && ShapeLimits.checkedCount([-1]) == nil)
        #expect(ShapeLimits.checkedCount([Int.max, 2]) == nil && ShapeLimits.checkedCount([ShapeLimits.maxElements + 1]) == nil)
    }
}
