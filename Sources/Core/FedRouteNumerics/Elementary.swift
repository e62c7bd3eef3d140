#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Thin wrappers so the rest of the module needs no platform imports.
@inlinable func _log(_ x: Double) -> Double { log(x) }
@inlinable func _cos(_ x: Double) -> Double { cos(x) }

/// Scalar functions used by the networks, in one place.
public enum Scalar {
    @inlinable public static func erf(_ x: Float) -> Float { erff(x) }
    @inlinable public static func exp(_ x: Float) -> Float { expf(x) }
    @inlinable public static func tanh(_ x: Float) -> Float { tanhf(x) }
    @inlinable public static func exp(_ x: Double) -> Double { Glibc_exp(x) }
    @inlinable public static func log(_ x: Double) -> Double { _log(x) }
    @inlinable public static func log(_ x: Float) -> Float { logf(x) }
    @inlinable public static func log1p(_ x: Double) -> Double { Glibc_log1p(x) }
    @inlinable public static func expm1(_ x: Double) -> Double { Glibc_expm1(x) }

    /// Logistic sigmoid, stable for large |x|.
    @inlinable public static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    /// Exact GELU, `x·Φ(x)`.
    @inlinable public static func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

    /// d/dx of exact GELU: `Φ(x) + x·φ(x)`.
    @inlinable public static func geluDerivative(_ x: Float) -> Float {
        let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
        let pdf = 0.3989422804014327 * expf(-0.5 * x * x)
        return cdf + x * pdf
    }
}

@inlinable func Glibc_exp(_ x: Double) -> Double { exp(x) }
@inlinable func Glibc_log1p(_ x: Double) -> Double { log1p(x) }
@inlinable func Glibc_expm1(_ x: Double) -> Double { expm1(x) }
