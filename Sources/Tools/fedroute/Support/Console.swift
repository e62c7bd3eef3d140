import Foundation

/// Messages to standard error; progress bars only on a terminal outside CI.
enum Console {
    static let isInteractive: Bool = isatty(2) == 1 && ProcessInfo.processInfo.environment["CI"] == nil

    static func info(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}
