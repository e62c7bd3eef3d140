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
// where x_i is its update in 2^-24 fixed point. The mask generator of a pair is AES-256-CTR when
// both clients declared it with their keys, ChaCha20 otherwise (the first version's, which older
// clients use). Summed over all listed clients the masks cancel. If
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
        // Branch-free: the remainder's sign is random in an update, so branches would mispredict half the time.
        let up: Int64 = f >= 0.5 ? 1 : 0
        let down: Int64 = f <= -0.5 ? 1 : 0
        return UInt64(bitPattern: t &+ up &- down)
    }
    public static func decode(_ v: UInt64) -> Double { Double(Int64(bitPattern: v)) / scale }

    /// `encode(weight · Double(values[i]))` into `out[i]`, vectorised (`FixedPointKernel`); returns
    /// `values.count`, or the index of the first value whose product is not finite or not under `limit`.
    public static func encode(_ values: UnsafeBufferPointer<Float>, weight: Double, into out: UnsafeMutablePointer<UInt64>,
                              width: Int32? = nil) -> Int {
        FixedPointKernel.encode(values, weight: weight, scale: scale, limit: limit, into: out, width: width)
    }

    /// `Float(decode(v) / denominator)` for every word, over the cores.
    public static func decode(_ words: ArraySlice<UInt64>, dividedBy denominator: Double) -> [Float] {
        let n = words.count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            words.withUnsafeBufferPointer { source in
                guard let s = source.baseAddress, let d = out.baseAddress else { return }
                let src = RowParallel.Shared(s), dst = RowParallel.Shared(d)
                RowParallel.forEachRange(count: n, minimumPerPart: 65_536) { range in
                    for i in range { dst.value[i] = Float(decode(src.value[i]) / denominator) }
                }
            }
            initialized = n
        }
    }
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
        // Masked words are uniformly random: a codec cannot shrink them, so it is not tried on them.
        if try TensorFrames.encode(values, forKey: .values, in: &c, encoder: encoder, compressible: false,
                                   littleEndian: { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }) {
            return
        }
        var data = Data(capacity: values.count * 8)
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        try c.encode(data.base64EncodedString(), forKey: .values)
    }
}

/// How a pair key expands into a mask.
public enum MaskGenerator: String, Sendable, Codable, CaseIterable {
    /// The ChaCha20 keystream with nonce 0 from block counter 1: the protocol's first generator, and
    /// the one used with any client that declares nothing.
    case chacha20
    /// The AES-256-CTR keystream from the counter block 0: half ChaCha20's CPU where the processor
    /// has AES instructions (x86-64 AES-NI, ARMv8 AES), as in TensorFlow Federated's secure aggregation.
    case aes256CTR = "aes256-ctr"

    /// What a client declares unless its policy says otherwise: AES-256-CTR first where the CPU has AES
    /// instructions (without them AES is slower than ChaCha20, and BoringSSL's fallback is not as
    /// fast), then ChaCha20. ChaCha20 is the fallback of every pair whatever is declared.
    public static var preferredHere: [MaskGenerator] { FixedPointKernel.cpuHasAES ? [.aes256CTR, .chacha20] : [.chacha20] }
}

/// A participant's public key for one round.
public struct SecureAggregationParticipant: Sendable, Codable, Equatable {
    public var id: String
    /// Raw X25519 public key (32 bytes).
    public var publicKey: Data
    /// The mask generators the client declared with its key (nil: a client from before the
    /// declaration, which expands every mask with ChaCha20). The coordinator relays only the names it
    /// knows; any other name is ignored by `maskGenerator(with:)`.
    public var masks: [String]?

    public init(id: String, publicKey: Data, masks: [String]? = nil) {
        self.id = id
        self.publicKey = publicKey
        self.masks = masks
    }

