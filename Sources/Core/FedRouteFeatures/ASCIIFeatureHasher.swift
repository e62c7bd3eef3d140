/// The hashed TF-IDF encoder's n-gram hashes of ASCII text, straight from its UTF-8 bytes: one pass to
/// lower-case and split into words (kept as ranges of one buffer), then FNV-1a over each word n-gram and
/// each character n-gram of the space-padded words, with the padding read virtually. Nothing is allocated
/// per word or per n-gram.
///
/// It reproduces `HashedTFIDFEncoder.hashedFeaturesByCharacter` exactly for ASCII: letters and digits make
/// words (lower-cased), every other printable character (Unicode punctuation or symbol, as all ASCII ones are)
/// is a one-character word, and spaces and control characters separate words (`"\r\n"`, one `Character`,
/// separates like two). `EncoderTests` checks the two paths agree on the bundled queries and on random text.
enum ASCIIFeatureHasher {
    static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01B3

    @inline(__always) static func mix(_ h: UInt64, _ byte: UInt8) -> UInt64 { (h ^ UInt64(byte)) &* prime }

    /// Nil when `bytes` holds a non-ASCII byte (the caller then takes the Unicode path).
    static func hashes(of bytes: UnsafeBufferPointer<UInt8>, configuration: HashedTFIDFEncoder.Configuration) -> [UInt64]? {
        var ascii: UInt8 = 0
        for b in bytes { ascii |= b }
        guard ascii < 0x80 else { return nil }
        // Lower-cased word bytes, and where each word starts and ends in them.
        var letters = [UInt8]()
        letters.reserveCapacity(bytes.count)
        var starts = [Int](), ends = [Int]()
        starts.reserveCapacity(bytes.count / 4 + 1)
        ends.reserveCapacity(bytes.count / 4 + 1)
        var inWord = false
        for b in bytes {
            let lower = b &- 0x41 < 26 ? b | 0x20 : b
            if lower &- 0x61 < 26 || b &- 0x30 < 10 {
                if !inWord {
                    starts.append(letters.count)
                    inWord = true
                }
                letters.append(lower)
                continue
            }
            if inWord {
                ends.append(letters.count)
                inWord = false
            }
            if b > 0x20 && b < 0x7F {
                starts.append(letters.count)
                letters.append(b)
                ends.append(letters.count)
            }
        }
        if inWord { ends.append(letters.count) }
        let words = starts.count
        var out: [UInt64] = []
        out.reserveCapacity(words * 8 + 8)
        letters.withUnsafeBufferPointer { w in
            for n in configuration.wordNGrams where n >= 1 && words >= n {
                for first in 0...(words - n) {
                    var h = mix(mix(offsetBasis, UInt8(truncatingIfNeeded: n)), 0x57)  // 'W'
                    for word in first..<(first + n) {
                        for i in starts[word]..<ends[word] { h = mix(h, w[i]) }
                        h = mix(h, 0x20)
                    }
                    out.append(h)
                }
            }
            guard let charRange = configuration.charNGrams else { return }
            for word in 0..<words {
                let start = starts[word], length = ends[word] - start
                let padded = length + 2
                for n in charRange where padded >= n {
                    for first in 0...(padded - n) {
                        var h = mix(mix(offsetBasis, UInt8(truncatingIfNeeded: n)), 0x43)  // 'C'
                        for i in first..<(first + n) { h = mix(h, i == 0 || i == padded - 1 ? 0x20 : w[start + i - 1]) }
                        out.append(h)
                    }
                }
            }
        }
        return out
    }
}
