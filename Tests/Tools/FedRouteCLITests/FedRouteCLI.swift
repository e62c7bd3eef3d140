import FedRouteData
import Foundation

/// Runs the built `fedroute` executable (the one beside the test bundle, or `$FEDROUTE_BIN`) the
/// way a user does: arguments in, exit status, standard output and standard error out.
struct FedRouteCLI {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    let executable: URL

    init() throws {
        let env = ProcessInfo.processInfo.environment
        var candidates: [URL] = []
        if let bin = env["FEDROUTE_BIN"] { candidates.append(URL(fileURLWithPath: bin)) }
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        candidates += [here.appendingPathComponent("fedroute"), Bundle.main.bundleURL.appendingPathComponent("fedroute"),
                       here.deletingLastPathComponent().appendingPathComponent("fedroute")]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw CLIError("the fedroute executable was not found (tried \(candidates.map(\.path).joined(separator: ", "))); run swift build first")
        }
        executable = found
    }

    /// Runs `fedroute arguments…` in `directory` with CI set (no progress bars) and waits for it.
    func run(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]) throws -> Run {
        let p = process(arguments, environment: environment)
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes while the process runs, so a full pipe never blocks it.
        let errData = LockedData()
        let reading = DispatchGroup()
        DispatchQueue.global().async(group: reading) { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        reading.wait()
        return Run(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData.value, as: UTF8.self))
    }

    /// A running `fedroute` process (a server); its standard error goes to a file, read as it grows.
    final class Background: Sendable {
        let process: Process
        let errorFile: String

        init(process: Process, errorFile: String) {
            self.process = process
            self.errorFile = errorFile
        }

        var stderr: String { (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? "" }

        /// The port from the server's "listening on http(s)://host:PORT" line.
        func waitForPort(seconds: Double = 60) async throws -> Int {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let line = stderr.split(separator: "\n").first(where: { $0.hasPrefix("listening on http") }),
                   let url = line.split(separator: " ").first(where: { $0.hasPrefix("http") }),
                   let port = URLComponents(string: String(url))?.port {
                    return port
                }
                guard process.isRunning else { throw CLIError("the server exited: \(stderr)") }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw CLIError("the server did not listen within \(seconds) s: \(stderr)")
        }

        /// SIGTERM, then the exit status.
        func terminate() -> Int32 {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            return process.terminationStatus
        }

        func stop() { if process.isRunning { process.terminate(); process.waitUntilExit() } }
    }

    /// Starts `fedroute arguments…` without waiting for it; its standard error goes to `errorFile`.
    func start(_ arguments: [String], errorFile: String, environment: [String: String] = [:]) throws -> Background {
        let p = process(arguments, environment: environment)
        _ = FileManager.default.createFile(atPath: errorFile, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorFile))
        try p.run()
        return Background(process: p, errorFile: errorFile)
    }

    /// `fedroute arguments…` with CI set (no progress bars) and `environment` over this process's.
    func process(_ arguments: [String], environment: [String: String]) -> Process {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "true"
        env.merge(environment) { _, new in new }
        p.environment = env
        return p
    }

    /// A fresh temporary folder.
    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A small labelled data set (native JSONL, every cell observed, no split of its own).
    static func syntheticData(in dir: String, queries: Int = 240, seed: UInt64 = 7) throws -> String {
        let path = dir + "/synthetic.jsonl"
        try NativeFormat.write(try SyntheticData.table(queries: queries, topics: 3, seed: seed), to: path)
        return path
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data ?? Data() }
}
