import CFedRouteKernels

/// Sixteen SHA-256 digests in one pass (`fr_sha256_x16`: AVX-512, one message per 32-bit lane). One SHA-NI stream
/// is bound by its round instruction's latency; sixteen independent lanes run about 1.8× faster on the EPYC this
/// was measured on (`fedroute-bench --only digest`). Each lane is an ordinary SHA-256, tested against
/// swift-crypto's; the tree body digest of `FedRouteFederationHTTP.BodyDigest` uses it for its 16 leaves and
/// swift-crypto where it does not run.
public enum SHA256LanesKernel {
    /// Whether the kernel runs on this CPU (x86-64 with AVX-512 F and BW).
    public static let isAvailable = fr_sha256_x16_available() != 0

    /// The digests of the 16 messages of `length` bytes (a multiple of 64) at offsets 0, `stride`, …, 15·`stride` of
    /// `bytes`, 32 bytes each, concatenated; nil (nothing computed) where the kernel does not run, `length` is not a
    /// multiple of 64, or the messages do not lie inside `bytes`.
    public static func digests(of bytes: UnsafeRawBufferPointer, stride: Int, length: Int) -> [UInt8]? {
        guard isAvailable, length >= 0, length % 64 == 0, stride >= 0, let base = bytes.baseAddress else { return nil }
        let (last, overflow) = stride.multipliedReportingOverflow(by: 15)
        guard !overflow, last <= bytes.count, length <= bytes.count - last else { return nil }
        var out = [UInt8](repeating: 0, count: 16 * 32)
        let ran = out.withUnsafeMutableBufferPointer { o in
            fr_sha256_x16(base.assumingMemoryBound(to: UInt8.self), stride, length, o.baseAddress!)
        }
        return ran == 1 ? out : nil
    }
}
