import CFedRouteKernels

/// Secure aggregation's AES-256-CTR mask, generated and added to a vector of 64-bit words in one pass
/// (`fr_aes256_ctr_add`: VAES, two AES blocks per instruction, the keystream never written to memory).
/// The protocol's definition of the mask is in `FedRouteFederation.SecureAggregation`; where this kernel
/// does not run, that module takes swift-crypto's `AES._CTR`, against which the kernel is tested.
public enum AESCTRMaskKernel {
    /// Whether the kernel runs on this CPU (x86-64 with AES-NI, AVX2 and VAES).
    public static let isAvailable = fr_aes256_ctr_add_available() != 0

    /// `values[i]` ± the little-endian word i of the AES-256-CTR keystream of `key` (32 bytes) from the counter
    /// block 0⁹⁶ ‖ BE32(`firstBlock`), mod 2^64. Returns false, touching nothing, where the kernel does not run
    /// or `key` is not 32 bytes. The caller keeps `firstBlock` + ⌈count / 2⌉ ≤ 2^32.
    @inlinable
    public static func add(key: UnsafeRawBufferPointer, firstBlock: UInt32, to values: UnsafeMutablePointer<UInt64>, count: Int,
                           subtracting: Bool) -> Bool {
        guard isAvailable, key.count == 32, let k = key.baseAddress else { return false }
        return fr_aes256_ctr_add(k.assumingMemoryBound(to: UInt8.self), firstBlock, values, count, subtracting ? 1 : 0) == 1
    }

    /// `add(key:firstBlock:to:count:subtracting:)` in the 32-bit ring: `values[i]` ± the little-endian 32-bit word i
    /// of the same keystream, mod 2^32. The caller keeps `firstBlock` + ⌈count / 4⌉ ≤ 2^32.
    @inlinable
    public static func add(key: UnsafeRawBufferPointer, firstBlock: UInt32, to values: UnsafeMutablePointer<UInt32>, count: Int,
                           subtracting: Bool) -> Bool {
        guard isAvailable, key.count == 32, let k = key.baseAddress else { return false }
        return fr_aes256_ctr_add32(k.assumingMemoryBound(to: UInt8.self), firstBlock, values, count, subtracting ? 1 : 0) == 1
    }
}
