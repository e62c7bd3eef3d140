import Dispatch
import FedRouteNumerics

/// A deterministic, dependency-free text encoder: signed feature hashing of word n-grams and
/// within-word character n-grams, sublinear TF × IDF (fitted on a training corpus), L2-normalised.
///
/// Same configuration and same fitted IDF give bit-identical vectors on every machine.
public struct HashedTFIDFEncoder: QueryEncoder, Equatable {
    public struct Configuration: Sendable, Codable, Equatable {
        public var dimension: Int
        /// Word n-gram orders, e.g. 1...2.
        public var wordNGrams: ClosedRange<Int>
        /// Character n-gram orders within space-padded words, e.g. 3...5; `nil` disables them.
        public var charNGrams: ClosedRange<Int>?
        /// Texts longer than this many characters keep their head and tail halves (0 = no limit).
        public var maxCharacters: Int

        public init(dimension: Int = 1024, wordNGrams: ClosedRange<Int> = 1...2, charNGrams: ClosedRange<Int>? = 3...5, maxCharacters: Int = 0) {
            self.dimension = dimension
            self.wordNGrams = wordNGrams
            self.charNGrams = charNGrams
            self.maxCharacters = maxCharacters
        }
    }

    public let configuration: Configuration
    /// Per-bucket inverse document frequency, `ln((1+N)/(1+df)) + 1`.
    public private(set) var idf: [Float]

    public var dimension: Int { configuration.dimension }

    /// An encoder with uniform IDF (call `fit` to learn it from a corpus).
    public init(configuration: Configuration = Configuration()) {
        precondition(configuration.dimension >= 1, "dimension must be positive")
        self.configuration = configuration
        idf = Array(repeating: 1, count: configuration.dimension)
    }

    /// An encoder with a previously fitted IDF (e.g. read from a router file).
    public init(configuration: Configuration, idf: [Float]) throws {
        guard idf.count == configuration.dimension else {
            throw EncoderError.dimensionMismatch(expected: configuration.dimension, got: idf.count, what: "IDF vector")
        }
        guard idf.allSatisfy({ $0.isFinite }) else { throw EncoderError.nonFinite("IDF vector") }
        self.configuration = configuration
        self.idf = idf
    }

    /// Learns IDF from `corpus` (usually the training queries).
    public mutating func fit(_ corpus: [String]) {
        idf = Self.idf(from: documentFrequencies(corpus))
    }

    /// Per-bucket document counts of `corpus`: additive, so a federation can fit one IDF from the
    /// sum over clients without any client revealing a text.
    public func documentFrequencies(_ corpus: [String]) -> DocumentFrequencies {
        let dim = dimension
        var df = [Int](repeating: 0, count: dim)
        let snapshot = self
        let perDoc = Self.parallelMap(corpus) { Set(snapshot.hashedFeatures($0).map { snapshot.bucket($0) }) }
        for buckets in perDoc { for b in buckets { df[b] += 1 } }
        return DocumentFrequencies(documents: corpus.count, counts: df)
    }

    /// An encoder whose IDF comes from pooled document frequencies (same as `fit` on the union).
    public init(configuration: Configuration, documentFrequencies df: DocumentFrequencies) throws {
        guard df.counts.count == configuration.dimension else {
            throw EncoderError.dimensionMismatch(expected: configuration.dimension, got: df.counts.count, what: "document-frequency vector")
        }
        guard df.documents >= 0, df.counts.allSatisfy({ $0 >= 0 && $0 <= df.documents }) else {
            throw EncoderError.nonFinite("document frequencies (negative or above the document count)")
        }
        try self.init(configuration: configuration, idf: Self.idf(from: df))
    }

    static func idf(from df: DocumentFrequencies) -> [Float] {
        let n = Float(df.documents)
        return df.counts.map { logf((1 + n) / (1 + Float($0))) + 1 }
    }

    public var fingerprint: String {
        var h = FNV1a()
        h.combine("hashed-tfidf-v1")
        h.combine("\(configuration.dimension) \(configuration.wordNGrams) \(String(describing: configuration.charNGrams)) \(configuration.maxCharacters)")
        h.combine(idf)
        return "hashed-tfidf-\(configuration.dimension)-\(h.hex)"
    }

    public func encode(_ texts: [String]) -> Matrix {
        let dim = dimension
        let rows = Self.parallelMap(texts) { self.encodeOne($0) }
        var out = Matrix(rows: texts.count, cols: dim)
        for (r, v) in rows.enumerated() { out.data.replaceSubrange((r * dim)..<((r + 1) * dim), with: v) }
        return out
    }

    /// The bucket of a feature hash, `h mod dimension`: a mask when the dimension is a power of two (the
    /// default 1024; the same buckets, without a 64-bit division per n-gram), else the division.
    @inline(__always) func bucket(_ h: UInt64) -> Int {
        let d = UInt64(configuration.dimension)
        return d & (d &- 1) == 0 ? Int(h & (d &- 1)) : Int(h % d)
    }

    func encodeOne(_ text: String) -> [Float] {
        let dim = dimension
        // Per bucket: how many features hashed there, and the sign of the first one.
        var count = [Float](repeating: 0, count: dim)
        var sign = [Float](repeating: 0, count: dim)
        for h in hashedFeatures(text) {
            let bucket = bucket(h)
            if count[bucket] == 0 { sign[bucket] = (h >> 63) == 0 ? 1 : -1 }
            count[bucket] += 1
        }
        var v = [Float](repeating: 0, count: dim)
        for bucket in 0..<dim where count[bucket] > 0 {
            v[bucket] = sign[bucket] * (1 + logf(count[bucket])) * idf[bucket]
        }
        var norm: Float = 0
        for x in v { norm += x * x }
        norm = norm.squareRoot()
        if norm > 0 { for i in v.indices { v[i] /= norm } }
        return v
    }

