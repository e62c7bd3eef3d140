import FedRouteEmbedding
import FedRouteFeatures
import FedRouteNumerics
import Foundation

/// Which router family a file or model holds.
public enum RouterKind: String, Sendable, Codable, CaseIterable {
    case mlp, kmeans, knn
}

/// A trained router of any family.
public enum AnyRouter: Router, Equatable {
    case mlp(MLPRouter)
    case kmeans(KMeansRouter)
    case knn(KNNRouter)

    public var kind: RouterKind {
        switch self { case .mlp: .mlp; case .kmeans: .kmeans; case .knn: .knn }
    }

    var base: any Router {
        switch self { case .mlp(let r): r; case .kmeans(let r): r; case .knn(let r): r }
    }

    public var models: [String] { base.models }
    public var inputDimension: Int { base.inputDimension }
    public func predict(features: Matrix) throws -> RouterPredictions { try base.predict(features: features) }
}

/// A router together with the encoder that turns text into its features: what `fedroute route`
/// and the gateway load.
public struct RoutingPipeline: Sendable, Equatable {
    public var encoder: TextEncoder
    public var router: AnyRouter

    public init(encoder: HashedTFIDFEncoder, router: AnyRouter) throws {
        try self.init(encoder: .hashed(encoder), router: router)
    }

    public init(encoder: TextEncoder, router: AnyRouter) throws {
        guard encoder.dimension == router.inputDimension else {
            throw RouterError.dimensionMismatch(expected: router.inputDimension, got: encoder.dimension)
        }
        self.encoder = encoder
        self.router = router
    }

    /// Predictions for raw query texts.
    public func predict(texts: [String]) throws -> RouterPredictions {
        try router.predict(features: encoder.encode(texts))
    }
}

/// What a router file records about a MiniLM encoder.
struct MiniLMSettings: Codable {
    var maxTokens: Int
    var truncation: WordPieceTokenizer.Truncation
    var fingerprint: String
}

/// The router file: safetensors with fedroute metadata (documented in the README's Routers section).
///
/// Metadata keys: `format` = `fedroute-router`, `version` = `1`, `kind`, `models` (JSON array),
/// `encoder` (JSON encoder configuration), plus `mlp.architecture` and `mlp.cost_normalizer` (JSON)
/// or `knn.k`. Tensors: `encoder.idf`, and the family's weights or statistics.
public enum RouterFile {
    public static let format = "fedroute-router"
    public static let version = 1

    public struct LoadError: Error, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    public static func save(_ pipeline: RoutingPipeline, to path: String, extraMetadata: [String: String] = [:]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func json<T: Encodable>(_ v: T) throws -> String { String(decoding: try encoder.encode(v), as: UTF8.self) }
        var meta = extraMetadata
        meta["format"] = format
        meta["version"] = String(version)
        meta["kind"] = pipeline.router.kind.rawValue
        meta["models"] = try json(pipeline.router.models)
        meta["encoder.kind"] = pipeline.encoder.kind
        var tensors: [Tensor] = []
        switch pipeline.encoder {
        case .hashed(let e):
            meta["encoder"] = try json(e.configuration)
            tensors.append(Tensor(name: "encoder.idf", shape: [e.dimension], values: e.idf))
        case .minilm(let e):
            // The weights stay in their own files; the fingerprint ties the router to them.
            meta["encoder"] = try json(MiniLMSettings(maxTokens: e.maxTokens, truncation: e.truncation, fingerprint: e.fingerprint))
        }
        switch pipeline.router {
        case .mlp(let r):
            meta["mlp.architecture"] = try json(r.network.architecture)
            meta["mlp.cost_normalizer"] = try json(r.costNormalizer)
            tensors += r.network.parameters.map { Tensor(name: "mlp." + $0.name, shape: $0.shape, values: $0.values) }
        case .kmeans(let r):
            let s = r.statistics
            tensors.append(Tensor(name: "kmeans.centroids", shape: [r.centroids.rows, r.centroids.cols], values: r.centroids.data))
            // Counts and sums are stored as float32; sums are kept as means × count to bound rounding.
            tensors.append(Tensor(name: "kmeans.count", shape: [s.clusters, s.models], values: s.count.map(Float.init)))
            tensors.append(Tensor(name: "kmeans.score_mean", shape: [s.clusters, s.models], values: zip(s.scoreSum, s.count).map { Float($1 > 0 ? $0 / $1 : 0) }))
            tensors.append(Tensor(name: "kmeans.cost_mean", shape: [s.clusters, s.models], values: zip(s.costSum, s.count).map { Float($1 > 0 ? $0 / $1 : 0) }))
        case .knn(let r):
            meta["knn.k"] = String(r.k)
            let m = r.models.count
            tensors.append(Tensor(name: "knn.reference", shape: [r.reference.rows, r.reference.cols], values: r.reference.data))
            tensors.append(Tensor(name: "knn.score", shape: [r.reference.rows, m], values: r.scores.map(Float.init)))
            tensors.append(Tensor(name: "knn.cost", shape: [r.reference.rows, m], values: r.costs.map(Float.init)))
            tensors.append(Tensor(name: "knn.observed", shape: [r.reference.rows, m], values: r.observed.map { $0 ? 1 : 0 }))
        }
        try SafeTensors.write(tensors: tensors, metadata: meta, to: path)
    }

