@testable import FedRouteFeatures
import FedRouteData
import FedRouteNumerics
import Foundation
import Testing

@Suite struct HashedTFIDFTests {
    let corpus = ["Write a python function to sort a list", "What is the capital of France?",
                  "Write a python function to reverse a string", "Which planet is largest?"]

    @Test func deterministicNormalisedAndDiscriminative() throws {
        var e = HashedTFIDFEncoder(configuration: .init(dimension: 256))
        e.fit(corpus)
        let x = e.encode(corpus + [""])
        #expect(x.rows == 5 && x.cols == 256)
        for r in 0..<4 { #expect(abs(x.rowSquaredNorms()[r] - 1) < 1e-5) }
        #expect(x.rowSquaredNorms()[4] == 0)
        var e2 = HashedTFIDFEncoder(configuration: .init(dimension: 256))
        e2.fit(corpus)
        #expect(e2.encode(corpus) == e.encode(corpus) && e2.fingerprint == e.fingerprint)
        let sims = x.multiplied(by: x, transposeOther: true)
        #expect(sims[0, 2] > sims[0, 1] && sims[0, 2] > sims[0, 3])
    }

    @Test func idfMismatchIsAnError() {
        #expect(throws: EncoderError.self) { try HashedTFIDFEncoder(configuration: .init(dimension: 8), idf: [1, 2]) }
        #expect(throws: EncoderError.self) { try HashedTFIDFEncoder(configuration: .init(dimension: 2), idf: [1, .nan]) }
    }

    @Test func cacheHitsAndRejectsDamagedFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fr-cache-\(UUID().uuidString)").path
        var e = HashedTFIDFEncoder(configuration: .init(dimension: 64))
        e.fit(corpus)
        let cache = FeatureCache(directory: dir)
        let (a, hitA) = cache.features(of: corpus, encoder: e)
        let (b, hitB) = cache.features(of: corpus, encoder: e)
        #expect(!hitA && hitB && a == b)
        let file = (dir as NSString).appendingPathComponent(FeatureCache.key(encoder: e, texts: corpus) + ".f32")
        try Data("FRF1broken".utf8).write(to: URL(fileURLWithPath: file))
        let (c, hitC) = cache.features(of: corpus, encoder: e)
        #expect(!hitC && c == a)
    }
}

/// The byte path and the Unicode-aware path give the same hashes, so the features of every router file stay
/// what they were.
@Suite struct UTF8FeatureHasherTests {
    func bothPaths(_ text: String, _ configuration: HashedTFIDFEncoder.Configuration) -> (bytes: [UInt64], characters: [UInt64]) {
        var t = text
        let encoder = HashedTFIDFEncoder(configuration: configuration)
        return (t.withUTF8 { UTF8FeatureHasher.hashes(of: $0, configuration: configuration) }, encoder.hashedFeaturesByCharacter(text))
    }

    static let configurations = [HashedTFIDFEncoder.Configuration(), .init(dimension: 64, wordNGrams: 1...3, charNGrams: 2...6)]

    @Test func randomASCIIWithEveryCharacterClass() {
        var rng = SeededRandom(seed: 31)
        let alphabet = Array("aZ09 \t\r\n\r\n!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u{0}\u{1B}\u{7F}Qq7")
        for configuration in Self.configurations {
            for _ in 0..<300 {
                let text = String((0..<rng.nextInt(below: 120)).map { _ in alphabet[rng.nextInt(below: alphabet.count)] })
                let (bytes, characters) = bothPaths(text, configuration)
                #expect(bytes == characters, Comment(rawValue: "text \(text.debugDescription)"))
            }
        }
    }

    /// Non-ASCII pieces that test the cuts around them: combining marks after an ASCII letter (one
    /// `Character` with it), a prepended mark before an ASCII digit (U+0600, which joins the digit), emoji
    /// with a joiner and with a skin tone, regional-indicator flags, Hangul jamo, letters that lower-case to
    /// two scalars (İ) or depend on context (Σ), non-ASCII digits, spaces, punctuation and symbols, a
    /// right-to-left mark, and ASCII neighbours of every class, including CR LF around them.
    static let unicodePieces = [
        "e\u{301}", "\u{301}", "\u{0600}", "\u{0600}1", "👩\u{200D}💻", "👍🏽", "🇫🇷", "🇩🇪🇫", "\u{1100}\u{1161}", "İ", "Σ", "ΑΣ", "σς",
        "²", "٣", "Ⅻ", "\u{A0}", "\u{2003}", "’", "‘", "•", "°", "€", "—", "¿", "ß", "Straße", "café", "Ω", "中文", "\u{200F}", "\u{FEFF}",
        "a", "Z", "9", " ", "\r\n", "\r", "\n", "\t", ",", "-", "'", "(", "x", "Qq", "\u{7F}",
    ]

    @Test func randomTextWithNonASCIIPieces() {
        var rng = SeededRandom(seed: 47)
        for configuration in Self.configurations {
            for _ in 0..<400 {
                let text = (0..<rng.nextInt(below: 40)).map { _ in Self.unicodePieces[rng.nextInt(below: Self.unicodePieces.count)] }.joined()
                let (bytes, characters) = bothPaths(text, configuration)
                #expect(bytes == characters, Comment(rawValue: "text \(text.debugDescription)"))
            }
        }
    }

    @Test func bundledQueriesAndHandPickedTexts() throws {
        let configuration = HashedTFIDFEncoder.Configuration()
        var texts = ["", " ", "A", "Hello, World!", "x=1+2; print(x)", "Line one\r\nLine two", "Straße café", "10°C • naïve “quotes” — ok",
                     "e\u{301}t\u{301}e\u{301}", "\u{0600}12 apples", "ΟΔΥΣΣΕΥΣ ran", "İstanbul", "日本語のテキスト and English"]
        let path = "../shared/data/routerbench-3task"
        var nonASCII = 0
        if FileManager.default.fileExists(atPath: path) {
            let table = try DatasetLoader.load(path: path).table
            let queries = table.queries.map(\.text)
            nonASCII = queries.filter { $0.utf8.contains { $0 >= 0x80 } }.count
            texts += queries
        }
        for text in texts {
            let (bytes, characters) = bothPaths(text, configuration)
            #expect(bytes == characters, Comment(rawValue: "text \(text.prefix(80).debugDescription)"))
        }
        // The bundled data has prompts with a '°', a '•' or curly quotes: the case this path is for.
        if FileManager.default.fileExists(atPath: path) { #expect(nonASCII > 0) }
        let encoder = HashedTFIDFEncoder(configuration: configuration)
        #expect(encoder.hashedFeatures("Straße café") == encoder.hashedFeaturesByCharacter("Straße café"))
    }
}
