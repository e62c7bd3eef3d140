import Crypto
@testable import FedRouteFederationHTTP
import FedRouteNumerics
import Foundation
import Testing

@Suite struct BodyDigestTests {
    /// The tree digest as its documentation defines it, from swift-crypto alone.
    static func reference(_ body: [UInt8]) -> [UInt8] {
        let n = body.count, s = n / 1024 * 64
        var input = Array("fedroute-tree16-sha256\n".utf8)
        withUnsafeBytes(of: UInt64(n).bigEndian) { input += $0 }
        withUnsafeBytes(of: UInt64(s).bigEndian) { input += $0 }
        if s > 0 { for i in 0..<16 { input += SHA256.hash(data: body[(i * s)..<((i + 1) * s)]) } }
        input += SHA256.hash(data: body[(16 * s)...])
        return Array(SHA256.hash(data: input))
    }

    static func body(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// Bodies without leaves (under 1 kB), at the first leaf size, with a tail, and megabytes long; with the lanes
    /// kernel where the CPU has it, swift-crypto otherwise.
    @Test(arguments: [0, 1, 1023, 1024, 1025, 2047, 70_000, 3_200_123])
    func treeDigestIsItsDefinition(count: Int) {
        let body = Self.body(count, seed: UInt64(count))
        #expect(Array(BodyDigest.tree16.digest(Data(body))) == Self.reference(body))
        // The leaves one by one (what runs without AVX-512) give the same digest.
        #expect(Array(body.withUnsafeBytes { BodyDigest.tree($0, lanes: false) }) == Self.reference(body))
        #expect(Array(BodyDigest.sha256.digest(Data(body))) == Array(SHA256.hash(data: body)))
    }

    /// One changed byte anywhere (tree16: first leaf, last leaf, tail; BLAKE3: first and last byte of a chunk, the
    /// first byte past 16 chunks, the last byte) changes the digest; so does one byte more; and the same bytes under
    /// another scheme give another digest.
    @Test(arguments: [(BodyDigest.tree16, [0, 6_249, 93_750, 99_999]), (.blake3, [0, 1_023, 16_384, 99_999])])
    func everyByteCounts(scheme: BodyDigest, positions: [Int]) {
        let body = Self.body(100_000, seed: 7)
        let digest = scheme.digest(Data(body))
        for position in positions {
            var changed = body
            changed[position] ^= 1
            #expect(scheme.digest(Data(changed)) != digest, "byte \(position)")
        }
        #expect(scheme.digest(Data(body + [0])) != digest)
        for other in BodyDigest.allCases where other != scheme { #expect(other.digest(Data(body)) != digest, "\(other)") }
    }

    /// The BLAKE3 scheme as its documentation defines it: SHA-256("fedroute-blake3\n" ‖ BLAKE3(body)). Expected values
    /// computed with Python's hashlib and the reference `blake3` package; both BLAKE3 paths give them.
    @Test func blake3DigestIsItsDefinition() {
        func hex(_ d: some Sequence<UInt8>) -> String { d.map { String(format: "%02x", $0) }.joined() }
        let specimen = (0..<5_000).map { UInt8($0 % 251) }
        for isa in BLAKE3Kernel.InstructionSet.allCases where isa.runs {
            #expect(hex(specimen.withUnsafeBytes { BodyDigest.blake3($0, instructionSet: isa) }) == "abb5b8cd0cd57aebdd93914e3b6d430ed3ff2c62f1d7fd2e1af424865256684b")
            #expect(hex([UInt8]().withUnsafeBytes { BodyDigest.blake3($0, instructionSet: isa) }) == "5c0aaf3b55da1495d07c5caea77dd778be0359ecef42ac753413ea4eafdd2f08")
        }
        #expect(hex(BodyDigest.blake3.digest(Data(specimen))) == "abb5b8cd0cd57aebdd93914e3b6d430ed3ff2c62f1d7fd2e1af424865256684b")
    }

    /// A client prefers BLAKE3 where one of its vector paths runs, else the tree digest.
    @Test func theClientsDefaultFollowsTheCPU() {
        #expect(BodyDigest.preferred == (BLAKE3Kernel.native == .portable ? .tree16 : .blake3))
        #expect(FederationClientRunner.Settings(server: "https://x", tls: nil).bodyDigest == BodyDigest.preferred)
    }

    /// A client takes what it wants when the coordinator lists it, the tree digest from a coordinator that lists only
    /// that, and SHA-256 otherwise or when it wants SHA-256.
    @Test func clientsNegotiateWhatTheCoordinatorReads() {
        #expect(BodyDigest.negotiate(wanted: .blake3, listed: [.sha256, .tree16, .blake3]) == .blake3)
        #expect(BodyDigest.negotiate(wanted: .blake3, listed: [.sha256, .tree16]) == .tree16)
        #expect(BodyDigest.negotiate(wanted: .blake3, listed: []) == .sha256)
        #expect(BodyDigest.negotiate(wanted: .tree16, listed: [.sha256, .blake3]) == .sha256)
        #expect(BodyDigest.negotiate(wanted: .sha256, listed: BodyDigest.allCases) == .sha256)
    }

    @Test func namesAreReadFromAList() {
        #expect(BodyDigest.names(in: "sha256, tree16-sha256, blake3") == [.sha256, .tree16, .blake3])
        #expect(BodyDigest.names(in: "md5,tree16-sha256 ,") == [.tree16])
        #expect(BodyDigest.names(in: nil).isEmpty)
    }
}
