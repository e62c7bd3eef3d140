/// The hashed TF-IDF encoder's n-gram hashes straight from a text's UTF-8 bytes: one pass to lower-case
/// and split into words (kept as ranges of one buffer), then FNV-1a over each word n-gram and each character
/// n-gram of the space-padded words, with the padding read virtually. Nothing is allocated per word or per
/// n-gram.
///
/// It reproduces `HashedTFIDFEncoder.hashedFeaturesByCharacter` exactly: letters and digits make words
/// (lower-cased), every other printable character that is Unicode punctuation or a symbol is a one-character
/// word, and everything else (spaces, controls) separates words.
/// - ASCII bytes are classified byte by byte (all printable ASCII non-alphanumerics are punctuation or
///   symbols; `"\r\n"`, one `Character`, separates like two).
/// - A stretch with non-ASCII bytes (an "island") goes through the `Character` rules of the Unicode path:
///   lower-cased, split into grapheme clusters, classified by `Character`'s properties. It starts at the
///   ASCII byte before its first non-ASCII byte (a combining mark after it belongs to that character) and
///   ends after the first ASCII byte that follows it (a prepended mark before it belongs to it), so it is
///   cut only between two ASCII characters, where grapheme clusters always break. A word may run across
///   both (`"café"`).
///
/// Before, any non-ASCII byte sent the whole text to the Unicode path, ten times slower: one routerbench
/// prompt in a hundred (a `°`, a `’`), which made the gateway's 99th percentile. `EncoderTests` checks the
/// two paths agree on the bundled queries and on random text of every character class, ASCII or not.
enum UTF8FeatureHasher {
    static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01B3

    @inline(__always) static func mix(_ h: UInt64, _ byte: UInt8) -> UInt64 { (h ^ UInt64(byte)) &* prime }

    /// Lower-cased word bytes, and where each word starts and ends in them.
    struct Words {
        var letters: [UInt8] = []
        var starts: [Int] = []
        var ends: [Int] = []
        var inWord = false

        init(capacity: Int) {
            letters.reserveCapacity(capacity)
            starts.reserveCapacity(capacity / 4 + 1)
            ends.reserveCapacity(capacity / 4 + 1)
        }

        @inline(__always) mutating func appendToWord(_ byte: UInt8) {
            if !inWord {
                starts.append(letters.count)
                inWord = true
            }
            letters.append(byte)
        }

        @inline(__always) mutating func endWord() {
            if inWord {
                ends.append(letters.count)
                inWord = false
            }
        }

        /// One ASCII byte, as `Character`'s rules classify it.
        @inline(__always) mutating func ascii(_ b: UInt8) {
            let lower = b &- 0x41 < 26 ? b | 0x20 : b
            if lower &- 0x61 < 26 || b &- 0x30 < 10 {
                appendToWord(lower)
                return
            }
            endWord()
            if b > 0x20 && b < 0x7F {
                starts.append(letters.count)
                letters.append(b)
                ends.append(letters.count)
            }
        }

        /// A stretch cut between ASCII characters, by the Unicode path's rules.
        mutating func island(_ bytes: UnsafeBufferPointer<UInt8>) {
            for ch in String(decoding: bytes, as: UTF8.self).lowercased() {
                if ch.isLetter || ch.isNumber {
                    for b in ch.utf8 { appendToWord(b) }
                    continue
                }
                endWord()
                if ch.isPunctuation || ch.isSymbol {
                    starts.append(letters.count)
                    letters.append(contentsOf: ch.utf8)
                    ends.append(letters.count)
                }
            }
        }
    }

    /// The words of `bytes` (valid UTF-8, as a `String`'s are).
    static func words(of bytes: UnsafeBufferPointer<UInt8>) -> Words {
        var words = Words(capacity: bytes.count)
        let n = bytes.count
        var i = 0
        while i < n {
            if bytes[i] < 0x80 && (i + 1 == n || bytes[i + 1] < 0x80) {
                words.ascii(bytes[i])
                i += 1
                continue
            }
            // An island: from here (an ASCII byte before non-ASCII ones, or a non-ASCII byte at the start)
            // through the non-ASCII bytes and one ASCII byte after them, for as long as more non-ASCII follows.
            var end = i + 1
            while true {
                while end < n && bytes[end] >= 0x80 { end += 1 }
                if end < n { end += 1 }
                if end < n && bytes[end] >= 0x80 { continue }
                break
            }
            words.island(UnsafeBufferPointer(rebasing: bytes[i..<end]))
            i = end
        }
        words.endWord()
        return words
    }

    static func hashes(of bytes: UnsafeBufferPointer<UInt8>, configuration: HashedTFIDFEncoder.Configuration) -> [UInt64] {
        let parsed = words(of: bytes)
        let (starts, ends) = (parsed.starts, parsed.ends)
        let words = starts.count
        var out: [UInt64] = []
        // At most one word n-gram per word and order, and per order one character n-gram per letter and pad of
        // each word: reserved once, so appending never moves the array.
        let charOrders = configuration.charNGrams?.count ?? 0
        out.reserveCapacity(words * configuration.wordNGrams.count + charOrders * (parsed.letters.count + 2 * words))
        parsed.letters.withUnsafeBufferPointer { w in
            for n in configuration.wordNGrams where n >= 1 && words >= n {
                // The order and the kind are the same for every n-gram of this loop: mixed in once.
                let seed = mix(mix(offsetBasis, UInt8(truncatingIfNeeded: n)), 0x57)  // 'W'
                for first in 0...(words - n) {
                    var h = seed
                    for word in first..<(first + n) {
                        for i in starts[word]..<ends[word] { h = mix(h, w[i]) }
                        h = mix(h, 0x20)
                    }
                    out.append(h)
                }
            }
            guard let charRange = configuration.charNGrams, words > 0 else { return }
            let longest = (0..<words).reduce(0) { max($0, ends[$1] - starts[$1]) }
            // Each word with its space on either side, in one buffer reused for every word.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: longest + 2) { padded in
                let p = padded.baseAddress!
                for word in 0..<words {
                    let start = starts[word], length = ends[word] - start
                    let count = length + 2
                    p[0] = 0x20
                    p.advanced(by: 1).update(from: w.baseAddress! + start, count: length)
                    p[length + 1] = 0x20
                    for n in charRange where count >= n {
                        let seed = mix(mix(offsetBasis, UInt8(truncatingIfNeeded: n)), 0x43)  // 'C'
                        let grams = count - n + 1
                        var first = 0
                        // Four n-grams at a time: four independent chains of multiplies instead of one (each
                        // multiply waits for the one before it in its chain), the same hashes in the same order.
                        while first + 4 <= grams {
                            var h0 = seed, h1 = seed, h2 = seed, h3 = seed
                            for i in first..<(first + n) {
                                h0 = mix(h0, p[i])
                                h1 = mix(h1, p[i + 1])
                                h2 = mix(h2, p[i + 2])
                                h3 = mix(h3, p[i + 3])
                            }
                            out.append(h0)
                            out.append(h1)
                            out.append(h2)
                            out.append(h3)
                            first += 4
                        }
                        while first < grams {
                            var h = seed
                            for i in first..<(first + n) { h = mix(h, p[i]) }
                            out.append(h)
                            first += 1
                        }
                    }
                }
            }
        }
        return out
    }
}
