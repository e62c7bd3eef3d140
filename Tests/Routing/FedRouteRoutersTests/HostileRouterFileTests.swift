import FedRouteData
import FedRouteFeatures
import FedRouteNumerics
@testable import FedRouteRouters
import Foundation
import Testing

/// Router files whose metadata lies (issue 15, items 3 and 11): each is a `RouterFile.LoadError`
/// naming the file and the problem, before anything sized by the metadata is allocated.
@Suite struct HostileRouterFileTests {
    /// A small saved MLP-Router file, its tensors and metadata.
    static func mlpFile() throws -> (path: String, tensors: [String: Tensor], metadata: [String: String]) {
        let (_, t) = try MLPTrainingTests.toyTable(40, seed: 4, sparse: false)
        let texts = t.queries.map { "question \($0.id) \($0.task)" }
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: 16))
        encoder.fit(texts)
        var c = MLPTrainingConfiguration()
        c.hiddenDimension = 4
        c.epochs = 1
        let router = try MLPTrainer.train(features: encoder.encode(texts), table: t, configuration: c)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString).safetensors").path
        try RouterFile.save(try RoutingPipeline(encoder: encoder, router: AnyRouter(router)), to: path)
        let (tensors, metadata) = try SafeTensors.read(path: path)
        return (path, tensors, metadata)
    }

    static func expectLoadError(_ tensors: [String: Tensor], _ metadata: [String: String], at path: String, saying words: String) throws {
        try SafeTensors.write(tensors: Array(tensors.values), metadata: metadata, to: path)
        #expect { _ = try RouterFile.load(path: path) } throws: { error in
            (error as? RouterFile.LoadError)?.path == path && "\(error)".contains(words)
        }
    }

    @Test func absurdArchitecturesAreRefusedBeforeAllocating() throws {
        let (path, tensors, metadata) = try Self.mlpFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var architecture = try JSONDecoder().decode(MLPArchitecture.self, from: Data(metadata["mlp.architecture"]!.utf8))
        for (field, change) in [("hidden", { (a: inout MLPArchitecture) in a.hiddenDimension = 1_000_000_000_000 }),
                                ("layers", { $0.trunkLayers = 1_000_000_000_000 }),
                                ("layers", { $0.trunkLayers = -3 }),
                                ("dimensions", { $0.inputDimension = 0 }),
                                ("dropout", { $0.dropout = 1.5 })] as [(String, (inout MLPArchitecture) -> Void)] {
            var a = architecture
            change(&a)
            var m = metadata
            m["mlp.architecture"] = String(decoding: try JSONEncoder().encode(a), as: UTF8.self)
            try Self.expectLoadError(tensors, m, at: path, saying: "mlp.architecture")
            _ = field
        }
        // Trunk tensors in the file but trunkLayers 0 in the architecture: they belong to no layer.
        architecture.trunkLayers = 0
        var m = metadata
        m["mlp.architecture"] = String(decoding: try JSONEncoder().encode(architecture), as: UTF8.self)
        try Self.expectLoadError(tensors, m, at: path, saying: "do not belong to the architecture in 'mlp.architecture'")
    }

    @Test func nonFiniteWeightsRepeatedModelsAndBadNormalisersAreNamed() throws {
        let (path, tensors, metadata) = try Self.mlpFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var nan = tensors
        nan["mlp.cost_head.bias"]!.values[0] = .nan
        try Self.expectLoadError(nan, metadata, at: path, saying: "MLP tensor cost_head.bias holds NaN or infinity")
        var repeated = metadata
        let models = try JSONDecoder().decode([String].self, from: Data(metadata["models"]!.utf8))
        repeated["models"] = String(decoding: try JSONEncoder().encode([models[0]] + models.dropLast()), as: UTF8.self)
        try Self.expectLoadError(tensors, repeated, at: path, saying: "more than once")
        var normaliser = metadata
        normaliser["mlp.cost_normalizer"] = #"{"mean":[0,0,0],"std":[0,1,1]}"#
        try Self.expectLoadError(tensors, normaliser, at: path, saying: "cost")
    }

    @Test func zeroEpochsIsRefusedInsteadOfSavingAnUntrainedRouter() throws {
        let (x, t) = try MLPTrainingTests.toyTable(20, seed: 1, sparse: false)
        var c = MLPTrainingConfiguration()
        c.epochs = 0
        #expect { _ = try MLPTrainer.train(features: x, table: t, configuration: c) } throws: { "\($0)".contains("untrained") }
        c.epochs = 1
        c.optimizer.learningRate = -1
        #expect { _ = try MLPTrainer.train(features: x, table: t, configuration: c) } throws: { "\($0)".contains("learning rate") }
    }
}
