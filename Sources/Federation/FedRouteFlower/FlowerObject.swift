import Crypto
import Foundation

/// One object of Flower's content-addressed store: `"<Type> <child ids, comma-separated> <body length>"`,
/// a zero byte, then the body. Its id is the lowercase hex SHA-256 of those bytes.
public struct FlowerObject: Sendable, Equatable {
    public var type: String
    public var children: [String]
    public var body: Data

    /// Largest object `parse` accepts (an array chunk is at most 5 MiB; metadata objects are small).
    public static let maxBytes = 64 << 20
    /// Flower's array chunk size (`FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE`).
    public static let chunkSize = 5 * 1024 * 1024

    public init(type: String, children: [String], body: Data) {
        self.type = type
        self.children = children
        self.body = body
    }

    /// The object's bytes as stored and hashed.
    public var encoded: Data {
        var out = Data("\(type) \(children.joined(separator: ",")) \(body.count)".utf8)
        out.append(0)
        out.append(body)
        return out
    }

    public var id: String { Self.id(of: encoded) }

    public static func id(of bytes: Data) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    static func isObjectID(_ s: some StringProtocol) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Reads stored bytes, checking that they hash to `expectedID` and that the header is well formed.
    public static func parse(_ bytes: Data, expectedID: String) throws(FlowerError) -> FlowerObject {
        guard bytes.count <= maxBytes else { throw .object(id: expectedID, "\(bytes.count) bytes exceed the limit of \(maxBytes)") }
        let actual = id(of: bytes)
        guard actual == expectedID else { throw .object(id: expectedID, "content hashes to \(actual), not to its id") }
        guard let zero = bytes.firstIndex(of: 0), zero - bytes.startIndex <= 64 * 1024 else { throw .object(id: expectedID, "no header terminator") }
        guard let head = String(data: bytes[bytes.startIndex..<zero], encoding: .utf8) else { throw .object(id: expectedID, "header is not UTF-8") }
        let parts = head.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, let length = Int(parts[2]) else {
            throw .object(id: expectedID, "header '\(head.prefix(100))' is not '<type> <children> <length>'")
        }
        let body = bytes[(zero + 1)...]
        guard length == body.count else { throw .object(id: expectedID, "header says \(length) body bytes, found \(body.count)") }
        let children = parts[1].isEmpty ? [] : parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard children.allSatisfy(isObjectID) else { throw .object(id: expectedID, "a child id is not a SHA-256 hex digest") }
        return FlowerObject(type: String(parts[0]), children: children, body: Data(body))
    }
}
