import Crypto
import Foundation
import SwiftProtobuf
import Testing
@testable import FedRouteFlower

/// Conformance with Python vectors made by the installed `flwr==1.42.0` (scripts/flower-golden.py):
/// `.npy` bytes, the ids and bytes of every record type and of a Message, and a signed header set.
@Suite struct FlowerGoldenTests {
    struct Golden: Decodable {
        struct NPY: Decodable { var shape: [Int]; var values: [Float]; var bytes: String }
        struct Object: Decodable { var id: String; var bytes: String }
        struct Signature: Decodable {
            var privateScalar: String, flwrPublicKey: String, flwrTimestamp: String, flwrSignature: String
            enum CodingKeys: String, CodingKey {
                case privateScalar = "private_scalar", flwrPublicKey = "flwr-public-key", flwrTimestamp = "flwr-timestamp", flwrSignature = "flwr-signature"
            }
        }
        var flwr: String
        var npy: [String: NPY]
        var objects: [String: Object]
        var arrayIds: [String: String]
        var signature: Signature
        enum CodingKeys: String, CodingKey { case flwr, npy, objects, arrayIds = "array_ids", signature }
    }

    static func load() throws -> Golden {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/flower-golden.json")
        return try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }

    static func hex(_ s: String) -> Data {
        var out = Data(capacity: s.count / 2)
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// The records the Python script deflated, built here.
    static let arrays: [FlowerEntry<NumpyArray>] = {
        let matrix = try! NumpyArray(shape: [2, 3], values: (0..<6).map { Float($0) / 4 })
        let vector = try! NumpyArray(shape: [3], values: [1.5, -2.25, 1e-8])
        return [FlowerEntry("trunk.0.weight", matrix), FlowerEntry("heads.bias", vector), FlowerEntry("copy", matrix)]
    }()
    static let metrics: [FlowerEntry<FlowerValue>] = [FlowerEntry("num-examples", .sint(120)), FlowerEntry("train_loss", .double(0.3125)),
                                                      FlowerEntry("big", .uint(1 << 63 + 5)), FlowerEntry("losses", .doubles([0.5, 0.25]))]
    static let config: [FlowerEntry<FlowerValue>] = [
        FlowerEntry("server-round", .sint(3)), FlowerEntry("lr", .double(0.01)), FlowerEntry("name", .string("fedroute ✓")), FlowerEntry("flag", .bool(true)),
        FlowerEntry("blob", .bytes(Data([0, 1, 0xFF]))), FlowerEntry("names", .strings(["a", "b"])), FlowerEntry("ints", .sints([1, -2])),
    ]
    static var content: FlowerRecordDict {
        FlowerRecordDict([FlowerEntry("arrays", .arrays(arrays)), FlowerEntry("metrics", .metrics(metrics)), FlowerEntry("config", .config(config))])
    }
    static var metadata: FlowerProtoMetadata {
        .with {
            $0.runID = 7
            $0.srcNodeID = 1
            $0.dstNodeID = 42
            $0.groupID = "3"
            $0.createdAt = 1764720000.25
            $0.ttl = 43200
            $0.messageType = "train"
            $0.srcTaskID = 11
        }
    }

    @Test func npyBytesMatchNumpy() throws {
        let g = try Self.load()
        #expect(g.flwr == "1.42.0")
        for (name, v) in g.npy {
            let a = try NumpyArray(shape: v.shape, values: v.values)
            #expect(a.encoded() == Self.hex(v.bytes), "\(name)")
            #expect(try NumpyArray.decode(Self.hex(v.bytes)) == a, "\(name)")
        }
    }

    @Test func recordAndMessageIdsMatchFlower() throws {
        let g = try Self.load()
        var stored: [String: Data] = [:]
        let store = { (o: FlowerObject) -> String in
            stored[o.id] = o.encoded
            return o.id
        }
        for (type, record) in [("ArrayRecord", FlowerRecord.arrays(Self.arrays)), ("MetricRecord", .metrics(Self.metrics)), ("ConfigRecord", .config(Self.config))] {
            let (id, _) = try FlowerMessageCodec.deflate(record, store: store)
            #expect(id == g.objects[type]!.id, "\(type)")
            #expect(stored[id] == Self.hex(g.objects[type]!.bytes), "\(type)")
        }
        for (name, id) in g.arrayIds { #expect(stored[id] != nil, "array \(name)") }
        let (contentID, _) = try FlowerMessageCodec.deflate(Self.content, store: store)
        #expect(contentID == g.objects["RecordDict"]!.id)
        let message = try FlowerMessageCodec.deflate(metadata: Self.metadata, content: Self.content)
        #expect(message.messageID == g.objects["Message"]!.id)
        #expect(message.byID[message.messageID] == Self.hex(g.objects["Message"]!.bytes))
    }

    @Test func inflatesWhatItDeflates() throws {
        let message = try FlowerMessageCodec.deflate(metadata: Self.metadata, content: Self.content)
        var objects: [String: FlowerObject] = [:]
        for (id, bytes) in message.objects { objects[id] = try FlowerObject.parse(bytes, expectedID: id) }
        let back = try FlowerMessageCodec.inflate(messageID: message.messageID, objects: objects)
        #expect(back.content == Self.content)
        #expect(back.metadata.messageType == "train" && back.metadata.messageID == message.messageID && back.metadata.srcTaskID == 11)
    }

    @Test func signedHeadersMatchFlower() throws {
        let g = try Self.load().signature
        let key = try P256.Signing.PrivateKey(rawRepresentation: Self.hex(g.privateScalar))
        let signer = FleetSigner(key: key)
        // The public key header is byte-identical to Python's PEM SubjectPublicKeyInfo.
        #expect(signer.publicKeyPEM.base64EncodedString() == g.flwrPublicKey)
        // Python's signature verifies under our key, and ours under the key Python sent.
        let pythonSignature = try P256.Signing.ECDSASignature(derRepresentation: Data(base64Encoded: g.flwrSignature)!)
        #expect(key.publicKey.isValidSignature(pythonSignature, for: Data(g.flwrTimestamp.utf8)))
        let pem = String(decoding: Data(base64Encoded: g.flwrPublicKey)!, as: UTF8.self)
        let pythonKey = try P256.Signing.PublicKey(pemRepresentation: pem)
        let date = Date(timeIntervalSince1970: 1_796_259_723.456789)
        let headers = Dictionary(uniqueKeysWithValues: try signer.headers(at: date))
        #expect(headers["flwr-timestamp"] == g.flwrTimestamp)
        let ours = try P256.Signing.ECDSASignature(derRepresentation: Data(base64Encoded: headers["flwr-signature"]!)!)
        #expect(pythonKey.isValidSignature(ours, for: Data(g.flwrTimestamp.utf8)))
    }
}