    /// The generator of the mask between this participant and `other`: AES-256-CTR when both
    /// declared it, ChaCha20 otherwise. Both sides of a pair and the coordinator compute the same.
    public func maskGenerator(with other: SecureAggregationParticipant) -> MaskGenerator {
        let aes = MaskGenerator.aes256CTR.rawValue
        return masks?.contains(aes) == true && other.masks?.contains(aes) == true ? .aes256CTR : .chacha20
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

    /// Masks `values` (fixed-point words) in place for the listed participants, which must include this
    /// client. (In place: a copy of the plain vector would be one more pass over megabytes per round.)
    public func mask(_ values: inout [UInt64], participants: [SecureAggregationParticipant]) throws {
        guard let me = participants.first(where: { $0.id == clientID && $0.publicKey == publicKey }) else {
            throw FederationError.protocolViolation(client: clientID, "the round's participant list does not carry this client's key")
        }
        let masks = try participants.filter { $0.id != clientID }.map {
            SecureAggregation.PairMask(key: try pairKey(with: $0), generator: me.maskGenerator(with: $0), adding: clientID < $0.id)
        }
        try SecureAggregation.applyMasks(masks, to: &values)
    }
}

/// Mask expansion (both sides: a client masks its vector, the coordinator removes dropped clients' masks)
/// and the coordinator's sum of the masked vectors.
public enum SecureAggregation {
    /// One pair's mask, to add or to subtract.
    public struct PairMask: Sendable {
        public var key: Data
        public var generator: MaskGenerator
        public var adding: Bool

        public init(key: Data, generator: MaskGenerator, adding: Bool) {
            self.key = key
            self.generator = generator
            self.adding = adding
        }
    }

    /// The mask a pair key expands to, read as little-endian 64-bit words: for ChaCha20 the keystream
    /// with nonce 0 from block counter 1 (every key is used once), the bytes ChaCha20-Poly1305 encrypts
    /// a message with, which is what the first version of the protocol used (its tag unused); for
    /// AES-256-CTR the keystream from the all-zero counter block.
    public static func mask(pairKey: Data, count: Int, generator: MaskGenerator = .chacha20) throws -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        try applyMasks([PairMask(key: pairKey, generator: generator, adding: true)], to: &words)
        return words
    }

    /// Keystream bytes generated per call (and per thread): 1,024 ChaCha20 blocks.
    static let keystreamChunkWords = 8 * 1_024

    /// Adds (or subtracts) the mask of `pairKey` (ChaCha20 unless `generator` says otherwise) to `values`
    /// in place (mod 2^64).
    public static func applyMask(pairKey: Data, to values: inout [UInt64], adding: Bool, generator: MaskGenerator = .chacha20) throws {
        try applyMasks([PairMask(key: pairKey, generator: generator, adding: adding)], to: &values)
    }

    /// Adds (or subtracts) every pair's mask to `values` in place (mod 2^64), without building a mask
    /// as an array: the keystreams are produced in 64 kB chunks, each from its own block counter, so
    /// the chunks are independent and split over the cores; each chunk of `values` takes all the
    /// pairs' keystreams while it is in cache.
    public static func applyMasks(_ masks: [PairMask], to values: inout [UInt64]) throws {
        try applyMasks(masks, to: &values, kernel: AESCTRMaskKernel.isAvailable)
    }

