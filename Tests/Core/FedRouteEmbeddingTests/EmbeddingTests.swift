@testable import FedRouteEmbedding
import FedRouteNumerics
import Foundation
import Testing

@Suite struct WordPieceTests {
    static let tokenizer = try! WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "resume", "cafe", "!", "—", "中", "文", "a", "##b"])

    @Test func basicTokenizationFollowsBert() {
        #expect(WordPieceTokenizer.basicTokens("Résumé\tCAFÉ!  a—b") == ["resume", "cafe", "!", "a", "—", "b"])
        #expect(WordPieceTokenizer.basicTokens("中文ab") == ["中", "文", "ab"])
        #expect(WordPieceTokenizer.basicTokens("x\u{0}y\u{200B}z") == ["xyz"])   // NUL and zero-width (Cf) dropped
        #expect(WordPieceTokenizer.basicTokens("don't") == ["don", "'", "t"])
    }

    @Test func wordPiecesUseLongestMatchAndContinuations() {
        let t = Self.tokenizer
        #expect(t.wordPieces("unaffable") == ["un", "##aff", "##able"])
        #expect(t.wordPieces("ab") == ["a", "##b"])
        #expect(t.wordPieces("unx") == ["[UNK]"])
        #expect(t.wordPieces(String(repeating: "a", count: 101)) == ["[UNK]"])
        #expect(t.encode("Résumé café!", maxLength: 512) == [2, 7, 8, 9, 3])
        #expect(t.encode("un un un un", maxLength: 4) == [2, 4, 4, 3])
    }

    @Test func aVocabularyWithoutSpecialTokensIsRejected() {
        #expect(throws: EmbeddingError.self) { try WordPieceTokenizer(vocabulary: ["a", "b"]) }
        #expect(throws: EmbeddingError.self) { try MiniLMEncoder(directory: "/nonexistent/minilm") }
    }
}

/// Against the reference outputs in ../shared (needs the model: `scripts/fetch-minilm.sh`, which `.ci/run` calls).
@Suite(.enabled(if: FileManager.default.fileExists(atPath: MiniLMEncoder.configuredDirectory + "/model.safetensors")
                && FileManager.default.fileExists(atPath: "../shared/data/embedding/minilm_golden.json")))
struct MiniLMGoldenTests {
    struct Golden: Decodable {
        var text: String
        var tokens: [String]
        var ids: [Int]
        var embedding: [Double]
    }

    @Test func tokensAndEmbeddingsMatchTheReference() throws {
        let golden = try JSONDecoder().decode([Golden].self, from: Data(contentsOf: URL(fileURLWithPath: "../shared/data/embedding/minilm_golden.json")))
        let encoder = try MiniLMEncoder(directory: MiniLMEncoder.configuredDirectory)
        #expect(encoder.dimension == 384)
        let embeddings = encoder.encode(golden.map(\.text))
        for (i, g) in golden.enumerated() {
            #expect(encoder.tokenIDs(g.text) == g.ids, "ids of \(g.text)")
            #expect(["[CLS]"] + encoder.tokenizer.wordPieces(g.text) + ["[SEP]"] == g.tokens)
            let e = embeddings.row(i).map(Double.init)
            let dot = zip(e, g.embedding).reduce(0) { $0 + $1.0 * $1.1 }
            let norms = (e.reduce(0) { $0 + $1 * $1 } * g.embedding.reduce(0) { $0 + $1 * $1 }).squareRoot()
            #expect(dot / norms >= 0.99999, "cosine \(dot / norms) for \(g.text)")
        }
        // Batch composition does not change a sentence's embedding.
        let single = encoder.encode([golden[2].text])
        #expect(zip(single.row(0), embeddings.row(2)).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// Both linear kernels (the weights packed once, or GEMM per call) give the same embeddings to 1e-5, and
    /// the packed one is the portable GEMM's bits.
    @Test func bothLinearKernelsGiveTheSameEmbeddings() throws {
        let golden = try JSONDecoder().decode([Golden].self, from: Data(contentsOf: URL(fileURLWithPath: "../shared/data/embedding/minilm_golden.json")))
        let texts = golden.map(\.text)
        let packed = try MiniLMEncoder(directory: MiniLMEncoder.configuredDirectory, linearKernel: .packed(.native))
        let gemm = try MiniLMEncoder(directory: MiniLMEncoder.configuredDirectory, linearKernel: .gemm)
        #expect(packed.model.linearKernel == .packed(.native) && gemm.model.linearKernel == .gemm)
        let a = packed.encode(texts), b = gemm.encode(texts)
        #expect(a.rows == texts.count && b.rows == texts.count)
        for i in 0..<a.rows {
            let worst = zip(a.row(i), b.row(i)).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-5, "\(texts[i]): packed and GEMM differ by \(worst)")
        }
    }

    /// The forward pass gives the same bits on a `SpinningTeam` (what `embed` runs), on `concurrentPerform` and on
    /// one thread, for short sequences (the fused attention kernel) and long ones (attention as GEMMs) in one batch.
    @Test func everyExecutorGivesTheSameEmbeddings() throws {
        let golden = try JSONDecoder().decode([Golden].self, from: Data(contentsOf: URL(fileURLWithPath: "../shared/data/embedding/minilm_golden.json")))
        let long = golden.map(\.text).joined(separator: " ")
        for kernel in [BertEncoder.LinearKernel.packed(.native), .gemm] {
            let encoder = try MiniLMEncoder(directory: MiniLMEncoder.configuredDirectory, linearKernel: kernel)
            let ids = golden.map { encoder.tokenIDs($0.text) } + [encoder.tokenIDs(long), encoder.tokenIDs(long + " " + long)]
            #expect(ids.contains { $0.count > 64 })
            let team = encoder.model.embed(ids)
            #expect(team.data == encoder.model.embed(ids, on: DispatchExecutor()).data, "\(kernel): team and Dispatch differ")
            let inline = encoder.model.embed(ids, on: InlineExecutor())
            let worst = zip(team.data, inline.data).map { abs($0 - $1) }.max() ?? 0
            // The packed products are the same bits for any split; OpenBLAS may block one call differently from halves.
            if case .packed = kernel { #expect(worst == 0, "\(kernel): one thread differs by \(worst)") } else { #expect(worst < 1e-6) }
        }
    }
}
