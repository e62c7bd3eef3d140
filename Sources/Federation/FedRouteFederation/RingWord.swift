import FedRouteNumerics

/// A word of the ring secure aggregation's masked vectors live in: Z/2^64 (the protocol's first ring, `UInt64`) or
/// Z/2^32 (`UInt32`, a round encoded by `SecureWords32`). A mask is the same keystream in either ring, read as
/// little-endian words of the ring's width.
public protocol RingWord: FixedWidthInteger, UnsignedInteger, BitwiseCopyable, Sendable, Codable {
    /// The vector the word-wise add runs on.
    associatedtype Lanes: SIMD where Lanes.Scalar == Self
    /// The two's-complement reading of a word.
    associatedtype Signed: FixedWidthInteger & SignedInteger
    /// `values[i]` ± the little-endian word i of the AES-256-CTR keystream of `key` from counter block `firstBlock`,
    /// through `AESCTRMaskKernel`; false (nothing touched) where that kernel does not run.
    static func addAESKeystream(key: UnsafeRawBufferPointer, firstBlock: UInt32, to values: UnsafeMutablePointer<Self>,
                                count: Int, subtracting: Bool) -> Bool
}

extension RingWord {
    /// The word read as a two's-complement integer.
    @inlinable
    public var signedValue: Double { Double(Signed(truncatingIfNeeded: self)) }

    /// `p[i]` ± word i of `source` (little-endian words when `littleEndian`, native ones otherwise), a vector at a time.
    @inlinable
    public static func add(_ source: UnsafeRawPointer, littleEndian: Bool, to p: UnsafeMutablePointer<Self>, count: Int, subtracting: Bool) {
        RingWords.add(source, littleEndian: littleEndian, to: p, count: count, subtracting: subtracting, lanes: Lanes.self)
    }
}

extension UInt64: RingWord {
    public typealias Lanes = SIMD4<UInt64>
    public typealias Signed = Int64

    @inlinable
    public static func addAESKeystream(key: UnsafeRawBufferPointer, firstBlock: UInt32, to values: UnsafeMutablePointer<UInt64>,
                                       count: Int, subtracting: Bool) -> Bool {
        AESCTRMaskKernel.add(key: key, firstBlock: firstBlock, to: values, count: count, subtracting: subtracting)
    }
}

extension UInt32: RingWord {
    public typealias Lanes = SIMD8<UInt32>
    public typealias Signed = Int32

    @inlinable
    public static func addAESKeystream(key: UnsafeRawBufferPointer, firstBlock: UInt32, to values: UnsafeMutablePointer<UInt32>,
                                       count: Int, subtracting: Bool) -> Bool {
        AESCTRMaskKernel.add(key: key, firstBlock: firstBlock, to: values, count: count, subtracting: subtracting)
    }
}

/// The vector loop both rings' `add` share.
public enum RingWords {
    /// `p[i]` ± word i of `source`, `V.scalarCount` words at a time (mod 2^bits), the tail one by one.
    @inlinable @inline(__always)
    public static func add<W: RingWord, V: SIMD>(_ source: UnsafeRawPointer, littleEndian: Bool, to p: UnsafeMutablePointer<W>, count n: Int,
                                                 subtracting: Bool, lanes: V.Type) where V.Scalar == W {
        var i = 0
        let size = MemoryLayout<W>.stride, step = V.scalarCount
        // Native words are little-endian words on a little-endian host; elsewhere the scalar loop swaps them.
        #if _endian(little)
        let vectorised = true
        #else
        let vectorised = !littleEndian
        #endif
        if vectorised {
            let q = UnsafeMutableRawPointer(p)
            if subtracting {
                while i &+ step <= n {
                    q.storeBytes(of: q.loadUnaligned(fromByteOffset: i &* size, as: V.self) &- source.loadUnaligned(fromByteOffset: i &* size, as: V.self),
                                 toByteOffset: i &* size, as: V.self)
                    i &+= step
                }
            } else {
                while i &+ step <= n {
                    q.storeBytes(of: q.loadUnaligned(fromByteOffset: i &* size, as: V.self) &+ source.loadUnaligned(fromByteOffset: i &* size, as: V.self),
                                 toByteOffset: i &* size, as: V.self)
                    i &+= step
                }
            }
        }
        while i < n {
            let raw = source.loadUnaligned(fromByteOffset: i &* size, as: W.self)
            let m = littleEndian ? W(littleEndian: raw) : raw
            p[i] = subtracting ? p[i] &- m : p[i] &+ m
            i &+= 1
        }
    }
}
