import CFedRouteKernels

/// BLAKE3 as its specification defines it (unkeyed, 32-byte digest): `fr_blake3_isa_hash`, sixteen 1,024-byte
/// chunks at once with AVX-512 where the CPU has it, eight with AVX2, else the portable compression one block at a
/// time. All paths give the same digest; each is tested against the specification's published digests and the
/// vector paths against the portable one. The federation's `blake3` body digest (`FedRouteFederationHTTP.BodyDigest`) uses it.
public enum BLAKE3Kernel {
    /// How the digest is computed.
    public enum InstructionSet: Int32, Sendable, CaseIterable {
        /// One compression at a time, in C without vector intrinsics: runs everywhere.
        case portable = 0
        /// Eight chunks (and eight parent nodes) per pass in AVX2 registers.
        case avx2 = 1
        /// Sixteen chunks (and sixteen parent nodes) per pass in AVX-512 registers.
        case avx512 = 2

        /// Whether this CPU runs the path.
        public var runs: Bool { rawValue <= BLAKE3Kernel.native.rawValue }
    }

    /// The fastest path this CPU runs.
    public static let native = InstructionSet(rawValue: fr_blake3_isa()) ?? .portable

    /// The 32-byte BLAKE3 digest of `bytes`, by `instructionSet` (nil where this CPU does not run it).
    public static func hash(_ bytes: UnsafeRawBufferPointer, instructionSet: InstructionSet = native) -> [UInt8]? {
        let chunks = max(1, (bytes.count + 1023) / 1024)
        var scratch = [UInt8](repeating: 0, count: 32 * chunks)
        var out = [UInt8](repeating: 0, count: 32)
        let ran = scratch.withUnsafeMutableBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                fr_blake3_isa_hash(instructionSet.rawValue, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, s.baseAddress!, o.baseAddress!)
            }
        }
        return ran == 1 ? out : nil
    }
}
