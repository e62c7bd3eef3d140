import FedRouteNumerics
import Foundation

/// Reads and writes a job's state; every write goes to a temporary file flushed to the disk and renamed over the
/// old one (`DurableFile`), so that a crash of the process or the machine leaves a whole checkpoint.
///
/// The checkpoint is a tensor frame, `state.frames`: the state's JSON, then the model's parameters and the
/// server optimiser's moments as raw little-endian float32 (docs/FEDERATION.md, "Tensor frames"). As JSON
/// with base64 arrays a 0.8 M-parameter MLP's checkpoint was 12.9 MB and took 66–86 ms to write after every
/// round. Checkpoints written before frames (`state.json`) are still read, and the first save removes
/// them.
public struct CheckpointStore: Sendable {
    /// Where checkpoints are written.
    public let framesPath: String
    /// Where checkpoints were written before tensor frames.
    public let legacyPath: String

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        framesPath = (directory as NSString).appendingPathComponent("state.frames")
        legacyPath = (directory as NSString).appendingPathComponent("state.json")
    }

    /// The checkpoint file a load reads (and messages name): the JSON one when only it exists.
    public var path: String {
        let fm = FileManager.default
        return !fm.fileExists(atPath: framesPath) && fm.fileExists(atPath: legacyPath) ? legacyPath : framesPath
    }

    /// The saved state, or nil when there is none. Both files present means an older fedroute wrote the
    /// JSON one after this one: which to resume from is the operator's call, so that is an error.
    public func load() throws -> FederationJobState? {
        let fm = FileManager.default
        let (frames, legacy) = (fm.fileExists(atPath: framesPath), fm.fileExists(atPath: legacyPath))
        guard frames || legacy else { return nil }
        if frames && legacy {
            throw FederationError.checkpoint("both \(framesPath) and \(legacyPath) exist (an older fedroute writes state.json); move away the one not to resume from")
        }
        let file = frames ? framesPath : legacyPath
        do { return try Self.decode(Data(contentsOf: URL(fileURLWithPath: file))) } catch {
            throw FederationError.checkpoint("the checkpoint \(file) cannot be read (\(error)); move it away to start over")
        }
    }

    public func save(_ state: FederationJobState) throws {
        try DurableFile.write(Self.encode(state), to: framesPath)
        if FileManager.default.fileExists(atPath: legacyPath) { try FileManager.default.removeItem(atPath: legacyPath) }
    }

    /// A checkpoint's bytes: a tensor frame.
    public static func encode(_ state: FederationJobState) throws -> Data {
        try TensorFrames.encode(state, with: FederationCoding.encoder())
    }

    /// A checkpoint from its bytes: a tensor frame, or the JSON of checkpoints written before frames.
    public static func decode(_ data: Data) throws -> FederationJobState {
        if TensorFrames.isFrame(data) { return try TensorFrames.decode(FederationJobState.self, from: data, with: FederationCoding.decoder()) }
        return try FederationCoding.decoder().decode(FederationJobState.self, from: data)
    }
}
