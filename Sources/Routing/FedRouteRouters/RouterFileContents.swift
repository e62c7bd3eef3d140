import FedRouteNumerics
import Foundation

/// The metadata and tensors of one router file, with checked accessors that name the file and the
/// key in their errors. A family's `StorableRouter.store(in:)` fills it; `load(from:)` reads it.
public struct RouterFileContents: Sendable {
    /// The file (for error messages).
    public let path: String
    public var metadata: [String: String]
    /// Tensors in the order they were added (the file sorts them by name).
    public private(set) var tensors: [Tensor]
    private var byName: [String: Int]

    public init(path: String, metadata: [String: String] = [:], tensors: [Tensor] = []) {
        self.path = path
        self.metadata = metadata
        self.tensors = []
        self.byName = [:]
        for t in tensors { add(t) }
    }

    public mutating func add(_ tensor: Tensor) {
        byName[tensor.name] = tensors.count
        tensors.append(tensor)
    }

    /// Stores `value` as compact JSON with sorted keys under `key`.
    public mutating func setJSON(_ value: some Encodable, for key: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        metadata[key] = String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Decodes the JSON under `key`; a missing or malformed value is a `RouterFile.LoadError`.
    public func json<T: Decodable>(_ key: String, as type: T.Type) throws -> T {
        guard let s = metadata[key], let v = try? JSONDecoder().decode(T.self, from: Data(s.utf8)) else {
            throw failure("metadata '\(key)' is missing or malformed")
        }
        return v
    }

    /// The tensor `name`; with `shape`, it must have exactly that shape.
    public func tensor(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        guard let i = byName[name] else { throw failure("tensor '\(name)' is missing") }
        let t = tensors[i]
        if let shape, t.shape != shape { throw failure("tensor '\(name)' has shape \(t.shape), expected \(shape)") }
        return t
    }

    /// The 2-D tensor `name` as a matrix.
    public func matrix(_ name: String) throws -> Matrix {
        guard let i = byName[name], tensors[i].shape.count == 2 else { throw failure("tensor '\(name)' is missing or not 2-D") }
        let t = tensors[i]
        return Matrix(rows: t.shape[0], cols: t.shape[1], data: t.values)
    }

    /// A load error about this file.
    public func failure(_ message: String) -> RouterFile.LoadError { RouterFile.LoadError(path: path, message: message) }
}
