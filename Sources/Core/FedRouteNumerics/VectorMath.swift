import CFedRouteKernels

/// Vectorised exp, erf and GELU on `SIMD8<Float>`, with scalar forms that run the same code on one lane
/// (so a tail element gets exactly the value it would get inside a vector).
///
/// Accuracy (tested against Foundation's Double functions in `VectorMathTests`):
/// - `exp`: Cephes' range reduction `x = n·ln2 + r`, |r| ≤ ln2/2, and its degree-7 polynomial;
///   relative error ≤ 2 × 10⁻⁷ (about 2 ulp) on [−87.3, 88.7]; 0 below −87.33 (no subnormals), +∞ above 88.72.
/// - `erf`: the Taylor series to x¹⁷ for |x| < 0.8; beyond, Abramowitz & Stegun 7.1.26, `1 − t·P(t)·e^(−x²)`
///   with `t = 1/(1 + 0.3275911|x|)` (absolute error ≤ 1.5 × 10⁻⁷ in exact arithmetic); ≤ 3 × 10⁻⁷ in float.
/// - GELU `x·Φ(x)` and its derivative `Φ(x) + x·φ(x)` share one `exp(−x²/2)`; absolute error of Φ ≤ 1.5 × 10⁻⁷.
/// glibc's `erff`/`expf` are correctly rounded to about 1 ulp but scalar; these are 8 lanes at a time.
public enum VectorMath {
    public typealias Vector = SIMD8<Float>

    @inline(__always)
    public static func exp(_ x: Vector) -> Vector {
        let log2e: Float = 1.44269504088896341
        // Clamped with masks: the stdlib's generic pointwiseMin/Max are not specialised across modules.
        var clamped = x
        clamped.replace(with: -87.33, where: x .< -87.33)
        clamped.replace(with: 88.72, where: x .> 88.72)
        // Round to nearest by the float "shifter" 1.5·2²³: its low mantissa bits then hold n as an integer,
        // which avoids a per-lane float → integer conversion.
        let shifter: Float = 12_582_912
        let shifted = clamped * log2e + shifter
        let n = shifted - shifter
        // Two-part ln 2 keeps r exact to float precision.
        var r = clamped - n * 0.693359375
        r = r + n * 2.12194440e-4
        let r2 = r * r
        var p = Vector(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * r2 + r + 1
        // 2^n through the exponent bits, in two halves so that n = 128 (x near 88.7) and n = −126 are exact.
        let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let half = ni &>> 1
        let scale1 = unsafeBitCast((half &+ 127) &<< 23, to: Vector.self)
        let scale2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: Vector.self)
        var result = p * scale1 * scale2
        result.replace(with: 0, where: x .< -87.33)
        result.replace(with: .infinity, where: x .> 88.72)
        return result
    }

