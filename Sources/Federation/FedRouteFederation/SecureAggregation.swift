import Crypto
import CryptoExtras
import Foundation
import Synchronization
import FedRouteNumerics

// Secure aggregation by pairwise additive masking (Bonawitz et al., 2017, without the double mask).
//
// Per round every sampled client makes a fresh X25519 key pair and sends the public half. The
// coordinator hands the list of public keys to the clients that answered. Client i derives, for
// every other listed client j, a pair key k_ij = HKDF-SHA256(X25519(sk_i, pk_j), round, ids) that j
// derives too, expands it with ChaCha20 into a mask m_ij, and sends
//     y_i = x_i + Σ_{j listed, id_j > id_i} m_ij − Σ_{j listed, id_j < id_i} m_ij   (mod 2^64),
// where x_i is its update in 2^-24 fixed point. Summed over all listed clients the masks cancel. If
// some listed clients never send y_j, the survivors reveal k_ij for exactly those j (never for each
// other), and the coordinator removes the dangling masks. Any y arriving after that is refused.
//
// Threat model: an honest-but-curious coordinator that follows this protocol sees each y_i, which
// is uniformly distributed given x_i, and the sum. Without Bonawitz's second (self) mask and Shamir
// shares, a coordinator that lies about who dropped out could unmask a slow client; see
// docs/FEDERATION.md.

/// Fixed-point ring arithmetic of masked vectors.
public enum FixedPoint {
    /// Fractional bits: values are stored as round(x·2^24) in Z/2^64.
    public static let fractionBits = 24
    static let scale = Double(1 << fractionBits)
    /// Largest |x| that encodes without wrapping.
    public static let limit = Double(Int64.max) / scale / 1024

    /// round(x·2^24) (halves away from zero, as `rounded()`) in Z/2^64, for finite |x| < `limit`.
    /// Rounds by truncating and comparing the exact remainder instead of calling libm's `round`
    /// (baseline x86-64 has no rounding instruction; the call was a quarter of masking an update).
    @inline(__always)
    public static func encode(_ x: Double) -> UInt64 {
        let y = x * scale
        let t = Int64(y)
        // Exact: t is y without its fraction, and |y| < 2^53.
        let f = y - Double(t)
        return UInt64(bitPattern: f >= 0.5 ? t &+ 1 : (f <= -0.5 ? t &- 1 : t))
    }
    public static func decode(_ v: UInt64) -> Double { Double(Int64(bitPattern: v)) / scale }
}

/// One client's masked contribution: the update, its weight and weighted loss, in the ring.
public struct MaskedUpdate: Sendable, Codable, Equatable {
    public var round: Int
    /// `values.count` = parameters + 2: w·Δ (every tensor, flattened in order), then w, then w·loss.
    public var values: [UInt64]

    public init(round: Int, values: [UInt64]) {
        self.round = round
        self.values = values
    }

    enum CodingKeys: String, CodingKey { case round, values }

    /// `values` travel as base64 of little-endian 64-bit words, or as a blob of a tensor frame.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        round = try c.decode(Int.self, forKey: .round)
        if let words = try TensorFrames.decode(forKey: .values, in: c, decoder: decoder, width: 8, what: "64-bit words", {
            UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: $1, as: UInt64.self))
        }) {
            values = words
            return
        }
        guard let data = Data(base64Encoded: try c.decode(String.self, forKey: .values)), data.count % 8 == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .values, in: c, debugDescription: "not base64 of 64-bit words")
        }
        values = data.withUnsafeBytes { raw in
            (0..<(data.count / 8)).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(round, forKey: .round)
        if try TensorFrames.encode(values, forKey: .values, in: &c, encoder: encoder, littleEndian: { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }) {
            return
        }
        var data = Data(capacity: values.count * 8)
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        try c.encode(data.base64EncodedString(), forKey: .values)
    }
}

/// A participant's public key for one round.
public struct SecureAggregationParticipant: Sendable, Codable, Equatable {
    public var id: String
    /// Raw X25519 public key (32 bytes).
    public var publicKey: Data

    public init(id: String, publicKey: Data) {
        self.id = id
        self.publicKey = publicKey
    }
}

/// Key material and masks of one client in one round.
public struct SecureAggregationSession: Sendable {
    public let round: Int
    public let clientID: String
    let privateKey: Curve25519.KeyAgreement.PrivateKey

    public init(round: Int, clientID: String) {
        self.round = round
        self.clientID = clientID
        privateKey = Curve25519.KeyAgreement.PrivateKey()
    }

    public var publicKey: Data { privateKey.publicKey.rawRepresentation }

