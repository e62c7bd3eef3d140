import Foundation
import Testing

/// `fedroute flower-key` and `fedroute flower-node` as processes: the key file, its public forms, and
/// how a node refuses settings that cannot work or a SuperLink that is not there.
@Suite final class FlowerCommandTests {
    let cli: FedRouteCLI
    let dir: String
    let data: String

    init() throws {
        cli = try FedRouteCLI()
        dir = try FedRouteCLI.temporaryDirectory()
        data = try FedRouteCLI.syntheticData(in: dir)
    }

    /// Each test's folder goes when the test does (Swift Testing makes one suite instance per test).
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @Test func flowerKeyCreatesOnceAndPrintsBothForms() throws {
        let key = dir + "/node.pem"
        let ssh = try cli.run(["flower-key", "--key", key])
        #expect(ssh.status == 0 && ssh.stderr.contains("created a node key"))
        #expect(ssh.stdout.hasPrefix("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY"))
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The same key the second time (a restarted node keeps its identity).
        let again = try cli.run(["flower-key", "--key", key])
        #expect(again.stdout == ssh.stdout && !again.stderr.contains("created"))
        let pem = try cli.run(["flower-key", "--key", key, "--format", "pem"])
        #expect(pem.stdout.hasPrefix("-----BEGIN PUBLIC KEY-----\n") && pem.stdout.hasSuffix("-----END PUBLIC KEY-----\n"))
        // A file that is not a P-256 key is named.
        try "not a key".write(toFile: dir + "/bad.pem", atomically: true, encoding: .utf8)
        let bad = try cli.run(["flower-key", "--key", dir + "/bad.pem"])
        #expect(bad.status != 0 && bad.stderr.contains("bad.pem") && bad.stderr.contains("P-256"))
    }

    @Test func flowerNodeRefusesSettingsThatCannotWork() throws {
        let https = try cli.run(["flower-node", "--superlink", "https://127.0.0.1:9", "--insecure", "--key", dir + "/k.pem", "--data", data])
        #expect(https.status != 0 && https.stderr.contains("--insecure needs an http://"))
        let plain = try cli.run(["flower-node", "--superlink", "http://127.0.0.1:9", "--key", dir + "/k.pem", "--data", data])
        #expect(plain.status != 0 && plain.stderr.contains("--insecure"))
        let heartbeat = try cli.run(["flower-node", "--superlink", "http://127.0.0.1:9", "--insecure", "--key", dir + "/k.pem", "--data", data,
                                     "--heartbeat-interval", "5"])
        #expect(heartbeat.status != 0 && heartbeat.stderr.contains("10…1800"))
        let roots = try cli.run(["flower-node", "--superlink", "https://127.0.0.1:9", "--root-certificates", dir + "/missing.pem",
                                 "--key", dir + "/k.pem", "--data", data])
        #expect(roots.status != 0 && roots.stderr.contains("missing.pem"))
    }

    @Test func flowerNodeGivesUpOnAnAbsentSuperLink() throws {
        let r = try cli.run(["flower-node", "--superlink", "http://127.0.0.1:9", "--insecure", "--key", dir + "/k.pem", "--data", data,
                             "--give-up-after", "2"])
        #expect(r.status != 0 && r.stderr.contains("no answer from the SuperLink at http://127.0.0.1:9"))
    }
}
