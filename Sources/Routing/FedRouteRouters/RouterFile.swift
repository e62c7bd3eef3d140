import FedRouteEmbedding
import FedRouteFeatures
import FedRouteNumerics
import Foundation

/// What a router file records about a MiniLM encoder.
struct MiniLMSettings: Codable {
    var maxTokens: Int
    var truncation: WordPieceTokenizer.Truncation
    var fingerprint: String
}

/// The router file: safetensors with fedroute metadata (documented in the README's Routers section).
///
/// Metadata keys: `format` = `fedroute-router`, `version` = `1`, `kind` (the `RouterFamily`),
/// `models` (JSON array), `encoder.kind` and `encoder` (JSON encoder configuration), plus the
/// family's own keys. Tensors: `encoder.idf`, and the family's weights or statistics
/// (`StorableRouter.store(in:)` of each family documents its part).
public enum RouterFile {
    public static let format = "fedroute-router"
    public static let version = 1

    public struct LoadError: Error, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    public static func save(_ pipeline: RoutingPipeline, to path: String, extraMetadata: [String: String] = [:]) throws {
        var contents = RouterFileContents(path: path, metadata: extraMetadata)
        contents.metadata["format"] = format
        contents.metadata["version"] = String(version)
        contents.metadata["kind"] = pipeline.router.family.rawValue
        try contents.setJSON(pipeline.router.models, for: "models")
        contents.metadata["encoder.kind"] = pipeline.encoder.kind
        switch pipeline.encoder {
        case .hashed(let e):
            try contents.setJSON(e.configuration, for: "encoder")
            contents.add(Tensor(name: "encoder.idf", shape: [e.dimension], values: e.idf))
        case .minilm(let e):
            // The weights stay in their own files; the fingerprint ties the router to them.
            try contents.setJSON(MiniLMSettings(maxTokens: e.maxTokens, truncation: e.truncation, fingerprint: e.fingerprint), for: "encoder")
        }
        try pipeline.router.base.store(in: &contents)
        if let gate = pipeline.safety { try contents.setJSON(gate, for: "safety.gate") }
        try SafeTensors.write(tensors: contents.tensors, metadata: contents.metadata, to: path)
    }

    /// Loads a router file. A router trained on MiniLM features rebuilds its encoder from the
    /// weights in `minilmDirectory` and checks that they are the ones it was trained with.
    public static func load(path: String, minilmDirectory: String = MiniLMEncoder.configuredDirectory) throws -> RoutingPipeline {
        let (tensors, meta) = try SafeTensors.read(path: path)
        let contents = RouterFileContents(path: path, metadata: meta, tensors: tensors.keys.sorted().map { tensors[$0]! })
        guard meta["format"] == format else { throw contents.failure("not a fedroute router file (format '\(meta["format"] ?? "none")')") }
        guard meta["version"] == String(version) else {
            throw contents.failure("router file version \(meta["version"] ?? "none") is not supported by this fedroute (reads version \(version))")
        }
        guard let family = meta["kind"].flatMap(RouterFamily.init(rawValue:)) else {
            throw contents.failure("unknown router kind '\(meta["kind"] ?? "none")' (known: \(RouterFamily.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let models = try contents.json("models", as: [String].self)
        guard !models.isEmpty, Set(models).count == models.count else {
            let repeated = Dictionary(grouping: models, by: { $0 }).filter { $1.count > 1 }.keys.sorted()
            throw contents.failure(models.isEmpty ? "metadata 'models' lists no model" : "metadata 'models' names \(repeated) more than once")
        }
        let encoder = try loadEncoder(contents, minilmDirectory: minilmDirectory)
        let router: AnyRouter
        do {
            router = AnyRouter(try family.implementation.load(from: contents, models: models))
        } catch let e as LoadError { throw e } catch { throw contents.failure("\(error)") }
        let safety = try contents.metadata["safety.gate"].map { _ in try contents.json("safety.gate", as: SafetyGate.self) }
        if let problem = safety?.problem(models: models.count) { throw contents.failure("metadata 'safety.gate': \(problem)") }
        do { return try RoutingPipeline(encoder: encoder, router: router, safety: safety) } catch { throw contents.failure("\(error)") }
    }

    static func loadEncoder(_ contents: RouterFileContents, minilmDirectory: String) throws -> TextEncoder {
        switch contents.metadata["encoder.kind"] ?? "hashed-tfidf" {
        case "hashed-tfidf":
            let configuration = try contents.json("encoder", as: HashedTFIDFEncoder.Configuration.self)
            let idf = try contents.tensor("encoder.idf", shape: [configuration.dimension]).values
            do { return .hashed(try HashedTFIDFEncoder(configuration: configuration, idf: idf)) } catch { throw contents.failure("\(error)") }
        case "minilm":
            let settings = try contents.json("encoder", as: MiniLMSettings.self)
            let e: MiniLMEncoder
            do { e = try MiniLMEncoder(directory: minilmDirectory, maxTokens: settings.maxTokens, truncation: settings.truncation) } catch {
                throw contents.failure("its MiniLM encoder cannot be loaded: \(error)")
            }
            guard e.fingerprint == settings.fingerprint else {
                throw contents.failure("trained with MiniLM weights \(settings.fingerprint), but \(minilmDirectory) holds \(e.fingerprint)")
            }
            return .minilm(e)
        case let other:
            throw contents.failure("unknown encoder kind '\(other)'")
        }
    }
}
