import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
import FedRouteRouters
import Foundation

/// Router files: the safetensors container, then the router file on top of it (metadata, encoder,
/// family), then a prediction with whatever loaded, as `route`, `eval` and the gateway do.
enum RouterFileFuzzTarget {
    static func run(_ input: Data, in scratch: FuzzScratch) {
        guard let path = try? scratch.write(input, named: "router.safetensors") else { return }
        _ = try? SafeTensors.read(path: path)
        _ = try? SafeTensors.read(path: path, skipNonFloat: true)
        // No MiniLM weights here: a MiniLM router file must fail with an error, not load.
        guard let pipeline = try? RouterFile.load(path: path, minilmDirectory: scratch.directory + "/no-minilm") else { return }
        _ = try? pipeline.predict(texts: ["What is 2 + 2?", "", String(repeating: "long query ", count: 50)])
    }

    /// One small router file of each family, trained on synthetic data with the hashed encoder.
    static func seeds() throws -> [FuzzSeed] {
        let table = try SyntheticData.table(queries: 24, seed: 7)
        let texts = table.queries.map(\.text)
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 8, charNGrams: nil))
        encoder.fit(texts)
        var configuration = RouterTrainingConfiguration()
        configuration.mlp.hiddenDimension = 3
        configuration.mlp.trunkLayers = 1
        configuration.mlp.epochs = 1
        configuration.kmeans = KMeansConfiguration(clusters: 2)
        configuration.knnNeighbors = 2
        let scratch = try FuzzScratch()
        defer { scratch.remove() }
        return try RouterFamily.allCases.map { family in
            let router = try configuration.train(family, features: encoder.encode(texts), table: table, seed: 1)
            let path = scratch.directory + "/\(family.rawValue).safetensors"
            try RouterFile.save(try RoutingPipeline(encoder: encoder, router: router), to: path)
            return FuzzSeed(name: "\(family.rawValue).safetensors", data: try Data(contentsOf: URL(fileURLWithPath: path)))
        }
    }
}