    /// 64-bit hashes of every n-gram feature of `text`, by the byte path (`UTF8FeatureHasher`), which gives
    /// the same hashes as `hashedFeaturesByCharacter` without building a `Character` (outside the stretches
    /// around non-ASCII bytes) or an array per word or n-gram.
    func hashedFeatures(_ text: String) -> [UInt64] {
        var t = truncated(text)
        return t.withUTF8 { UTF8FeatureHasher.hashes(of: $0, configuration: configuration) }
    }

    /// The Unicode-aware path, the definition the byte path reproduces: lower-cased `Character`s,
    /// `Character` properties, arrays per word.
    func hashedFeaturesByCharacter(_ text: String) -> [UInt64] {
        let words = Self.tokenize(text)
        var out: [UInt64] = []
        out.reserveCapacity(words.count * 8)
        for n in configuration.wordNGrams where n >= 1 && words.count >= n {
            for start in 0...(words.count - n) {
                var h = FNV1a()
                h.combine(byte: UInt8(truncatingIfNeeded: n))
                h.combine(byte: 0x57)  // 'W'
                for w in words[start..<(start + n)] { h.combine(bytes: w); h.combine(byte: 0x20) }
                out.append(h.value)
            }
        }
        if let charRange = configuration.charNGrams {
            for w in words {
                let padded = [0x20] + w + [0x20]
                for n in charRange where padded.count >= n {
                    for start in 0...(padded.count - n) {
                        var h = FNV1a()
                        h.combine(byte: UInt8(truncatingIfNeeded: n))
                        h.combine(byte: 0x43)  // 'C'
                        h.combine(bytes: padded[start..<(start + n)])
                        out.append(h.value)
                    }
                }
            }
        }
        return out
    }

    /// Characters featurised at most, whatever the configuration says (`maxCharacters` 0 means
    /// this limit): a longer text keeps its first and last halves, so encoding cost is bounded.
    public static let featurizedCharacterLimit = 65_536

    /// The text as featurised: at most `maxCharacters` (or `featurizedCharacterLimit`) characters,
    /// head and tail halves joined by a space. Counting stops at the limit, so a huge text costs
    /// no more than a long one.
    func truncated(_ text: String) -> String {
        let configured = configuration.maxCharacters
        let limit = configured > 0 ? min(configured, Self.featurizedCharacterLimit) : Self.featurizedCharacterLimit
        guard text.utf8.count > limit, text.index(text.startIndex, offsetBy: limit, limitedBy: text.endIndex).map({ $0 < text.endIndex }) == true else {
            return text
        }
        return String(text.prefix(limit / 2)) + " " + String(text.suffix(limit - limit / 2))
    }

    /// Lower-cased alphanumeric runs as UTF-8 bytes; every other character separates words
    /// (punctuation symbols are kept as one-character words, so code and maths keep their signal).
    static func tokenize(_ text: String) -> [[UInt8]] {
        var words: [[UInt8]] = []
        var current = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber {
                current.append(ch)
            } else {
                if !current.isEmpty { words.append(Array(current.utf8)); current = "" }
                if ch.isPunctuation || ch.isSymbol { words.append(Array(String(ch).utf8)) }
            }
        }
        if !current.isEmpty { words.append(Array(current.utf8)) }
        return words
    }

    /// Order-preserving parallel map over up to all cores.
    static func parallelMap<T: Sendable>(_ input: [String], _ transform: @Sendable (String) -> T) -> [T] {
        let chunk = 32
        // One chunk (a gateway routing one query): on this thread, without dispatching.
        if input.count <= chunk { return input.map(transform) }
        let chunks = (input.count + chunk - 1) / chunk
        let results = ResultSlots<T>(count: input.count)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            for i in (c * chunk)..<min(input.count, (c + 1) * chunk) { results.set(i, transform(input[i])) }
        }
        return results.values()
    }
}

/// Write-once slots filled from `concurrentPerform`; each index is written by exactly one worker.
///
/// The slots are one buffer allocated up front and written through its pointer. (An array property
/// written with `withUnsafeMutableBufferPointer` from several threads is not safe: the array is
/// moved out of the property for the length of each call, so concurrent writers could lose each
/// other's values — seen as a nil slot and a trap in CI.)
final class ResultSlots<T>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<T?>
    init(count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil)
    }
    deinit {
        _ = storage.deinitialize()
        storage.deallocate()
    }
    func set(_ i: Int, _ value: T) { storage[i] = value }
    func values() -> [T] { storage.map { $0! } }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// Errors from building or loading an encoder.
public enum EncoderError: Error, CustomStringConvertible, Equatable {
    case dimensionMismatch(expected: Int, got: Int, what: String)
    case nonFinite(String)
    case unknownEncoder(String)

    public var description: String {
        switch self {
        case .dimensionMismatch(let e, let g, let what): return "\(what) has dimension \(g), expected \(e)"
        case .nonFinite(let what): return "\(what) contains NaN or infinity"
        case .unknownEncoder(let name): return "unknown encoder '\(name)'"
        }
    }
}

/// How many documents contain each hashed bucket, and how many documents there were.
public struct DocumentFrequencies: Sendable, Codable, Equatable {
    public var documents: Int
    public var counts: [Int]

    public init(documents: Int, counts: [Int]) {
        self.documents = documents
        self.counts = counts
    }

    public static func + (a: DocumentFrequencies, b: DocumentFrequencies) -> DocumentFrequencies {
        precondition(a.counts.count == b.counts.count, "document frequencies of different dimensions")
        return DocumentFrequencies(documents: a.documents + b.documents, counts: zip(a.counts, b.counts).map { $0 + $1 })
    }
}
