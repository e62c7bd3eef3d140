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
// where x_i is its update in 2^-24 fixed point; or, in a round encoded by `SecureWords32`, the same mod 2^32 with
// x_i its share-weighted update in 2^-f fixed point and m_ij the same keystream read in 32-bit words. The mask generator of a pair is AES-256-CTR when
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
    @inline(__always)
    public static func encode(_ x: Double) -> UInt64 { UInt64(bitPattern: round(x * scale)) }

    /// y rounded to an integer, halves away from zero (as `rounded()`), for finite |y| < 2^53.
    /// Rounds by truncating and comparing the exact remainder instead of calling libm's `round`
    /// (baseline x86-64 has no rounding instruction; the call was a quarter of masking an update).
    @inline(__always)
    public static func round(_ y: Double) -> Int64 {
        let t = Int64(y)
        // Exact: t is y without its fraction, and |y| < 2^53.
        let f = y - Double(t)
        // Branch-free: the remainder's sign is random in an update, so branches would mispredict half the time.
        let up: Int64 = f >= 0.5 ? 1 : 0
        let down: Int64 = f <= -0.5 ? 1 : 0
        return t &+ up &- down
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
        decode(words, scale: scale, dividedBy: denominator)
    }

    /// `Float(v.signedValue / scale / denominator)` for every word (of either ring), over the cores.
    public static func decode<W: RingWord>(_ words: ArraySlice<W>, scale: Double, dividedBy denominator: Double) -> [Float] {
        let n = words.count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            words.withUnsafeBufferPointer { source in
                guard let s = source.baseAddress, let d = out.baseAddress else { return }
                let src = RowParallel.Shared(s), dst = RowParallel.Shared(d)
                RowParallel.forEachRange(count: n, minimumPerPart: 65_536) { range in
                    for i in range { dst.value[i] = Float(src.value[i].signedValue / scale / denominator) }
                }
            }
            initialized = n
        }
    }
}

/// One client's masked contribution: the update, its weight and weighted loss, in the ring.
public struct MaskedUpdate: Sendable, Codable, Equatable {
    public var round: Int
    /// The 64-bit ring's words: `values.count` = parameters + 2: w·Δ (every tensor, flattened in order), then w,
    /// then w·loss. Empty in a 32-bit round.
    public var values: [UInt64]
    /// The 32-bit ring's words in a round encoded by `SecureWords32`: r·Δ, r, r·loss; nil in a 64-bit round.
    public var values32: [UInt32]?

    public init(round: Int, values: [UInt64]) {
        self.round = round
        self.values = values
        values32 = nil
    }

    public init(round: Int, values32: [UInt32]) {
        self.round = round
        values = []
        self.values32 = values32
    }

    /// Words in whichever ring the update is in.
    public var wordCount: Int { values32?.count ?? values.count }

    enum CodingKeys: String, CodingKey { case round, values, values32 }

