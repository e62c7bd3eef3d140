// fedroute-fuzz: the libFuzzer driver of the fuzz targets (issue 15). Built only by
// `scripts/fuzz.sh` (FEDROUTE_FUZZ=1 turns on `-sanitize=fuzzer,address` in Package.swift).
//
//   fedroute-fuzz TARGET [libFuzzer options] [corpus folders or inputs]
//   fedroute-fuzz --write-seeds TARGET FOLDER [SHARED-DATA]
import FedRouteFuzzTargets
import Foundation

/// libFuzzer's entry point for programs with their own `main` (libclang_rt.fuzzer_no_main).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// What the C callback needs: chosen once from the command line, never changed.
enum Driver {
    static let arguments = CommandLine.arguments
    static let target = arguments.count > 1 ? FuzzTarget(rawValue: arguments[1]) : nil
    static let scratch = try? FuzzScratch()

    static func usage() -> Never {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("usage: fedroute-fuzz TARGET [libFuzzer options] [corpus…]\n       fedroute-fuzz --write-seeds TARGET FOLDER [SHARED-DATA]\ntargets: \(names)\n".utf8))
        exit(2)
    }
}

if Driver.arguments.count >= 4, Driver.arguments[1] == "--write-seeds" {
    guard let target = FuzzTarget(rawValue: Driver.arguments[2]) else { Driver.usage() }
    let folder = Driver.arguments[3]
    do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let seeds = try await target.seeds(sharedData: Driver.arguments.count > 4 ? Driver.arguments[4] : nil)
        for seed in seeds { try seed.data.write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(seed.name))) }
        print("\(target.rawValue): \(seeds.count) seeds in \(folder)")
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("fedroute-fuzz: cannot write the seeds of \(target.rawValue): \(error)\n".utf8))
        exit(1)
    }
}
guard Driver.target != nil, Driver.scratch != nil else { Driver.usage() }

// libFuzzer sees the command line without the target name.
var forwarded = [strdup(Driver.arguments[0])] + Driver.arguments.dropFirst(2).map { strdup($0) } + [nil]
var argc = CInt(forwarded.count - 1)
let status = forwarded.withUnsafeMutableBufferPointer { buffer -> CInt in
    var argv = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, count in
        guard let target = Driver.target, let scratch = Driver.scratch else { return 0 }
        target.run(data.map { Data(bytes: $0, count: count) } ?? Data(), in: scratch)
        return 0
    }
}
Driver.scratch?.remove()
exit(status)
