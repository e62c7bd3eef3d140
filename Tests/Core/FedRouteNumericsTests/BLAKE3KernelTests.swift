import FedRouteNumerics
import Testing

@Suite struct BLAKE3KernelTests {
    /// The specification's test input: byte i is i mod 251.
    static func input(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }

    /// Digests of the reference implementation (the `blake3` package on PyPI, which wraps the BLAKE3 team's Rust
    /// crate) for lengths around every boundary the kernel has: within a block, one chunk (the root is a chunk),
    /// whole and partial last chunks, 15, 16 and 17 chunks (one pass of 16 lanes, a pass plus a remainder), an odd
    /// node carried up a level, and a body of the network bench's size. Lengths 0, 1, 1023 … 102400 are also in the
    /// specification's published test vectors.
    static let vectors: [(Int, String)] = [
        (0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
        (1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"),
        (63, "e9bc37a594daad83be9470df7f7b3798297c3d834ce80ba85d6e207627b7db7b"),
        (64, "4eed7141ea4a5cd4b788606bd23f46e212af9cacebacdc7d1f4c6dc7f2511b98"),
        (65, "de1e5fa0be70df6d2be8fffd0e99ceaa8eb6e8c93a63f2d8d1c30ecb6b263dee"),
        (1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"),
        (1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"),
        (1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"),
        (2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"),
        (2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"),
        (3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"),
        (4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"),
        (8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"),
        (15360, "dc62f909be1b86aeffb12594b22fd9756540022f0ac9a050730d6989a036f6b0"),
        (16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"),
        (16385, "1dabe216be2578830263b049de1639f39f05a4da616b9b78c7a5e4e41662fd1f"),
        (17408, "993924ff3dcbd868be9cf3fed98d4538fe579ffccf390a5aa1ddba0f6a20bfed"),
        (31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"),
        (33792, "2e87991ba4054e53240ccea4ee7eb6f6b24c366c8dfe8e52306026918870c229"),
        (65536, "68d647e619a930e7b1082f74f334b0c65a315725569bdc123f0ee11881717bfe"),
        (102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"),
        (1048577, "2f053cd7472cf0cd2f9adaf45c1180255b91b9a865404a63671a0ee5f792ed33"),
        (3200000, "8acfa4a440635767ef136ff355cf0fb20f9eff75982aba68b0742d26bfeada0e"),
    ]

    @Test(arguments: BLAKE3Kernel.InstructionSet.allCases.filter(\.runs))
    func matchesTheReference(_ isa: BLAKE3Kernel.InstructionSet) throws {
        for (length, expected) in Self.vectors {
            let digest = try #require(Self.input(length).withUnsafeBytes { BLAKE3Kernel.hash($0, instructionSet: isa) })
            #expect(Self.hex(digest) == expected, "\(length) bytes")
        }
    }

    /// Each vector path gives the portable path's digest for random lengths and contents, at an unaligned start.
    @Test(arguments: BLAKE3Kernel.InstructionSet.allCases.filter { $0 != .portable && $0.runs })
    func vectorPathIsThePortablePath(_ isa: BLAKE3Kernel.InstructionSet) throws {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<40 {
            let length = Int(rng.next() % 300_000)
            let bytes = (0..<(length + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let (vector, portable) = bytes.withUnsafeBytes { all in
                let body = UnsafeRawBufferPointer(rebasing: all[1...])
                return (BLAKE3Kernel.hash(body, instructionSet: isa), BLAKE3Kernel.hash(body, instructionSet: .portable))
            }
            #expect(vector != nil && vector == portable, "\(length) bytes")
        }
    }

    /// Taken part by part, the digest is the reference's for every vector, with the input cut at chunk boundaries, one
    /// byte either side of them, into single bytes near the start, and with empty parts between.
    @Test(arguments: BLAKE3Kernel.InstructionSet.allCases.filter(\.runs))
    func takenPartByPartMatchesTheReference(_ isa: BLAKE3Kernel.InstructionSet) throws {
        for (length, expected) in Self.vectors where length <= 102_400 || length == 3_200_000 {
            let input = Self.input(length)
            for cuts in [[], [1024], [1023, 1025], [1, 2, 3, 1024, 2048], [16 * 1024], [16 * 1024 + 1, 40_000], [length / 2], [length - 1]] {
                var hasher = BLAKE3Kernel.Hasher(instructionSet: isa, expectedBytes: length)
                var from = 0
                input.withUnsafeBytes { all in
                    for cut in cuts.filter({ $0 > 0 && $0 < length }).sorted() + [length] where cut >= from {
                        hasher.update(UnsafeRawBufferPointer(rebasing: all[from..<cut]))
                        hasher.update(UnsafeRawBufferPointer(rebasing: all[cut..<cut]))
                        from = cut
                    }
                }
                let finished = hasher.finalize()
                let digest = try #require(finished)
                #expect(Self.hex(digest) == expected, "\(length) bytes cut at \(cuts)")
            }
        }
    }

    /// Random part sizes (as a network body arrives) give the one-shot digest.
    @Test func randomPartsGiveTheOneShotDigest() {
        var rng = SeededRandom(seed: 11)
        for _ in 0..<30 {
            let length = Int(rng.next() % 200_000)
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var hasher = BLAKE3Kernel.Hasher()
            var from = 0
            bytes.withUnsafeBytes { all in
                while from < length {
                    let size = min(length - from, Int(rng.next() % 70_000))
                    hasher.update(UnsafeRawBufferPointer(rebasing: all[from..<(from + size)]))
                    from += size
                }
            }
            let finished = hasher.finalize()
            #expect(finished != nil && finished == bytes.withUnsafeBytes { BLAKE3Kernel.hash($0) }, "\(length) bytes")
        }
    }

    /// A path this CPU does not run computes nothing.
    @Test func aPathTheCPUDoesNotRunComputesNothing() {
        for isa in BLAKE3Kernel.InstructionSet.allCases where !isa.runs {
            #expect([UInt8](repeating: 1, count: 5_000).withUnsafeBytes { BLAKE3Kernel.hash($0, instructionSet: isa) } == nil)
        }
        #expect(BLAKE3Kernel.InstructionSet.portable.runs && BLAKE3Kernel.native.runs)
    }

    /// Changing any one byte changes the digest (a sample of positions across chunks and the tree).
    @Test func everyByteCounts() throws {
        var bytes = Self.input(40_000)
        let base = try #require(bytes.withUnsafeBytes { BLAKE3Kernel.hash($0) })
        for position in [0, 1023, 1024, 16_383, 16_384, 39_999] {
            bytes[position] ^= 1
            #expect(bytes.withUnsafeBytes { BLAKE3Kernel.hash($0) } != base, "byte \(position)")
            bytes[position] ^= 1
        }
    }
}