    /// `values` travel as base64 of little-endian 64-bit words, or as a blob of a tensor frame; `values32` (when
    /// present, in place of `values`) as a blob of 32-bit words, or base64 of them.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        round = try c.decode(Int.self, forKey: .round)
        if c.contains(.values32) {
            values = []
            values32 = try Self.decodeWords(forKey: .values32, in: c, decoder: decoder, what: "32-bit words")
            return
        }
        values32 = nil
        values = try Self.decodeWords(forKey: .values, in: c, decoder: decoder, what: "64-bit words")
    }

    static func decodeWords<W: RingWord>(forKey key: CodingKeys, in c: KeyedDecodingContainer<CodingKeys>, decoder: any Decoder,
                                         what: String) throws -> [W] {
        let width = MemoryLayout<W>.size
        if let words = try TensorFrames.decode(forKey: key, in: c, decoder: decoder, width: width, what: what, {
            W(littleEndian: $0.loadUnaligned(fromByteOffset: $1, as: W.self))
        }) {
            return words
        }
        guard let data = Data(base64Encoded: try c.decode(String.self, forKey: key)), data.count % width == 0 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not base64 of \(what)")
        }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / width)).map { W(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * width, as: W.self)) }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(round, forKey: .round)
        if let values32 {
            try Self.encodeWords(values32, forKey: .values32, in: &c, encoder: encoder)
        } else {
            try Self.encodeWords(values, forKey: .values, in: &c, encoder: encoder)
        }
    }

    static func encodeWords<W: RingWord>(_ words: [W], forKey key: CodingKeys, in c: inout KeyedEncodingContainer<CodingKeys>,
                                         encoder: any Encoder) throws {
        // Masked words are uniformly random: a codec cannot shrink them, so it is not tried on them.
        if try TensorFrames.encode(words, forKey: key, in: &c, encoder: encoder, compressible: false,
                                   littleEndian: { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }) {
            return
        }
        var data = Data(capacity: words.count * MemoryLayout<W>.size)
        for v in words { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        try c.encode(data.base64EncodedString(), forKey: key)
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
    public func mask<W: RingWord>(_ values: inout [W], participants: [SecureAggregationParticipant]) throws {
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
        try mask(pairKey: pairKey, count: count, generator: generator, as: UInt64.self)
    }

    /// The same keystream read as little-endian words of `W`'s width (the 32-bit ring's mask is its 32-bit words).
    public static func mask<W: RingWord>(pairKey: Data, count: Int, generator: MaskGenerator = .chacha20, as: W.Type) throws -> [W] {
        var words = [W](repeating: 0, count: count)
        try applyMasks([PairMask(key: pairKey, generator: generator, adding: true)], to: &words)
        return words
    }

    /// Keystream bytes generated per call (and per thread): 1,024 ChaCha20 blocks.
    static let keystreamChunkBytes = 64 * 1_024
    /// 64-bit words per keystream chunk.
    static let keystreamChunkWords = keystreamChunkBytes / 8

    /// Adds (or subtracts) the mask of `pairKey` (ChaCha20 unless `generator` says otherwise) to `values`
    /// in place (mod 2^64).
    public static func applyMask<W: RingWord>(pairKey: Data, to values: inout [W], adding: Bool, generator: MaskGenerator = .chacha20) throws {
        try applyMasks([PairMask(key: pairKey, generator: generator, adding: adding)], to: &values)
    }

    /// Adds (or subtracts) every pair's mask to `values` in place (mod 2^64), without building a mask
    /// as an array: the keystreams are produced in 64 kB chunks, each from its own block counter, so
    /// the chunks are independent and split over the cores; each chunk of `values` takes all the
    /// pairs' keystreams while it is in cache.
    public static func applyMasks<W: RingWord>(_ masks: [PairMask], to values: inout [W]) throws {
        try applyMasks(masks, to: &values, kernel: AESCTRMaskKernel.isAvailable)
    }

    /// `applyMasks(_:to:)`; with `kernel`, AES masks go through `AESCTRMaskKernel` (generated and added in one
    /// pass, the stream never in memory; it must run here), else through swift-crypto's `AES._CTR` and an add.
    /// Both give the same words (tested); `fedroute-bench --only masks` times one against the other.
    public static func applyMasks<W: RingWord>(_ masks: [PairMask], to values: inout [W], kernel: Bool) throws {
        let count = values.count
        guard count > 0, !masks.isEmpty else { return }
        // One ChaCha20 block is 64 bytes and its counter is 32 bits, from 1; one AES block is 16 bytes, its counter
        // (the block's last 32 bits) from 0.
        let size = MemoryLayout<W>.size
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, (bytes + 63) / 64 < Int(UInt32.max), (bytes + 15) / 16 <= Int(UInt32.max) else {
            throw FederationError.invalidConfiguration("secure aggregation: \(count) values exceed the mask generator's counter range")
        }
        let keys = masks.map { SymmetricKey(data: $0.key) }
        guard keys.allSatisfy({ $0.bitCount == 256 }) else {
            throw FederationError.invalidConfiguration("secure aggregation: a pair key is not 32 bytes")
        }
        let chachaNonce = try Insecure.ChaCha20CTR.Nonce(data: Data(count: 12))
        let chunkWords = keystreamChunkBytes / size
        let chunks = (count + chunkWords - 1) / chunkWords
        let streamed = masks.contains { $0.generator == .chacha20 || !kernel }
        let failure = Mutex<(any Error)?>(nil)
        values.withUnsafeMutableBufferPointer { buffer in
            // The chunks touch disjoint words.
            let out = RowParallel.Shared(buffer.baseAddress!)
            RowParallel.forEachRange(count: chunks, minimumPerPart: 8) { range in
                // The bytes swift-crypto's generators encrypt (the kernel needs none).
                let zeros = Data(count: streamed ? keystreamChunkBytes : 0)
                do {
                    for chunk in range {
                        let start = chunk * chunkWords
                        let n = min(chunkWords, count - start)
                        let p = out.value + start
                        for (mask, key) in zip(masks, keys) {
                            let stream: Data
                            switch mask.generator {
                            case .chacha20:
                                let counter = try Insecure.ChaCha20CTR.Counter(offset: UInt32(1 + start * size / 64))
                                stream = try Insecure.ChaCha20CTR.encrypt(zeros.prefix(n * size), using: key, counter: counter, nonce: chachaNonce)
                            case .aes256CTR where kernel:
                                let done = mask.key.withUnsafeBytes { W.addAESKeystream(key: $0, firstBlock: UInt32(start * size / 16), to: p, count: n, subtracting: !mask.adding) }
                                guard done else { throw FederationError.invalidConfiguration("secure aggregation: the AES mask kernel does not run here") }
                                continue
                            case .aes256CTR:
                                // The counter block: 96 zero bits, then the block index, big-endian.
                                let block = UInt32(start * size / 16)
                                let nonce = try AES._CTR.Nonce(nonceBytes: [UInt8](repeating: 0, count: 12) + withUnsafeBytes(of: block.bigEndian) { Array($0) })
                                stream = try AES._CTR.encrypt(zeros.prefix(n * size), using: key, nonce: nonce)
                            }
                            stream.withUnsafeBytes { raw in W.add(raw.baseAddress!, littleEndian: true, to: p, count: n, subtracting: !mask.adding) }
                        }
                    }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Σ masked vectors (mod 2^64), with the masks between each survivor and each dropped client removed:
    /// `accumulate` over `masked`, then `removeDanglingMasks`.
    ///
    /// `revealed[survivor][dropped]` is the pair key the survivor revealed for that dropped client;
    /// `participants` is the round's list, whose declarations say which generator each pair used.
    public static func unmaskedSum<W: RingWord>(masked: [(id: String, values: [W])], dropped: [String],
                                                revealed: [String: [String: Data]], participants: [SecureAggregationParticipant]) throws -> [W] {
        guard let n = masked.first?.values.count else { return [] }
        if let (id, v) = masked.first(where: { $0.values.count != n }) {
            throw FederationError.invalidReply(client: id, "masked vector of \(v.count) values, expected \(n)")
        }
        var sum = masked[0].values
        for (_, v) in masked.dropFirst() { accumulate(v, into: &sum) }
        try removeDanglingMasks(from: &sum, survivors: masked.map(\.id), dropped: dropped, revealed: revealed, participants: participants)
        return sum
    }

    /// `sum += values` (mod 2^bits of the ring), over the cores. The coordinator folds each masked vector into the
    /// round's sum as it arrives, so it holds one vector however many clients a round samples.
    public static func accumulate<W: RingWord>(_ values: [W], into sum: inout [W]) {
        precondition(values.count == sum.count, "SecureAggregation.accumulate: \(values.count) words into a sum of \(sum.count)")
        let n = sum.count
        values.withUnsafeBufferPointer { x in
            sum.withUnsafeMutableBufferPointer { total in
                guard let s = x.baseAddress, let d = total.baseAddress else { return }
                let pointers = RowParallel.Shared((s, d))
                RowParallel.forEachRange(count: n, minimumPerPart: 2 * 1_024 * 1_024 / MemoryLayout<W>.size) { range in
                    W.add(UnsafeRawPointer(pointers.value.0 + range.lowerBound), littleEndian: false, to: pointers.value.1 + range.lowerBound,
                          count: range.count, subtracting: false)
                }
            }
        }
    }

    /// Removes from `sum` (the survivors' masked vectors added up) the masks between each survivor and each
    /// dropped client, from the pair keys the survivors revealed (`revealed[survivor][dropped]`); the round's
    /// `participants` list says which generator each pair used. Nothing to do when no client dropped.
    public static func removeDanglingMasks<W: RingWord>(from sum: inout [W], survivors: [String], dropped: [String],
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
