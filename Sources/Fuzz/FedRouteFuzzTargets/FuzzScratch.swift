import Foundation

/// A private temporary folder for targets whose reader takes a path: the input is written to a
/// file there before each run (the readers are exercised exactly as the CLI calls them).
public struct FuzzScratch: Sendable {
    public let directory: String

    /// Creates a fresh folder under the system's temporary directory.
    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-fuzz-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Writes `data` to `name` in the folder and returns the file's path.
    public func write(_ data: Data, named name: String) throws -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Removes the folder.
    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
