import ArgumentParser
import FedRouteEmbedding
import FedRouteFeatures
import FedRouteNumerics

/// Which text encoder turns queries into features.
enum EncoderChoice: String, ExpressibleByArgument, CaseIterable {
    case hashed, minilm
}

/// Text encoder settings and the feature cache.
struct EncoderOptions: ParsableArguments {
    @Option(name: .long, help: "Query encoder: hashed (TF-IDF fitted on the training queries) or minilm (all-MiniLM-L6-v2, native).")
    var encoder: EncoderChoice = .hashed

    @Option(name: .long, help: "Hashed TF-IDF dimension (≥ 256 recommended).")
    var dimension = 1024

    @Option(name: .long, help: "Folder with the MiniLM model.safetensors and vocab.txt (scripts/fetch-minilm.sh; default $FEDROUTE_MINILM or .fedroute-models/all-MiniLM-L6-v2).")
    var minilmPath: String?

    @Option(name: .long, help: "MiniLM: most word-piece tokens per query, [CLS] and [SEP] included.")
    var maxTokens = 256

    @Option(name: .long, help: "MiniLM: which end of a long query to keep (head or tail).")
    var truncation: WordPieceTokenizer.Truncation = .head

    @Option(name: .long, help: "Folder for cached query features.")
    var cacheDir = ".fedroute-cache"

    @Flag(name: .long, help: "Do not read or write the feature cache.")
    var noCache = false

    var minilmDirectory: String { minilmPath ?? MiniLMEncoder.configuredDirectory }

    func validate() throws {
        guard dimension >= 16 else { throw ValidationError("--dimension must be at least 16") }
        guard (3...512).contains(maxTokens) else { throw ValidationError("--max-tokens must be in 3...512") }
    }

    /// The configured MiniLM encoder.
    func minilm() throws -> MiniLMEncoder {
        try MiniLMEncoder(directory: minilmDirectory, maxTokens: maxTokens, truncation: truncation)
    }

    /// The encoder for training: hashed TF-IDF fitted on `texts`, or the pretrained MiniLM.
    func fittedEncoder(on texts: [String]) throws -> TextEncoder {
        switch encoder {
        case .hashed:
            var e = HashedTFIDFEncoder(configuration: .init(dimension: dimension))
            e.fit(texts)
            return .hashed(e)
        case .minilm:
            return .minilm(try minilm())
        }
    }

    /// Features of `texts`, from the cache when possible; a progress bar while encoding.
    func features(_ texts: [String], encoder: any QueryEncoder) -> Matrix {
        let bar = ProgressBar(label: "encoding", total: texts.count)
        let progress: (Int, Int) -> Void = { done, _ in bar.update(done) }
        defer { bar.finish() }
        // The transformer is slow enough to report often; hashing is not.
        let chunk = (encoder as? TextEncoder)?.kind == "minilm" || encoder is MiniLMEncoder ? 32 : 4096
        if noCache { return FeatureCache.encode(texts, encoder: encoder, chunk: chunk, progress: progress) }
        let (m, outcome) = FeatureCache(directory: cacheDir).lookUp(texts, encoder: encoder, chunk: chunk, progress: progress)
        switch outcome {
        case .hit: Console.info("features: \(m.rows)×\(m.cols) (cache hit in \(cacheDir))")
        case .stored: Console.info("features: \(m.rows)×\(m.cols) (computed and cached in \(cacheDir))")
        case .notStored(let why): Console.info("features: \(m.rows)×\(m.cols) (computed; not cached: --cache-dir \(cacheDir) cannot be written: \(why))")
        }
        return m
    }
}
