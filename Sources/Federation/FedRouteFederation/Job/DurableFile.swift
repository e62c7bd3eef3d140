#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A file replaced atomically and durably: the bytes go to a temporary file beside it, which is flushed to the
/// disk (`fsync`) before it is renamed over the old one, and the directory is flushed after the rename. A crash
/// of the process or of the machine then leaves the old file or the new one, whole.
///
/// Foundation's `.atomic` write renames without flushing, which survives a process crash but may leave an empty
/// or partial file after a power loss, and leaves the new bytes to the kernel's background writeback, which then
/// runs during whatever comes next (for a federation job, the next round).
public enum DurableFile {
    /// Replaces `path` with `data`. Errors name the path and the call that failed; the temporary file is removed.
    public static func write(_ data: Data, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).\(getpid()).tmp")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("open", temporary) }
        var written = 0
        let ok: Bool = data.withUnsafeBytes { raw in
            while written < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                written += n
            }
            return true
        }
        guard ok, fsync(fd) == 0 else {
            let error = failure(ok ? "fsync" : "write", temporary)
            close(fd)
            unlink(temporary)
            throw error
        }
        guard close(fd) == 0 else {
            let error = failure("close", temporary)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = failure("rename to \(path)", temporary)
            unlink(temporary)
            throw error
        }
        // The rename itself is durable once the directory is flushed.
        let dir = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw failure("open the directory of", path) }
        defer { close(dir) }
        guard fsync(dir) == 0 else { throw failure("fsync the directory of", path) }
    }

    static func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, bytes, count)
        #elseif canImport(Musl)
        Musl.write(fd, bytes, count)
        #else
        Darwin.write(fd, bytes, count)
        #endif
    }

    static func failure(_ call: String, _ path: String) -> FederationError {
        FederationError.checkpoint("\(call) \(path): \(String(cString: strerror(errno)))")
    }
}
