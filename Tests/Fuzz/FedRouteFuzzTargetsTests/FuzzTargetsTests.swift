import FedRouteData
import FedRouteFederationHTTP
@testable import FedRouteFuzzTargets
import FedRouteNumerics
import FedRouteRouters
import Foundation
import Testing

/// The fuzz targets outside libFuzzer: every input the fuzzers ever crashed on (kept in
/// `Tests/Fuzz/regressions/TARGET/`) runs cleanly, and every target's seeds are what it claims.
@Suite struct FuzzTargetsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let regressions = root.appendingPathComponent("regressions")
    /// `../shared/data` beside the package, when present.
    static var sharedData: String? {
        let path = root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static func inputs(in folder: URL) throws -> [URL] {
        guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") && $0.pathExtension != "md" }
            .sorted { $0.path < $1.path }
    }

    @Test(arguments: FuzzTarget.allCases) func everyKeptCrashRunsCleanly(_ target: FuzzTarget) throws {
        let scratch = try FuzzScratch()
        defer { scratch.remove() }
        for input in try Self.inputs(in: Self.regressions.appendingPathComponent(target.rawValue)) {
            target.run(try Data(contentsOf: input), in: scratch)
        }
    }

    @Test func regressionFoldersAreNamedAfterTargets() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.regressions.path).filter { !$0.contains(".") }
        #expect(Set(folders).isSubset(of: FuzzTarget.allCases.map(\.rawValue)), "a misnamed folder would never be replayed")
    }

    @Test(arguments: FuzzTarget.allCases) func seedsExistAndRunCleanly(_ target: FuzzTarget) async throws {
        let seeds = try await target.seeds(sharedData: Self.sharedData)
        #expect(!seeds.isEmpty)
        #expect(Set(seeds.map(\.name)).count == seeds.count)
        let scratch = try FuzzScratch()
        defer { scratch.remove() }
        for seed in seeds { target.run(seed.data, in: scratch) }
    }

    /// Seeds that do not parse would leave the fuzzer to rediscover the format from nothing.
    @Test func routerFileAndLoaderSeedsAreValidInputs() async throws {
        let scratch = try FuzzScratch()
        defer { scratch.remove() }
        for seed in try await FuzzTarget.routerFile.seeds(sharedData: nil) {
            let pipeline = try RouterFile.load(path: try scratch.write(seed.data, named: seed.name))
            let predictions = try pipeline.predict(texts: ["a question"])
            #expect(predictions.rows == 1 && !predictions.models.isEmpty && predictions.score.allSatisfy(\.isFinite), "\(seed.name)")
        }
        for seed in try await FuzzTarget.jsonl.seeds(sharedData: Self.sharedData) {
            #expect(try DatasetLoader.load(path: try scratch.write(seed.data, named: seed.name)).table.queryCount > 0)
        }
        for seed in try await FuzzTarget.csv.seeds(sharedData: Self.sharedData) {
            let path = try scratch.write(seed.data, named: seed.name)
            #expect(try DatasetLoader.load(path: path, options: LoadOptions(invalidRows: .skip)).table.queryCount > 0, "\(seed.name)")
        }
        // The signature seeds verify, under the digest each names (SHA-256 or the tree digest), except the
        // one signed over another body.
        for seed in try SignatureFuzzTarget.seeds() {
            var authenticator = try ClientAuthenticator(publicKeys: [SignatureFuzzTarget.identity.id: SignatureFuzzTarget.identity.publicKeyBase64],
                                                        lastNonce: [SignatureFuzzTarget.identity.id: 100])
            let (method, path, headers, body) = SignatureFuzzTarget.parse(seed.data)
            let verified = try? authenticator.verify(method: method, path: path, header: { name in headers.first { $0.0 == name }?.1 },
                                                     body: body, now: SignatureFuzzTarget.now)
            #expect((verified == SignatureFuzzTarget.identity.id) == (seed.name != "altered.txt"), "\(seed.name)")
        }
    }
}
