import Foundation

/// Reads and writes a job's state; every write goes to a temporary file renamed over the old one.
public struct CheckpointStore: Sendable {
    public let path: String

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = (directory as NSString).appendingPathComponent("state.json")
    }

    public func load() throws -> FederationJobState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do { return try FederationCoding.decoder().decode(FederationJobState.self, from: Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw FederationError.checkpoint("the checkpoint \(path) cannot be read (\(error)); move it away to start over")
        }
    }

    public func save(_ state: FederationJobState) throws {
        try FederationCoding.encoder().encode(state).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