    /// `applyMasks(_:to:)`; with `kernel`, AES masks go through `AESCTRMaskKernel` (generated and added in one
    /// pass, the stream never in memory; it must run here), else through swift-crypto's `AES._CTR` and an add.
    /// Both give the same words (tested); `fedroute-bench --only masks` times one against the other.
    public static func applyMasks(_ masks: [PairMask], to values: inout [UInt64], kernel: Bool) throws {
        let count = values.count
        guard count > 0, !masks.isEmpty else { return }
        // One ChaCha20 block is 8 words and its counter is 32 bits, from 1; one AES block is 2 words,
        // its counter (the block's last 32 bits) from 0.
        guard (count + 7) / 8 < Int(UInt32.max), (count + 1) / 2 <= Int(UInt32.max) else {
            throw FederationError.invalidConfiguration("secure aggregation: \(count) values exceed the mask generator's counter range")
        }
        let keys = masks.map { SymmetricKey(data: $0.key) }
        guard keys.allSatisfy({ $0.bitCount == 256 }) else {
            throw FederationError.invalidConfiguration("secure aggregation: a pair key is not 32 bytes")
        }
        let chachaNonce = try Insecure.ChaCha20CTR.Nonce(data: Data(count: 12))
        let chunks = (count + keystreamChunkWords - 1) / keystreamChunkWords
        let streamed = masks.contains { $0.generator == .chacha20 || !kernel }
        let failure = Mutex<(any Error)?>(nil)
        values.withUnsafeMutableBufferPointer { buffer in
            // The chunks touch disjoint words.
            let out = RowParallel.Shared(buffer.baseAddress!)
            RowParallel.forEachRange(count: chunks, minimumPerPart: 8) { range in
                // The bytes swift-crypto's generators encrypt (the kernel needs none).
                let zeros = Data(count: streamed ? keystreamChunkWords * 8 : 0)
                do {
                    for chunk in range {
                        let start = chunk * keystreamChunkWords
                        let n = min(keystreamChunkWords, count - start)
                        let p = out.value + start
                        for (mask, key) in zip(masks, keys) {
                            let stream: Data
                            switch mask.generator {
                            case .chacha20:
                                let counter = try Insecure.ChaCha20CTR.Counter(offset: UInt32(1 + start / 8))
                                stream = try Insecure.ChaCha20CTR.encrypt(zeros.prefix(n * 8), using: key, counter: counter, nonce: chachaNonce)
                            case .aes256CTR where kernel:
                                let done = mask.key.withUnsafeBytes { AESCTRMaskKernel.add(key: $0, firstBlock: UInt32(start / 2), to: p, count: n, subtracting: !mask.adding) }
                                guard done else { throw FederationError.invalidConfiguration("secure aggregation: the AES mask kernel does not run here") }
                                continue
                            case .aes256CTR:
                                // The counter block: 96 zero bits, then the block index, big-endian.
                                let block = UInt32(start / 2)
                                let nonce = try AES._CTR.Nonce(nonceBytes: [UInt8](repeating: 0, count: 12) + withUnsafeBytes(of: block.bigEndian) { Array($0) })
                                stream = try AES._CTR.encrypt(zeros.prefix(n * 8), using: key, nonce: nonce)
                            }
                            stream.withUnsafeBytes { raw in add(raw.baseAddress!, to: p, count: n, subtracting: !mask.adding) }
                        }
                    }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// p[i] ± the little-endian word i of `stream` (mod 2^64), four words at a time.
    @inline(__always)
    static func add(_ stream: UnsafeRawPointer, to p: UnsafeMutablePointer<UInt64>, count n: Int, subtracting: Bool) {
        var i = 0
        #if _endian(little)
        let q = UnsafeMutableRawPointer(p)
        if subtracting {
            while i &+ 4 <= n {
                q.storeBytes(of: q.loadUnaligned(fromByteOffset: i &* 8, as: SIMD4<UInt64>.self) &- stream.loadUnaligned(fromByteOffset: i &* 8, as: SIMD4<UInt64>.self),
                             toByteOffset: i &* 8, as: SIMD4<UInt64>.self)
                i &+= 4
            }
        } else {
            while i &+ 4 <= n {
                q.storeBytes(of: q.loadUnaligned(fromByteOffset: i &* 8, as: SIMD4<UInt64>.self) &+ stream.loadUnaligned(fromByteOffset: i &* 8, as: SIMD4<UInt64>.self),
                             toByteOffset: i &* 8, as: SIMD4<UInt64>.self)
                i &+= 4
            }
        }
        #endif
        while i < n {
            let m = UInt64(littleEndian: stream.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))
            p[i] = subtracting ? p[i] &- m : p[i] &+ m
            i &+= 1
        }
    }

    /// Σ masked vectors (mod 2^64), with the masks between each survivor and each dropped client removed:
    /// `accumulate` over `masked`, then `removeDanglingMasks`.
    ///
    /// `revealed[survivor][dropped]` is the pair key the survivor revealed for that dropped client;
    /// `participants` is the round's list, whose declarations say which generator each pair used.
    public static func unmaskedSum(masked: [(id: String, values: [UInt64])], dropped: [String],
                                   revealed: [String: [String: Data]], participants: [SecureAggregationParticipant]) throws -> [UInt64] {
        guard let n = masked.first?.values.count else { return [] }
        if let (id, v) = masked.first(where: { $0.values.count != n }) {
            throw FederationError.invalidReply(client: id, "masked vector of \(v.count) values, expected \(n)")
        }
        var sum = masked[0].values
        for (_, v) in masked.dropFirst() { accumulate(v, into: &sum) }
        try removeDanglingMasks(from: &sum, survivors: masked.map(\.id), dropped: dropped, revealed: revealed, participants: participants)
        return sum
    }

    /// `sum += values` (mod 2^64), over the cores. The coordinator folds each masked vector into the round's
    /// sum as it arrives, so it holds one vector however many clients a round samples.
    public static func accumulate(_ values: [UInt64], into sum: inout [UInt64]) {
        precondition(values.count == sum.count, "SecureAggregation.accumulate: \(values.count) words into a sum of \(sum.count)")
        let n = sum.count
        values.withUnsafeBufferPointer { x in
            sum.withUnsafeMutableBufferPointer { total in
                guard let s = x.baseAddress, let d = total.baseAddress else { return }
                let pointers = RowParallel.Shared((s, d))
                RowParallel.forEachRange(count: n, minimumPerPart: 262_144) { range in
                    let (from, to) = (UnsafeRawPointer(pointers.value.0), UnsafeMutableRawPointer(pointers.value.1))
                    var i = range.lowerBound
                    while i &+ 4 <= range.upperBound {
                        to.storeBytes(of: to.loadUnaligned(fromByteOffset: i &* 8, as: SIMD4<UInt64>.self) &+ from.loadUnaligned(fromByteOffset: i &* 8, as: SIMD4<UInt64>.self),
                                      toByteOffset: i &* 8, as: SIMD4<UInt64>.self)
                        i &+= 4
                    }
                    while i < range.upperBound {
                        pointers.value.1[i] &+= pointers.value.0[i]
                        i &+= 1
                    }
                }
            }
        }
    }

    /// Removes from `sum` (the survivors' masked vectors added up) the masks between each survivor and each
    /// dropped client, from the pair keys the survivors revealed (`revealed[survivor][dropped]`); the round's
    /// `participants` list says which generator each pair used. Nothing to do when no client dropped.
    public static func removeDanglingMasks(from sum: inout [UInt64], survivors: [String], dropped: [String],
                                           revealed: [String: [String: Data]], participants: [SecureAggregationParticipant]) throws {
        guard !dropped.isEmpty else { return }
        let listed = Dictionary(participants.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var undo: [PairMask] = []
        for id in survivors {
            for d in dropped {
                guard let key = revealed[id]?[d] else {
                    throw FederationError.invalidReply(client: id, "did not reveal its pair key with dropped client \(d)")
                }
                guard let survivor = listed[id], let gone = listed[d] else {
                    throw FederationError.invalidReply(client: id, "\(id) or \(d) is not on the round's participant list")
                }
                // The survivor added +m if its id sorts first, −m otherwise; undo that.
                undo.append(PairMask(key: key, generator: survivor.maskGenerator(with: gone), adding: id >= d))
            }
        }
        try applyMasks(undo, to: &sum)
    }
}
