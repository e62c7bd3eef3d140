import Foundation
import Testing
@testable import FedRouteFlower

@Suite struct NumpyArrayTests {
    @Test func roundTrips() throws {
        let a = try NumpyArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(try NumpyArray.decode(a.encoded()) == a)
        #expect(a.encoded().count == 128 + 24)  // the header padded to a multiple of 64 bytes, then the data
    }

    static func header(_ dict: String, major: UInt8 = 1) -> Data {
        var h = dict
        h += String(repeating: " ", count: (64 - (10 + h.utf8.count + 1) % 64) % 64) + "\n"
        return Data([0x93] + Array("NUMPY".utf8) + [major, 0, UInt8(h.utf8.count & 0xFF), UInt8(h.utf8.count >> 8)] + Array(h.utf8))
    }

    static let hostileFiles: [(file: Data, reason: String)] = {
        let good = try! NumpyArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]).encoded()
        var cases: [(Data, String)] = [(Data(), "magic"), (Data("not numpy at all".utf8), "magic"), (good.dropLast(3), "data bytes")]
        cases.append((header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + Data(count: 28), "data bytes"))
        cases.append((header("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }") + Data(count: 16), "dtype"))
        cases.append((header("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }") + Data(count: 8), "Fortran"))
        cases.append((header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }"), "limit"))
        cases.append((header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), "shape entry"))
        cases.append((header("{'descr': '<f4', 'fortran_order': False, }"), "shape"))
        cases.append((header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", major: 9) + Data(count: 4), "version"))
        cases.append((Data([0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0xFF]) + Data(count: 10), "does not fit"))
        return cases
    }()

    /// Each hostile file is refused with a reason naming the problem; none crashes or allocates by its header.
    @Test func refusesHostileFiles() {
        for (file, reason) in Self.hostileFiles {
            do {
                _ = try NumpyArray.decode(file)
                Issue.record("accepted a file that should fail with '\(reason)'")
            } catch {
                #expect("\(error)".contains(reason), "\(error) should mention '\(reason)'")
            }
        }
    }

    @Test func readsFloat64AndVersion2() throws {
        var body = Data()
        for v in [1.5, -2.0] { withUnsafeBytes(of: v.bitPattern.littleEndian) { body.append(contentsOf: $0) } }
        let f8 = Self.header("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }") + body
        #expect(try NumpyArray.decode(f8).values == [1.5, -2])
        let v1 = try NumpyArray(shape: [1], values: [7]).encoded()
        var v2 = Data(v1.prefix(6)) + Data([2, 0])
        let length = Int(v1[8]) | Int(v1[9]) << 8
        v2 += Data([v1[8], v1[9], 0, 0]) + v1[10...]
        #expect(length > 0)
        #expect(try NumpyArray.decode(v2).values == [7])
    }
}

@Suite struct FlowerObjectTests {
    @Test func refusesObjectsThatDoNotHashToTheirId() throws {
        let o = FlowerObject(type: "ArrayChunk", children: [], body: Data([1, 2, 3]))
        #expect(try FlowerObject.parse(o.encoded, expectedID: o.id) == o)
        var tampered = o.encoded
        tampered[tampered.count - 1] = 9
        #expect { try FlowerObject.parse(tampered, expectedID: o.id) } throws: { "\($0)".contains("hashes to") }
    }

    @Test(arguments: [("ArrayChunk 3\0abc", "header"), ("ArrayChunk  5\0abc", "body bytes"), ("ArrayChunk xyz 3\0abc", "SHA-256"), ("no terminator", "terminator")])
    func refusesMalformedHeaders(text: String, reason: String) {
        let bytes = Data(text.utf8)
        #expect { try FlowerObject.parse(bytes, expectedID: FlowerObject.id(of: bytes)) } throws: { "\($0)".contains(reason) }
    }

    @Test func inflatingRefusesInconsistentTrees() throws {
        let array = try NumpyArray(shape: [2], values: [1, 2])
        let content = FlowerRecordDict([FlowerEntry("arrays", .arrays([FlowerEntry("w", array)]))])
        let message = try FlowerMessageCodec.deflate(metadata: FlowerProtoMetadata(), content: content)
        var objects: [String: FlowerObject] = [:]
        for (id, bytes) in message.objects { objects[id] = try FlowerObject.parse(bytes, expectedID: id) }
        // A missing child.
        var missing = objects
        missing.removeValue(forKey: message.objects.first { $0.bytes.starts(with: Data("ArrayChunk".utf8)) }!.id)
        #expect { try FlowerMessageCodec.inflate(messageID: message.messageID, objects: missing) } throws: { "\($0)".contains("ArrayChunk") }
        // An Array whose metadata shape disagrees with its .npy data.
        let arrayID = message.objects.first { $0.bytes.starts(with: Data("Array ".utf8)) }!.id
        var wrongShape = objects
        var a = objects[arrayID]!
        a.body = Data(String(decoding: a.body, as: UTF8.self).replacingOccurrences(of: "[2]", with: "[3]").utf8)
        wrongShape[arrayID] = a
        #expect { try FlowerMessageCodec.inflate(messageID: message.messageID, objects: wrongShape) } throws: { "\($0)".contains("differs") }
    }

    @Test func pythonJSONKeepsOrderAndEscapes() throws {
        let v = PythonJSON.object([("z", .string("é\"\n")), ("a", .array([.int(1), .int(-2)]))])
        #expect(v.text == #"{"z": "\u00e9\"\n", "a": [1, -2]}"#)
        #expect(try PythonJSON.parse(v.encoded) == v)
        #expect(throws: FlowerError.self) { try PythonJSON.parse(Data(String(repeating: "[", count: 100).utf8)) }
    }
}