    /// The pair key shared with `other` (both sides derive the same bytes).
    public func pairKey(with other: SecureAggregationParticipant) throws -> Data {
        let theirs: Curve25519.KeyAgreement.PublicKey
        do { theirs = try .init(rawRepresentation: other.publicKey) } catch {
            throw FederationError.protocolViolation(client: clientID, "participant \(other.id) has an invalid X25519 public key")
        }
        let shared = try privateKey.sharedSecretFromKeyAgreement(with: theirs)
        let (a, b) = clientID < other.id ? (clientID, other.id) : (other.id, clientID)
        let key = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: Data("fedroute-secagg-v1".utf8),
                                                 sharedInfo: Data("round \(round)|\(a)|\(b)".utf8), outputByteCount: 32)
        return key.withUnsafeBytes { Data($0) }
    }

    /// Masks `plain` (fixed-point values) for the listed participants, which must include this client.
    public func mask(_ plain: [UInt64], participants: [SecureAggregationParticipant]) throws -> [UInt64] {
        guard participants.contains(where: { $0.id == clientID && $0.publicKey == publicKey }) else {
            throw FederationError.protocolViolation(client: clientID, "the round's participant list does not carry this client's key")
        }
        var out = plain
        for p in participants where p.id != clientID {
            try SecureAggregation.applyMask(pairKey: pairKey(with: p), to: &out, adding: clientID < p.id)
        }
        return out
    }
}

/// The coordinator's side: sums masked vectors and removes the masks of clients that dropped out.
public enum SecureAggregation {
    /// The mask a pair key expands to: the ChaCha20 keystream with nonce 0 from block counter 1 (every
    /// key is used once), read as little-endian 64-bit words. These are the bytes ChaCha20-Poly1305
    /// encrypts a message with, which is what the first version of the protocol used (its tag unused).
    public static func mask(pairKey: Data, count: Int) throws -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        try applyMask(pairKey: pairKey, to: &words, adding: true)
        return words
    }

    /// Keystream bytes generated per call (and per thread): 1,024 ChaCha20 blocks.
    static let keystreamChunkWords = 8 * 1_024

    /// Adds (or subtracts) the mask of `pairKey` to `values` in place (mod 2^64), without building the
    /// mask as an array: the keystream is produced in 64 kB chunks, each from its own block counter, so
    /// the chunks are independent and split over the cores.
    public static func applyMask(pairKey: Data, to values: inout [UInt64], adding: Bool) throws {
        let count = values.count
        guard count > 0 else { return }
        // One ChaCha20 block is 8 words; the counter is 32 bits and starts at 1.
        let blocks = (count + 7) / 8
        guard blocks < Int(UInt32.max) else {
            throw FederationError.invalidConfiguration("secure aggregation: \(count) values exceed the ChaCha20 counter's range")
        }
        let key = SymmetricKey(data: pairKey)
        let nonce = try Insecure.ChaCha20CTR.Nonce(data: Data(count: 12))
        let chunks = (count + keystreamChunkWords - 1) / keystreamChunkWords
        let failure = Mutex<(any Error)?>(nil)
        values.withUnsafeMutableBufferPointer { buffer in
            // The chunks touch disjoint words.
            let out = RowParallel.Shared(buffer.baseAddress!)
            RowParallel.forEachRange(count: chunks, minimumPerPart: 8) { range in
                let zeros = Data(count: keystreamChunkWords * 8)
                for chunk in range {
                    let start = chunk * keystreamChunkWords
                    let n = min(keystreamChunkWords, count - start)
                    do {
                        let counter = try Insecure.ChaCha20CTR.Counter(offset: UInt32(1 + start / 8))
                        let stream = try Insecure.ChaCha20CTR.encrypt(zeros.prefix(n * 8), using: key, counter: counter, nonce: nonce)
                        stream.withUnsafeBytes { raw in
                            let p = out.value + start
                            if adding {
                                for i in 0..<n { p[i] &+= UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
                            } else {
                                for i in 0..<n { p[i] &-= UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
                            }
                        }
                    } catch {
                        failure.withLock { $0 = $0 ?? error }
                        return
                    }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Σ masked vectors (mod 2^64), with the masks between each survivor and each dropped client removed.
    ///
    /// `revealed[survivor][dropped]` is the pair key the survivor revealed for that dropped client.
    public static func unmaskedSum(masked: [(id: String, values: [UInt64])], dropped: [String],
                                   revealed: [String: [String: Data]]) throws -> [UInt64] {
        guard let n = masked.first?.values.count else { return [] }
        var sum = [UInt64](repeating: 0, count: n)
        for (id, v) in masked {
            guard v.count == n else { throw FederationError.invalidReply(client: id, "masked vector of \(v.count) values, expected \(n)") }
            for i in 0..<n { sum[i] &+= v[i] }
        }
        for (id, _) in masked {
            for d in dropped {
                guard let key = revealed[id]?[d] else {
                    throw FederationError.invalidReply(client: id, "did not reveal its pair key with dropped client \(d)")
                }
                // The survivor added +m if its id sorts first, −m otherwise; undo that.
                try applyMask(pairKey: key, to: &sum, adding: id >= d)
            }
        }
        return sum
    }
}
