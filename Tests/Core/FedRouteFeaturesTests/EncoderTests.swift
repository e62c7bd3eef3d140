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

/// The byte-level ASCII path and the Unicode-aware path give the same hashes, so the features of every
/// router file stay what they were.
@Suite struct ASCIIFeatureHasherTests {
    func bothPaths(_ text: String, _ configuration: HashedTFIDFEncoder.Configuration) -> (bytes: [UInt64]?, characters: [UInt64]) {
        var t = text
        let encoder = HashedTFIDFEncoder(configuration: configuration)
        return (t.withUTF8 { ASCIIFeatureHasher.hashes(of: $0, configuration: configuration) }, encoder.hashedFeaturesByCharacter(text))
    }

    @Test func randomASCIIWithEveryCharacterClass() {
        var rng = SeededRandom(seed: 31)
        let alphabet = Array("aZ09 \t\r\n\r\n!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u{0}\u{1B}\u{7F}Qq7") 
        for configuration in [HashedTFIDFEncoder.Configuration(), .init(dimension: 64, wordNGrams: 1...3, charNGrams: 2...6)] {
            for _ in 0..<300 {
                let text = String((0..<rng.nextInt(below: 120)).map { _ in alphabet[rng.nextInt(below: alphabet.count)] })
                let (bytes, characters) = bothPaths(text, configuration)
                #expect(bytes == characters, Comment(rawValue: "text \(text.debugDescription)"))
            }
        }
    }

    @Test func bundledQueriesAndNonASCII() throws {
        let configuration = HashedTFIDFEncoder.Configuration()
        var texts = ["", " ", "A", "Hello, World!", "x=1+2; print(x)", "Line one\r\nLine two"]
        let path = "../shared/data/routerbench-3task"
        if FileManager.default.fileExists(atPath: path) {
            let table = try DatasetLoader.load(path: path).table
            texts += table.queries.prefix(400).map(\.text)
        }
        var ascii = 0
        for text in texts {
            let (bytes, characters) = bothPaths(text, configuration)
            if let bytes {
                ascii += 1
                #expect(bytes == characters, Comment(rawValue: "text \(text.prefix(80).debugDescription)"))
            }
        }
        #expect(ascii >= 6)
        // Non-ASCII text is left to the Unicode path.
        #expect(bothPaths("Straße café", configuration).bytes == nil)
        let encoder = HashedTFIDFEncoder(configuration: configuration)
        #expect(encoder.hashedFeatures("Straße café") == encoder.hashedFeaturesByCharacter("Straße café"))
    }
}
