import Crypto
import FedRouteNumerics
import Testing

@Suite struct SHA256LanesKernelTests {
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// Each of the 16 lanes is swift-crypto's SHA-256 of its message, for messages of 0 to many blocks (one lane
    /// ending where the next starts, and lanes with gaps between them), at offsets that are not aligned.
    @Test(.enabled(if: SHA256LanesKernel.isAvailable, "the CPU has no AVX-512"),
          arguments: [(0, 0), (64, 64), (128, 200), (4096, 4096), (65_536, 70_001), (200_000 / 64 * 64, 200_000 / 64 * 64)])
    func everyLaneIsSHA256(length: Int, stride: Int) throws {
        let buffer = Self.bytes(15 * stride + length + 3, seed: UInt64(length &+ stride))
        let digests = try #require(buffer.withUnsafeBytes { all in
            SHA256LanesKernel.digests(of: UnsafeRawBufferPointer(rebasing: all[3...]), stride: stride, length: length)
        })
        #expect(digests.count == 16 * 32)
        for lane in 0..<16 {
            let start = 3 + lane * stride
            let expected = Array(SHA256.hash(data: buffer[start..<(start + length)]))
            #expect(Array(digests[(lane * 32)..<((lane + 1) * 32)]) == expected, "lane \(lane)")
        }
    }

    /// A length that is not whole blocks, and messages that would run past the buffer, compute nothing.
    @Test func refusesWhatItCannotHash() {
        let buffer = Self.bytes(16 * 128, seed: 1)
        buffer.withUnsafeBytes { all in
            #expect(SHA256LanesKernel.digests(of: all, stride: 128, length: 100) == nil)
            #expect(SHA256LanesKernel.digests(of: all, stride: 128, length: 192) == nil)
            #expect(SHA256LanesKernel.digests(of: all, stride: 129, length: 128) == nil)
            #expect(SHA256LanesKernel.digests(of: all, stride: Int.max / 8, length: 64) == nil)
            #expect((SHA256LanesKernel.digests(of: all, stride: 128, length: 128) != nil) == SHA256LanesKernel.isAvailable)
        }
    }
}
