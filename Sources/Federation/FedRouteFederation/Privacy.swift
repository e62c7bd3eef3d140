import Foundation
import FedRouteNumerics

// DP-FedAvg (McMahan et al., 2018, "Learning differentially private recurrent language models"):
// each sampled client clips its model delta to L2 norm C and adds its share of Gaussian noise, so
// that the sum the server forms carries N(0, σ²C²) per coordinate; the server divides by the
// fixed number of sampled clients. Noise is added on the client, which is what lets it combine
// with secure aggregation (the server never sees an un-noised sum either).

/// Client-level differential privacy for federated MLP rounds.
public struct DifferentialPrivacy: Sendable, Codable, Equatable {
    /// L2 bound C on one client's delta (all tensors together).
    public var clipNorm: Double
    /// Noise multiplier σ: the noise on the summed deltas has standard deviation σ·C.
    public var noiseMultiplier: Double
    /// δ of the reported (ε, δ) guarantee.
    public var delta: Double

    public init(clipNorm: Double, noiseMultiplier: Double, delta: Double = 1e-5) {
        self.clipNorm = clipNorm
        self.noiseMultiplier = noiseMultiplier
        self.delta = delta
    }

    func validate() throws {
        guard clipNorm > 0, clipNorm.isFinite, noiseMultiplier >= 0, noiseMultiplier.isFinite, delta > 0, delta < 1 else {
            throw FederationError.invalidConfiguration("differential privacy needs a clip norm > 0, a noise multiplier ≥ 0 and δ in (0, 1)")
        }
    }
}

/// What a client does to its delta before it leaves: clip to `clipNorm`, add N(0, noiseStd²).
public struct UpdatePrivacy: Sendable, Codable, Equatable {
    public var clipNorm: Double
    /// This client's share of the noise: σ·C/√(sampled clients).
    public var noiseStd: Double

    public init(clipNorm: Double, noiseStd: Double) {
        self.clipNorm = clipNorm
        self.noiseStd = noiseStd
    }

    /// Clips `delta` in place to L2 norm `clipNorm` and adds Gaussian noise; returns the norm before clipping.
    @discardableResult
    public func apply<G: RandomNumberGenerator>(to delta: inout [Tensor], using generator: inout G) -> Double {
        let norm = delta.reduce(0.0) { s, t in t.values.reduce(s) { $0 + Double($1) * Double($1) } }.squareRoot()
        let scale = norm > clipNorm ? Float(clipNorm / norm) : 1
        for t in delta.indices {
            for j in delta[t].values.indices {
                delta[t].values[j] = delta[t].values[j] * scale + Float(noiseStd * Self.gaussian(&generator))
            }
        }
        return norm
    }

    static func gaussian<G: RandomNumberGenerator>(_ g: inout G) -> Double {
        // Box–Muller on two uniforms in (0, 1].
        let u1 = Double(g.next() >> 11 + 1) * 0x1.0p-53
        let u2 = Double(g.next() >> 11) * 0x1.0p-53
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// Rényi-DP accountant for the sampled Gaussian mechanism (Mironov, Talwar & Zhang, 2019).
///
/// Each round adds the RDP of a Gaussian with noise multiplier σ applied to a q-subsample of the
/// clients, at integer orders α; ε(δ) uses the conversion of Balle et al. (2020). Sampling a fixed
/// number of clients without replacement is accounted as Poisson sampling with q = sampled/total,
/// the standard approximation.
public struct PrivacyAccountant: Sendable, Codable, Equatable {
    /// Rényi orders α (integers).
    public let orders: [Int]
    /// Accumulated RDP ε_α at each order.
    public private(set) var rdp: [Double]
    public private(set) var rounds = 0

    /// Whether orders and accumulated values fit together (orders > 1, RDP finite and ≥ 0).
    public var isConsistent: Bool {
        !orders.isEmpty && orders.count == rdp.count && orders.allSatisfy { $0 > 1 && $0 <= 1 << 20 } && rdp.allSatisfy { $0.isFinite && $0 >= 0 } && rounds >= 0
    }

    public init(orders: [Int] = Array(2...64) + [80, 96, 128, 160, 192, 256]) {
        self.orders = orders
        rdp = Array(repeating: 0, count: orders.count)
    }

    /// Adds one round with sampling rate q and noise multiplier σ.
    public mutating func addRound(samplingRate q: Double, noiseMultiplier sigma: Double) {
        for (i, a) in orders.enumerated() { rdp[i] += Self.sampledGaussianRDP(q: q, sigma: sigma, order: a) }
        rounds += 1
    }

    /// The ε of (ε, δ)-DP after the rounds so far.
    public func epsilon(delta: Double) -> Double {
        var best = Double.infinity
        for (i, a) in orders.enumerated() {
            let alpha = Double(a)
            let e = rdp[i] + Foundation.log((alpha - 1) / alpha) - (Foundation.log(delta) + Foundation.log(alpha)) / (alpha - 1)
            best = min(best, max(0, e))
        }
        return best
    }

    /// RDP at integer order α of the q-subsampled Gaussian with noise multiplier σ:
    /// log(Σ_k C(α,k)(1−q)^(α−k) q^k exp((k²−k)/(2σ²))) / (α−1).
    public static func sampledGaussianRDP(q: Double, sigma: Double, order a: Int) -> Double {
        guard q > 0 else { return 0 }
        guard sigma > 0 else { return .infinity }
        if q >= 1 { return Double(a) / (2 * sigma * sigma) }
        var terms: [Double] = []
        terms.reserveCapacity(a + 1)
        for k in 0...a {
            let kk = Double(k)
            let logBinomial = lgamma(Double(a) + 1) - lgamma(kk + 1) - lgamma(Double(a - k) + 1)
            terms.append(logBinomial + Double(a - k) * Foundation.log1p(-q) + kk * Foundation.log(q) + (kk * kk - kk) / (2 * sigma * sigma))
        }
        let m = terms.max()!
        let logA = m + Foundation.log(terms.reduce(0) { $0 + exp($1 - m) })
        return logA / Double(a - 1)
    }
}

/// The privacy spent after one round, for round reports.
public struct PrivacyReport: Sendable, Codable, Equatable {
    public var samplingRate: Double
    /// σ of the noise that actually reached the sum (lower when sampled clients dropped out).
    public var effectiveNoiseMultiplier: Double
    public var epsilon: Double
    public var delta: Double
}
