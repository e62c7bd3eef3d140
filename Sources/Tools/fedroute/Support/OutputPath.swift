import ArgumentParser
import Foundation

/// Checks where a command will write before it does the work, so a typo in `--out` costs nothing.
enum OutputPath {
    /// `path`'s folder exists (or can be created) and is writable.
    static func checkWritable(file path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try checkWritable(directory: folder.isEmpty ? "." : folder, option: "--out \(path)")
    }

    /// `path` is a folder that exists or can be created, and is writable.
    static func checkWritable(directory path: String, option: String? = nil) throws {
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw ValidationError("\(option ?? "--out \(path)"): cannot create the folder \(path) (\(error.localizedDescription))")
        }
        guard fm.isWritableFile(atPath: path) else { throw ValidationError("\(option ?? "--out \(path)"): the folder \(path) is not writable") }
    }
}
