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

    /// BLAKE3 taken as the input arrives: `update` with each part, then `finalize`; the same digest as `hash` of the
    /// whole input, whatever the parts. Whole chunks are hashed as soon as a later byte shows they are not the last
    /// (sixteen at once where a part holds them), so the digest of a body is ready as its last part arrives and each
    /// part is hashed while it is still in cache. Keeps 32 bytes per 1,024 of input, and at most one chunk of input.
    public struct Hasher: Sendable {
        public let instructionSet: InstructionSet
        /// Chaining values of the chunks hashed so far (32 bytes each), and room for the last.
        private var cvs: [UInt8] = []
        private var chunks = 0
        /// The input not hashed yet: the last chunk so far (at most 1,024 bytes).
        private var pending: [UInt8] = []

        /// `expectedBytes` (the body's declared length, say) sizes the chaining values once.
        public init(instructionSet: InstructionSet = native, expectedBytes: Int = 0) {
            self.instructionSet = instructionSet
            cvs.reserveCapacity(32 * (max(0, min(expectedBytes, 1 << 32)) / 1024 + 2))
            pending.reserveCapacity(1024)
        }

        /// Makes `cvs` hold the chaining values of `count` chunks.
        private mutating func room(forChunks count: Int) {
            if cvs.count < 32 * count { cvs.append(contentsOf: repeatElement(0, count: 32 * count - cvs.count)) }
        }

        /// Hashes `count` whole chunks at `base` as the next chunks of the input.
        private mutating func hashChunks(_ base: UnsafeRawPointer, count: Int) {
            room(forChunks: chunks + count)
            let isa = instructionSet.rawValue, first = UInt64(chunks)
            cvs.withUnsafeMutableBufferPointer { _ = fr_blake3_isa_chunk_cvs(isa, base.assumingMemoryBound(to: UInt8.self), count, first, $0.baseAddress) }
            chunks += count
        }

        /// Adds `bytes` to the input.
        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard instructionSet.runs, !bytes.isEmpty else { return }
            var input = bytes
            if !pending.isEmpty {
                let take = min(1024 - pending.count, input.count)
                pending.append(contentsOf: input.prefix(take))
                input = UnsafeRawBufferPointer(rebasing: input.dropFirst(take))
                guard !input.isEmpty else { return }
                // A full pending chunk with input after it is not the last. (Hashed from a copy of the array value, which
                // is released before `pending` is emptied, so its storage is reused.)
                do {
                    let full = pending
                    full.withUnsafeBytes { hashChunks($0.baseAddress!, count: 1) }
                }
                pending.removeAll(keepingCapacity: true)
            }
            // Every whole chunk but one that could be the last.
            let whole = (input.count - 1) / 1024
            if whole > 0 { hashChunks(input.baseAddress!, count: whole) }
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[(whole * 1024)...]))
        }

        /// The 32-byte digest of everything added (nil where this CPU does not run `instructionSet`).
        public mutating func finalize() -> [UInt8]? {
            guard instructionSet.runs else { return nil }
            room(forChunks: chunks + 1)
            var out = [UInt8](repeating: 0, count: 32)
            let isa = instructionSet.rawValue, total = chunks + 1
            let ran = pending.withUnsafeBufferPointer { p in
                cvs.withUnsafeMutableBufferPointer { c in
                    out.withUnsafeMutableBufferPointer { fr_blake3_isa_finish(isa, p.baseAddress, p.count, total, c.baseAddress, $0.baseAddress) }
                }
            }
            return ran == 1 ? out : nil
        }
    }
}
