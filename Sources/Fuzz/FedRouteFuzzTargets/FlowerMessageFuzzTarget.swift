import FedRouteFlower
import Foundation

/// What a Flower node reads from a SuperLink: the first byte picks the reader. 0: a `.npy` file
/// (`NumpyArray.decode`). Otherwise: objects, each a 4-byte big-endian length and its bytes, stored
/// under their own hashes (so the header, JSON, protobuf and `.npy` parsers are reached, not only the
/// hash check), inflated as the message whose id is the first object's.
enum FlowerMessageFuzzTarget {
    static func run(_ input: Data) {
        let bytes = [UInt8](input)
        guard let mode = bytes.first else { return }
        let rest = Data(bytes.dropFirst())
        if mode == 0 {
            if let a = try? NumpyArray.decode(rest) {
                // What decodes re-encodes to the same shape and values.
                let again = try? NumpyArray.decode(a.encoded())
                precondition(again?.shape == a.shape && again?.values.count == a.values.count, "an .npy array did not survive re-encoding")
            }
            return
        }
        var objects: [String: Data] = [:]
        var first: String?
        var i = 1
        while i + 4 <= bytes.count, objects.count < 64 {
            let n = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            i += 4
            guard n <= bytes.count - i else { break }
            let object = Data(bytes[i..<(i + n)])
            let id = FlowerObject.id(of: object)
            objects[id] = object
            if first == nil { first = id }
            i += n
        }
        guard let first else { return }
        _ = try? FlowerMessageCodec.inflate(messageID: first, objectBytes: objects)
    }

    static func frame(_ objects: [(id: String, bytes: Data)]) -> Data {
        var out = Data([1])
        for o in objects {
            let n = UInt32(o.bytes.count)
            out.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
            out.append(o.bytes)
        }
        return out
    }

    /// A train instruction, a query with every config value kind, a metrics reply, and `.npy` files.
    static func seeds() throws -> [FuzzSeed] {
        let w = try NumpyArray(shape: [2, 3], values: [0.5, -1, 2, 0, 1e-3, 7])
        let b = try NumpyArray(shape: [3], values: [1, 2, 3])
        let train = FlowerRecordDict([
            FlowerEntry("arrays", .arrays([FlowerEntry("trunk.0.weight", w), FlowerEntry("heads.bias", b)])),
            FlowerEntry("config", .config([FlowerEntry("server-round", .sint(2)), FlowerEntry("fedroute.plan", .bytes(Data("{}".utf8)))])),
        ])
        let query = FlowerRecordDict([FlowerEntry("fedroute", .config([
            FlowerEntry("op", .string("request")), FlowerEntry("request", .bytes(Data(#"{"describe":{}}"#.utf8))), FlowerEntry("x", .double(0.5)),
            FlowerEntry("flags", .bools([true, false])), FlowerEntry("names", .strings(["a", "é"])), FlowerEntry("u", .uints([1, UInt64.max])),
        ]))])
        let metrics = FlowerRecordDict([FlowerEntry("metrics", .metrics([FlowerEntry("num-examples", .sint(10)), FlowerEntry("loss", .doubles([0.1]))]))])
        var seeds: [FuzzSeed] = []
        for (name, type, content) in [("train", "train", train), ("query", "query.fedroute", query), ("metrics", "evaluate", metrics)] {
            seeds.append(FuzzSeed(name: "\(name).bin", data: frame(try FlowerMessageCodec.objects(type: type, content: content).objects)))
        }
        seeds.append(FuzzSeed(name: "matrix.npy", data: Data([0]) + w.encoded()))
        seeds.append(FuzzSeed(name: "vector.npy", data: Data([0]) + b.encoded()))
        return seeds
    }
}
