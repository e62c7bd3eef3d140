/// A deterministic pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in fedroute takes one of these, so the same seed gives the same numbers on
/// every platform and Swift version (the helpers below avoid the standard library's unspecified
/// sampling algorithms).
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm); s1 = splitMix(&sm); s2 = splitMix(&sm); s3 = splitMix(&sm)
    }

    /// A generator for a named sub-stream, independent of the parent's future draws.
    public func derived(_ stream: UInt64) -> SeededRandom {
        SeededRandom(seed: s0 ^ (stream &* 0xD1B5_4A32_D192_ED03) ^ (s2 >> 7))
    }

    /// A seed for a named sub-stream (e.g. one client in one round), without advancing this generator.
    public func derivedSeed(_ stream: UInt64) -> UInt64 {
        var r = derived(stream)
        return r.next()
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [0, 1).
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1.0p-24 }

    /// Uniform integer in `0..<bound` (Lemire's method, unbiased).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let b = UInt64(bound)
        var x = next()
        var m = x.multipliedFullWidth(by: b)
        if m.low < b {
            let t = (0 &- b) % b
            while m.low < t { x = next(); m = x.multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Standard normal draw (Box–Muller).
    public mutating func nextGaussian() -> Double {
        var u1 = nextDouble()
        while u1 <= .leastNonzeroMagnitude { u1 = nextDouble() }
        let u2 = nextDouble()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * .pi * u2)
    }

    /// Gamma(shape, 1) draw (Marsaglia–Tsang; shapes below 1 use the `U^(1/shape)` boost).
    public mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0 && shape.isFinite, "gamma shape must be positive and finite")
        if shape < 1 {
            var u = nextDouble()
            while u <= .leastNonzeroMagnitude { u = nextDouble() }
            return nextGamma(shape: shape + 1) * Scalar.exp(_log(u) / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0
            var v = 0.0
            repeat {
                x = nextGaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if u > 0, _log(u) < 0.5 * x * x + d * (1 - v + _log(v)) { return d * v }
        }
    }

    /// A probability vector drawn from Dirichlet(`concentration`) by normalising Gamma draws.
    ///
    /// With very small concentrations every Gamma draw can underflow to 0; the vector then puts all
    /// mass on one uniformly chosen component (the limit of the distribution), never NaN.
    public mutating func dirichlet(_ concentration: [Double]) -> [Double] {
        precondition(!concentration.isEmpty, "Dirichlet needs at least one component")
        let g = concentration.map { nextGamma(shape: $0) }
        let total = g.reduce(0, +)
        guard total > 0, total.isFinite else {
            var p = [Double](repeating: 0, count: concentration.count)
            p[nextInt(below: concentration.count)] = 1
            return p
        }
        return g.map { $0 / total }
    }

    /// Fisher–Yates shuffle with this generator.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            array.swapAt(i, nextInt(below: i + 1))
        }
    }

    /// A shuffled `0..<n`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }

    /// Index drawn with probability proportional to `weights` (non-negative, not all zero).
    public mutating func weightedIndex(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        precondition(total > 0, "weights must not all be zero")
        var u = nextDouble() * total
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { return i }
        }
        return weights.lastIndex { $0 > 0 }!
    }
}