    /// |x| by clearing the sign bit.
    @inline(__always)
    public static func abs(_ x: Vector) -> Vector {
        unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: Vector.self)
    }

    /// The A&S 7.1.26 tail `t·P(t)` for |u|, to be multiplied by `exp(−u²)`.
    @inline(__always)
    static func erfcTailPolynomial(_ absU: Vector) -> Vector {
        let t = 1 / (1 + 0.3275911 * absU)
        var p = Vector(repeating: 1.061405429)
        p = p * t - 1.453152027
        p = p * t + 1.421413741
        p = p * t - 0.284496736
        p = p * t + 0.254829592
        return p * t
    }

    /// erf near 0 by its Taylor series to x¹⁷ (truncation < 3 × 10⁻⁹ for |x| < 0.8), where `1 − t·P(t)·e^(−x²)`
    /// loses digits to cancellation.
    @inline(__always)
    static func erfNearZero(_ x: Vector) -> Vector {
        let x2 = x * x
        var p = Vector(repeating: 1.0 / 685_440)
        p = p * x2 - 1.0 / 75_600
        p = p * x2 + 1.0 / 9_360
        p = p * x2 - 1.0 / 1_320
        p = p * x2 + 1.0 / 216
        p = p * x2 - 1.0 / 42
        p = p * x2 + 1.0 / 10
        p = p * x2 - 1.0 / 3
        p = p * x2 + 1
        return 1.1283791670955126 * x * p
    }

    @inline(__always)
    public static func erf(_ x: Vector) -> Vector {
        let a = abs(x)
        let y = 1 - erfcTailPolynomial(a) * exp(-(a * a))
        var result = y
        result.replace(with: -y, where: x .< 0)
        result.replace(with: erfNearZero(x), where: a .< 0.8)
        return result
    }

    /// Φ(x), the standard normal CDF, with `exp(−x²/2)`, which Φ's tail and φ share.
    @inline(__always)
    static func normalCDF(_ x: Vector) -> (cdf: Vector, gaussian: Vector) {
        let u = abs(x) * 0.70710678118654752
        let e = exp(-(u * u))
        let erfAbs = 1 - erfcTailPolynomial(u) * e
        var cdf = 0.5 * (1 + erfAbs)
        cdf.replace(with: 0.5 * (1 - erfAbs), where: x .< 0)
        return (cdf, e)
    }

    /// Exact-form GELU `x·Φ(x)`.
    @inline(__always)
    public static func gelu(_ x: Vector) -> Vector { x * normalCDF(x).cdf }

    /// GELU's derivative `Φ(x) + x·φ(x)`.
    @inline(__always)
    public static func geluDerivative(_ x: Vector) -> Vector {
        let (cdf, e) = normalCDF(x)
        return cdf + x * (0.3989422804014327 * e)
    }

    /// Logistic sigmoid `1/(1 + e^(−x))`, stable for large |x|.
    @inline(__always)
    public static func sigmoid(_ x: Vector) -> Vector {
        let e = exp(-abs(x))
        let positive = 1 / (1 + e)
        var result = positive
        result.replace(with: e * positive, where: x .< 0)
        return result
    }

    // Scalar forms: lane 0 of the vector code.
    @inline(__always) public static func exp(_ x: Float) -> Float { exp(Vector(repeating: x))[0] }
    @inline(__always) public static func erf(_ x: Float) -> Float { erf(Vector(repeating: x))[0] }
    @inline(__always) public static func gelu(_ x: Float) -> Float { gelu(Vector(repeating: x))[0] }
    @inline(__always) public static func geluDerivative(_ x: Float) -> Float { geluDerivative(Vector(repeating: x))[0] }
    @inline(__always) public static func sigmoid(_ x: Float) -> Float { sigmoid(Vector(repeating: x))[0] }

    // MARK: Arrays at the CPU's widest vectors

    /// `out[i] = gelu(input[i])` for `count` floats (in place when the pointers are equal), by the C
    /// kernel instantiated for AVX-512, AVX2 or 128-bit vectors: the same operations as `gelu`, so the
    /// same bits, at up to twice the width (Swift's `SIMD8` compiles to two SSE halves on x86-64).
    /// `width` forces an instantiation (0 generic, 1 AVX2, 2 AVX-512; lowered to what the CPU runs).
    @inline(__always)
    public static func gelu(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, width: Int32? = nil) {
        if let width { fr_gelu_isa(width, input, out, count) } else { fr_gelu(input, out, count) }
    }

    /// `x[i] = exp(x[i]·scale − shift)` for `count` floats; bit-identical to `exp(x·scale − shift)`.
    @inline(__always)
    public static func expAffine(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float, width: Int32? = nil) {
        if let width { fr_exp_affine_isa(width, x, count, scale, shift) } else { fr_exp_affine(x, count, scale, shift) }
    }

    // MARK: Buffers

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }
    @inline(__always) static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self) }

    /// Whether every lane is +0 or -0. An OR of the bits without the sign (SIMD `==` on floats
    /// compiles to a lane-by-lane loop through memory).
    @inline(__always) static func isZero(_ v: Vector) -> Bool {
        let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8(repeating: 0x7FFF_FFFF)
        let four = bits.lowHalf | bits.highHalf
        let two = four.lowHalf | four.highHalf
        return two[0] | two[1] == 0
    }

    /// The last `count` (< 8) elements as a vector padded with `fill`.
    @inline(__always) static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, fill: Float = 0) -> Vector {
        var v = Vector(repeating: fill)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    @inline(__always) static func storePartial(_ v: Vector, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { p[i] = v[i] }
    }

    /// `out[i] = f(input[i])` for `count` elements, 8 at a time (in place when the pointers are equal).
    @inline(__always)
    public static func map(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, _ f: (Vector) -> Vector) {
        var i = 0
        while i + 8 <= count {
            store(f(load(input + i)), out + i)
            i += 8
        }
        if i < count { storePartial(f(loadPartial(input + i, count - i)), out + i, count - i) }
    }

    /// Σ x[i] and Σ x[i]² of `count` floats, accumulated in 8 float lanes and summed in a fixed order.
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = Vector()
        var i = 0
        while i + 8 <= count {
            acc += load(x + i)
            i += 8
        }
        if i < count { acc += loadPartial(x + i, count - i) }
        return acc.sum()
    }

    /// Σ values[i]² in Double, in four running sums so that the adds do not wait on each other (one chain
    /// took about 1 ms per 0.8 M values: the coordinator takes this norm of every update it screens). A NaN or
    /// infinity among the values makes the result non-finite.
    public static func sumOfSquares(_ values: UnsafeBufferPointer<Float>) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = 0
        while i + 4 <= values.count {
            let a = Double(values[i]), b = Double(values[i + 1]), c = Double(values[i + 2]), d = Double(values[i + 3])
            s0 += a * a
            s1 += b * b
            s2 += c * c
            s3 += d * d
            i += 4
        }
        while i < values.count {
            s0 += Double(values[i]) * Double(values[i])
            i += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// `y[i] += x[i]` for `count` floats.
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            store(load(y + i) + load(x + i), y + i)
            i += 8
        }
        while i < count {
            y[i] += x[i]
            i += 1
        }
    }

    /// `y[i] += a·x[i]` for `count` floats.
    @inline(__always)
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            store(load(y + i) + a * load(x + i), y + i)
            i += 8
        }
        while i < count {
            y[i] += a * x[i]
            i += 1
        }
    }

    /// Column sums of a row-major `rows × cols` matrix added to `sums` (bias gradients), row by row.
    public static func addColumnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into sums: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { add(x + r * cols, into: sums, count: cols) }
    }
}
