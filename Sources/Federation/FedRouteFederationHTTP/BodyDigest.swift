import Crypto
import FedRouteNumerics
import Foundation

/// What a signed request's body is digested with before its signature covers it, named by the request's
/// `x-fedroute-digest` header (absent: `sha256`, what every coordinator reads).
///
/// Both cover every byte of the body exactly. `tree16` is the same SHA-256 arranged so that most of the body is
/// hashed as 16 independent messages, which `SHA256LanesKernel` hashes in one pass (about 1.8× the speed of one
/// SHA-256 stream on AVX-512): for a body of n bytes, leaf size s = 64·⌊n / 1024⌋, leaves L₀…L₁₅ the 16 chunks of s
/// bytes from the start and T the tail of n − 16s (< 1024) bytes,
///
///     digest = SHA-256("fedroute-tree16-sha256\n" ‖ BE64(n) ‖ BE64(s) ‖ [SHA-256(L₀) ‖ … ‖ SHA-256(L₁₅), when s > 0] ‖ SHA-256(T))
///
/// A collision of two bodies under it is a SHA-256 collision (the lengths fix where every leaf starts).
///
/// `blake3` hashes the body with BLAKE3 (`BLAKE3Kernel`: 16 chunks at once with AVX-512, about 1.6× tree16's
/// speed there; 8 with AVX2) and binds that into the SHA-256 value the signature code carries:
///
///     digest = SHA-256("fedroute-blake3\n" ‖ BLAKE3(body))
///
/// A collision under it is a BLAKE3 or a SHA-256 collision.
///
/// The signed message names the scheme (`RequestSignature.message`), so a signature over one scheme's digest is
/// never checked against another's. A client uses `tree16` or `blake3` once the coordinator has listed it in
/// `x-fedroute-digests`; older coordinators list neither (or only `tree16`), and older clients keep sending what
/// they sent.
public enum BodyDigest: String, Sendable, CaseIterable {
    case sha256
    case tree16 = "tree16-sha256"
    case blake3

    /// What a client signs with by default: `blake3` where this CPU runs one of its vector paths (AVX-512 or AVX2),
    /// else `tree16` (whose leaves fall back to swift-crypto's SHA-256, with SHA-NI where the CPU has it, faster than
    /// BLAKE3's portable path).
    public static let preferred: BodyDigest = BLAKE3Kernel.native == .portable ? .tree16 : .blake3

    /// Bodies smaller than this are hashed as their tail alone (no leaves).
    static let leafUnit = 1024

    /// The digest of `body` under this scheme.
    public func digest(_ body: UnsafeRawBufferPointer) -> SHA256.Digest {
        switch self {
        case .sha256: return SHA256.hash(data: body)
        case .tree16: return Self.tree(body, lanes: true)
        case .blake3: return Self.blake3(body, instructionSet: BLAKE3Kernel.native)
        }
    }

    /// The digest of `body` under this scheme.
    public func digest(_ body: Data) -> SHA256.Digest { body.withUnsafeBytes { digest($0) } }

    /// The tree digest; its 16 leaves with `SHA256LanesKernel` where it runs and `lanes` allows, else one by one.
    static func tree(_ body: UnsafeRawBufferPointer, lanes: Bool) -> SHA256.Digest {
        let n = body.count
        let leaf = n / leafUnit * 64
        var root = SHA256()
        root.update(data: Data("fedroute-tree16-sha256\n".utf8))
        withUnsafeBytes(of: UInt64(n).bigEndian) { root.update(bufferPointer: $0) }
        withUnsafeBytes(of: UInt64(leaf).bigEndian) { root.update(bufferPointer: $0) }
        if leaf > 0 {
            if lanes, let leaves = SHA256LanesKernel.digests(of: body, stride: leaf, length: leaf) {
                leaves.withUnsafeBytes { root.update(bufferPointer: $0) }
            } else {
                for i in 0..<16 {
                    SHA256.hash(data: UnsafeRawBufferPointer(rebasing: body[(i * leaf)..<((i + 1) * leaf)])).withUnsafeBytes { root.update(bufferPointer: $0) }
                }
            }
        }
        SHA256.hash(data: UnsafeRawBufferPointer(rebasing: body[(16 * leaf)...])).withUnsafeBytes { root.update(bufferPointer: $0) }
        return root.finalize()
    }

    /// The `blake3` digest, its BLAKE3 computed by `instructionSet`.
    static func blake3(_ body: UnsafeRawBufferPointer, instructionSet: BLAKE3Kernel.InstructionSet) -> SHA256.Digest {
        // The portable path runs on every CPU, so there is always a digest.
        blake3(inner: BLAKE3Kernel.hash(body, instructionSet: instructionSet) ?? BLAKE3Kernel.hash(body, instructionSet: .portable)!)
    }

    /// The `blake3` digest of a body whose BLAKE3 is `inner` (taken part by part with `BLAKE3Kernel.Hasher`, say).
    static func blake3(inner: [UInt8]) -> SHA256.Digest {
        var outer = SHA256()
        outer.update(data: Data("fedroute-blake3\n".utf8))
        inner.withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }

    /// What a client that would sign `wanted` signs with a coordinator that lists `listed`: `wanted` when listed,
    /// else the tree digest when listed (a coordinator from before BLAKE3), else SHA-256, which every coordinator
    /// reads. `wanted == .sha256` keeps SHA-256.
    public static func negotiate(wanted: BodyDigest, listed: [BodyDigest]) -> BodyDigest {
        guard wanted != .sha256 else { return .sha256 }
        if listed.contains(wanted) { return wanted }
        return listed.contains(.tree16) ? .tree16 : .sha256
    }

    /// The schemes a list such as `x-fedroute-digests: sha256, tree16-sha256` names (unknown names are skipped).
    public static func names(in header: String?) -> [BodyDigest] {
        (header ?? "").split(separator: ",").compactMap { BodyDigest(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
    }
}
