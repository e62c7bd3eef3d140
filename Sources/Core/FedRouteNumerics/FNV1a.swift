/// FNV-1a, 64-bit: a fast, stable, platform-independent hash for feature hashing and cache keys.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    public mutating func combine(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    public mutating func combine<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for b in bytes { combine(byte: b) }
    }

    public mutating func combine(_ string: String) {
        combine(bytes: string.utf8)
        combine(byte: 0xFF)
    }

    public mutating func combine(_ floats: [Float]) {
        for f in floats { var bits = f.bitPattern.littleEndian; withUnsafeBytes(of: &bits) { combine(bytes: $0) } }
    }

    public static func hash(_ string: String) -> UInt64 {
        var h = FNV1a()
        h.combine(bytes: string.utf8)
        return h.value
    }

    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
