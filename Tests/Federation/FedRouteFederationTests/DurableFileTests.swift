@testable import FedRouteFederation
import Foundation
import Testing

@Suite struct DurableFileTests {
    /// A write replaces the file whole and leaves no temporary file beside it; a missing directory is an error
    /// naming the path, and leaves nothing behind.
    @Test func replacesTheFileWholeAndNamesThePathOnFailure() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("durable-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.frames"
        try DurableFile.write(Data(repeating: 1, count: 100_000), to: path)
        try DurableFile.write(Data([7, 8, 9]), to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([7, 8, 9]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["state.frames"])
        let missing = dir + "/no/such/dir/state.frames"
        #expect { try DurableFile.write(Data([1]), to: missing) } throws: { error in
            guard case FederationError.checkpoint(let message) = error else { return false }
            return message.contains(dir + "/no/such/dir") && message.contains("No such file")
        }
    }
}