    /// Loads a router file. A router trained on MiniLM features rebuilds its encoder from the
    /// weights in `minilmDirectory` and checks that they are the ones it was trained with.
    public static func load(path: String, minilmDirectory: String = MiniLMEncoder.configuredDirectory) throws -> RoutingPipeline {
        let (tensors, meta) = try SafeTensors.read(path: path)
        func fail(_ m: String) -> LoadError { LoadError(path: path, message: m) }
        guard meta["format"] == format else { throw fail("not a fedroute router file (format '\(meta["format"] ?? "none")')") }
        guard meta["version"] == String(version) else {
            throw fail("router file version \(meta["version"] ?? "none") is not supported by this fedroute (reads version \(version))")
        }
        guard let kind = meta["kind"].flatMap(RouterKind.init(rawValue:)) else { throw fail("unknown router kind '\(meta["kind"] ?? "none")'") }
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ key: String, as: T.Type) throws -> T {
            guard let s = meta[key], let v = try? decoder.decode(T.self, from: Data(s.utf8)) else { throw fail("metadata '\(key)' is missing or malformed") }
            return v
        }
        func tensor(_ name: String, shape: [Int]) throws -> Tensor {
            guard let t = tensors[name] else { throw fail("tensor '\(name)' is missing") }
            guard t.shape == shape else { throw fail("tensor '\(name)' has shape \(t.shape), expected \(shape)") }
            return t
        }
        let models = try decode("models", as: [String].self)
        let encoder: TextEncoder
        switch meta["encoder.kind"] ?? "hashed-tfidf" {
        case "hashed-tfidf":
            let encoderConfig = try decode("encoder", as: HashedTFIDFEncoder.Configuration.self)
            do { encoder = .hashed(try HashedTFIDFEncoder(configuration: encoderConfig, idf: try tensor("encoder.idf", shape: [encoderConfig.dimension]).values)) } catch let e as LoadError { throw e } catch { throw fail("\(error)") }
        case "minilm":
            let settings = try decode("encoder", as: MiniLMSettings.self)
            let e: MiniLMEncoder
            do { e = try MiniLMEncoder(directory: minilmDirectory, maxTokens: settings.maxTokens, truncation: settings.truncation) } catch { throw fail("its MiniLM encoder cannot be loaded: \(error)") }
            guard e.fingerprint == settings.fingerprint else {
                throw fail("trained with MiniLM weights \(settings.fingerprint), but \(minilmDirectory) holds \(e.fingerprint)")
            }
            encoder = .minilm(e)
        case let other:
            throw fail("unknown encoder kind '\(other)'")
        }
        let router: AnyRouter
        do {
            switch kind {
            case .mlp:
                let architecture = try decode("mlp.architecture", as: MLPArchitecture.self)
                let normalizer = try decode("mlp.cost_normalizer", as: CostNormalizer.self)
                let names = MLPNetwork(architecture: MLPArchitecture(inputDimension: 1, hiddenDimension: 1, trunkLayers: architecture.trunkLayers, modelCount: 1), seed: 0).parameters.map(\.name)
                let params = try names.map { name -> Tensor in
                    guard let t = tensors["mlp." + name] else { throw fail("tensor 'mlp.\(name)' is missing") }
                    return Tensor(name: name, shape: t.shape, values: t.values)
                }
                router = .mlp(try MLPRouter(models: models, network: try MLPNetwork(architecture: architecture, parameters: params), costNormalizer: normalizer))
            case .kmeans:
                guard let c = tensors["kmeans.centroids"], c.shape.count == 2 else { throw fail("tensor 'kmeans.centroids' is missing or not 2-D") }
                let k = c.shape[0]
                let count = try tensor("kmeans.count", shape: [k, models.count]).values.map(Double.init)
                let scoreMean = try tensor("kmeans.score_mean", shape: [k, models.count]).values.map(Double.init)
                let costMean = try tensor("kmeans.cost_mean", shape: [k, models.count]).values.map(Double.init)
                var stats = ClusterStatistics(clusters: k, models: models.count)
                stats.count = count
                stats.scoreSum = zip(scoreMean, count).map(*)
                stats.costSum = zip(costMean, count).map(*)
                router = .kmeans(try KMeansRouter(models: models, centroids: Matrix(rows: k, cols: c.shape[1], data: c.values), statistics: stats))
            case .knn:
                guard let ref = tensors["knn.reference"], ref.shape.count == 2 else { throw fail("tensor 'knn.reference' is missing or not 2-D") }
                guard let k = meta["knn.k"].flatMap(Int.init) else { throw fail("metadata 'knn.k' is missing") }
                let shape = [ref.shape[0], models.count]
                router = .knn(try KNNRouter(
                    models: models, k: k, reference: Matrix(rows: ref.shape[0], cols: ref.shape[1], data: ref.values),
                    scores: try tensor("knn.score", shape: shape).values.map(Double.init),
                    costs: try tensor("knn.cost", shape: shape).values.map(Double.init),
                    observed: try tensor("knn.observed", shape: shape).values.map { $0 != 0 }))
            }
        } catch let e as LoadError { throw e } catch { throw fail("\(error)") }
        do { return try RoutingPipeline(encoder: encoder, router: router) } catch { throw fail("\(error)") }
    }
}
