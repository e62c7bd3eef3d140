@testable import FedRouteFeatures
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
