import Foundation

/// A secure round in the 32-bit ring: half the bytes of the 64-bit one on the wire, in the masks, the digest and
/// the TLS records, at a coarser but bounded precision.
///
/// The 64-bit ring carries w·Δ (w a client's sample count) and needs no bound: 2^64 holds any sum. In 2^32 the sum
/// of the round must be bounded in advance, which FedAvg's raw weights do not give. So each client weighs its
/// update by its share r = w / W of the listed clients' described trainable queries (the coordinator knows W from
/// the clients' descriptions, so nothing new is revealed), and sends, in 2^-f fixed point mod 2^32,
///     [r·Δ (every tensor, flattened in order), r, r·loss].
/// A client whose update has a coordinate, or whose loss is, `bound` or more in magnitude declines the round (a
/// named dropout whose masks the survivors remove); `bound` is `FederatedMLPConfiguration.secureWordBound` (8 unless
/// set, as the clipping range of Flower's SecAgg+, which clips where this declines) or the update-norm limit if
/// smaller. Then every sum fits: |Σ r·Δ| ≤ bound · Σ r ≤ bound, and bound · 2^f ≤ 2^30 leaves room for the rounding
/// of every client's words. The coordinator divides by the sum of the r words (the survivors' share of W), which is
/// FedAvg over the survivors.
///
/// Precision: each client's words are rounded to 2^-(f+1), so the average moves by at most n · 2^-(f+1) / Σ r
/// (n clients); f = 27 at the default bound of 8 (under 4·10^-9 a client, float32's spacing at 0.06). Training is
/// sensitive to such steps (AdamW normalises small gradients), so the bound is kept small: at a bound of 1,000
/// (f = 20) a three-round federation with a dropout ended up to 4·10^-3 from the plain one.
/// Rounds with differential privacy keep the 64-bit ring (their noise is not bounded), as do rounds with a client
/// that does not declare the 32-bit ring with its key.
public struct SecureWords32: Sendable, Codable, Equatable {
    /// f: values are round(x · 2^f) in Z/2^32.
    public var fractionBits: Int
    /// Every |Δ| coordinate and |loss| a client encodes is under this bound.
    public var bound: Double
    /// W: the trainable queries the round's listed clients described; a client with w samples weighs by w / W.
    public var totalWeight: Double

    /// The bound unless `FederatedMLPConfiguration.secureWordBound` says otherwise.
    public static let defaultBound = 8.0
    /// Fewer fraction bits than this and the round keeps the 64-bit ring (a bound too large for 32-bit words).
    public static let minimumFractionBits = 12
    /// At most 30 fraction bits: r ≤ 1 must fit with room for rounding.
    public static let maximumFractionBits = 30

    public init(fractionBits: Int, bound: Double, totalWeight: Double) {
        self.fractionBits = fractionBits
        self.bound = bound
        self.totalWeight = totalWeight
    }

    /// The most fraction bits `bound` allows (bound · 2^f ≤ 2^30), or nil when that is under `minimumFractionBits`,
    /// or `bound` or `totalWeight` is not finite and positive: such a round keeps the 64-bit ring.
    public init?(bound: Double, totalWeight: Double) {
        guard bound.isFinite, bound > 0, totalWeight.isFinite, totalWeight > 0 else { return nil }
        var f = Self.maximumFractionBits
        while f >= Self.minimumFractionBits, bound * Double(sign: .plus, exponent: f, significand: 1) > 0x1p30 { f -= 1 }
        guard f >= Self.minimumFractionBits else { return nil }
        self.init(fractionBits: f, bound: bound, totalWeight: totalWeight)
    }

    /// 2^f.
    public var scale: Double { Double(sign: .plus, exponent: fractionBits, significand: 1) }

    /// Why a client must not encode with these parameters (they could wrap the sum), or nil.
    public var problem: String? {
        guard (Self.minimumFractionBits...Self.maximumFractionBits).contains(fractionBits) else {
            return "\(fractionBits) fraction bits, not in \(Self.minimumFractionBits)...\(Self.maximumFractionBits)"
        }
        guard bound.isFinite, bound > 0, bound * scale <= 0x1p30 else { return "bound \(bound) does not fit 32-bit words at \(fractionBits) fraction bits" }
        guard totalWeight.isFinite, totalWeight > 0 else { return "total weight \(totalWeight) is not positive" }
        return nil
    }

    /// round(x · 2^f) mod 2^32 for |x| < 2^(30 − f) (the weight r and the weighted loss).
    public func encode(_ x: Double) -> UInt32 { UInt32(truncatingIfNeeded: FixedPoint.round(x * scale)) }

    /// A word of a sum, as a number.
    public func decode(_ word: UInt32) -> Double { word.signedValue / scale }
}
