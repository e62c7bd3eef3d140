import CFedRouteKernels

/// Vectorised fixed-point encoding of a weighted float vector (secure aggregation's per-parameter work on
/// a client), and the CPU feature that decides its mask generator. The definition of the encoding is
/// `FedRouteFederation.FixedPoint.encode`; this is its kernel (`fr_fixed_point_encode`, tested to give
/// the same words at every vector width).
public enum FixedPointKernel {
    /// Writes round(weight·values[i]·scale) (halves away from zero) as a two's-complement word to `out[i]`,
    /// and returns `values.count`; or stops at the first i where weight·values[i] is not finite or not
    /// under `limit` in magnitude and returns i (the words before it are written).
    ///
    /// `width` pins the instruction set for tests (0 generic, 1 AVX2; lowered to what the CPU runs).
    @inlinable
    public static func encode(_ values: UnsafeBufferPointer<Float>, weight: Double, scale: Double, limit: Double,
                              into out: UnsafeMutablePointer<UInt64>, width: Int32? = nil) -> Int {
        guard let base = values.baseAddress, !values.isEmpty else { return 0 }
        if let width {
            return fr_fixed_point_encode_isa(width, base, values.count, weight, scale, limit, out)
        }
        return fr_fixed_point_encode(base, values.count, weight, scale, limit, out)
    }

    /// `encode(_:weight:scale:limit:into:width:)` in the 32-bit ring: each word reduced mod 2^32. `limit · scale`
    /// must stay under 2^31 − 1/2, so that every word written is the two's complement of its rounded value.
    @inlinable
    public static func encode(_ values: UnsafeBufferPointer<Float>, weight: Double, scale: Double, limit: Double,
                              into out: UnsafeMutablePointer<UInt32>, width: Int32? = nil) -> Int {
        guard let base = values.baseAddress, !values.isEmpty else { return 0 }
        precondition(limit * scale <= 0x1p31 - 1, "FixedPointKernel.encode: limit · scale \(limit * scale) does not fit 32-bit words")
        if let width {
            return fr_fixed_point_encode32_isa(width, base, values.count, weight, scale, limit, out)
        }
        return fr_fixed_point_encode32(base, values.count, weight, scale, limit, out)
    }

    /// Whether the CPU has AES instructions (x86 AES-NI, ARMv8 AES), so AES-CTR is faster than ChaCha20.
    public static var cpuHasAES: Bool { fr_cpu_has_aes() != 0 }
}
