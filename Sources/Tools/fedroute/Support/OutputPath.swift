import ArgumentParser
import Foundation

/// Checks where a command will write before it does the work, so a typo in `--out` costs nothing.
enum OutputPath {
    /// An output location that cannot be used, with the reason in plain words.
    struct Unusable: Error, CustomStringConvertible {
        var description: String
    }

    /// `path`'s folder exists (or can be created) and is writable.
    static func checkWritable(file path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try checkWritable(directory: folder.isEmpty ? "." : folder, option: "--out \(path)")
    }

    /// `path` is a folder that exists or can be created, and is writable.
    static func checkWritable(directory path: String, option: String? = nil) throws {
        let fm = FileManager.default
        let name = option ?? "--out \(path)"
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw Unusable(description: "\(name): cannot create the folder \(path): \(reason(creating: path))")
        }
        guard fm.isWritableFile(atPath: path) else { throw Unusable(description: "\(name): the folder \(path) is not writable") }
    }

    /// Why `path` cannot be created: the nearest existing ancestor is a file, or is not writable.
    static func reason(creating path: String) -> String {
        let fm = FileManager.default
        var ancestor = (path as NSString).standardizingPath
        while !ancestor.isEmpty, ancestor != "/", !fm.fileExists(atPath: ancestor) { ancestor = (ancestor as NSString).deletingLastPathComponent }
        var isDirectory: ObjCBool = false
        if ancestor.isEmpty { ancestor = "." }
        if fm.fileExists(atPath: ancestor, isDirectory: &isDirectory), !isDirectory.boolValue { return "\(ancestor) is a file, not a folder" }
        if !fm.isWritableFile(atPath: ancestor) { return "\(ancestor) is not writable" }
        return "the file system refused it"
    }
}
