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

    /// One changed byte anywhere (first leaf, last leaf, tail) changes the digest; so does one byte more.
    @Test func everyByteCounts() {
        let body = Self.body(100_000, seed: 7)
        let digest = BodyDigest.tree16.digest(Data(body))
        for position in [0, 6_249, 93_750, 99_999] {
            var changed = body
            changed[position] ^= 1
            #expect(BodyDigest.tree16.digest(Data(changed)) != digest, "byte \(position)")
        }
        #expect(BodyDigest.tree16.digest(Data(body + [0])) != digest)
        // The same bytes under the two schemes give different digests.
        #expect(BodyDigest.sha256.digest(Data(body)) != digest)
    }

    @Test func namesAreReadFromAList() {
        #expect(BodyDigest.names(in: "sha256, tree16-sha256") == [.sha256, .tree16])
        #expect(BodyDigest.names(in: "md5,tree16-sha256 ,") == [.tree16])
        #expect(BodyDigest.names(in: nil).isEmpty)
    }
}
