// swift-tools-version: 6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "fedroute",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fedroute", targets: ["fedroute"]),
        .executable(name: "fedroute-bench", targets: ["fedroute-bench"]),
        .library(name: "FedRouteNumerics", targets: ["FedRouteNumerics"]),
        .library(name: "FedRouteData", targets: ["FedRouteData"]),
        .library(name: "FedRouteFeatures", targets: ["FedRouteFeatures"]),
        .library(name: "FedRouteRouters", targets: ["FedRouteRouters"]),
        .library(name: "FedRouteEvaluation", targets: ["FedRouteEvaluation"]),
        .library(name: "FedRouteEmbedding", targets: ["FedRouteEmbedding"]),
        .library(name: "FedRouteFederation", targets: ["FedRouteFederation"]),
        .library(name: "FedRouteSimulation", targets: ["FedRouteSimulation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
    ],
    targets: [
        // Dense float32 linear algebra (BLAS or portable fallback), seeded RNG, optimisers.
        .target(name: "FedRouteNumerics", swiftSettings: strict),
        // Evaluation records, tables, loaders for every bundled format, the native JSONL format.
        .target(
            name: "FedRouteData",
            dependencies: ["FedRouteNumerics", .product(name: "CSV", package: "CSV.swift")],
            swiftSettings: strict),
        // Query text -> feature vectors (QueryEncoder protocol, hashed TF-IDF, MiniLM as an encoder, on-disk cache).
        .target(name: "FedRouteFeatures", dependencies: ["FedRouteNumerics", "FedRouteEmbedding"], swiftSettings: strict),
        // MLP-, K-Means-, kNN- and baseline routers, the routing rule, persistence.
        .target(
            name: "FedRouteRouters",
            dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding"],
            swiftSettings: strict),
        // Accuracy-cost frontiers, AUC / hull / AIQ, reports and SVG plots.
        .target(
            name: "FedRouteEvaluation",
            dependencies: ["FedRouteData", "FedRouteRouters"],
            swiftSettings: strict),
        // Native sentence embedder: BERT WordPiece tokenizer and the all-MiniLM-L6-v2 encoder.
        .target(name: "FedRouteEmbedding", dependencies: ["FedRouteNumerics"], swiftSettings: strict),
        // Client/server federated algorithms (FedAvg/FedProx/FedAdam MLP, two-pass k-means,
        // personalisation, growing the federation) over the `FederatedClient` message interface.
        .target(
            name: "FedRouteFederation",
            dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters"],
            swiftSettings: strict),
        // The paper's experimental protocol: Dirichlet client partition, sparse coverage, every
        // baseline, evaluation on the global and per-client test sets, multi-seed summaries.
        .target(
            name: "FedRouteSimulation",
            dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteEvaluation", "FedRouteFederation"],
            swiftSettings: strict),
        .executableTarget(
            name: "fedroute",
            dependencies: [
                "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteEvaluation",
                "FedRouteEmbedding", "FedRouteFederation", "FedRouteSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "fedroute-bench",
            dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteFederation", "FedRouteSimulation"],
            swiftSettings: strict),
        .testTarget(name: "FedRouteNumericsTests", dependencies: ["FedRouteNumerics"], swiftSettings: strict),
        .testTarget(name: "FedRouteDataTests", dependencies: ["FedRouteData", "FedRouteNumerics"], swiftSettings: strict),
        .testTarget(name: "FedRouteFeaturesTests", dependencies: ["FedRouteFeatures"], swiftSettings: strict),
        .testTarget(
            name: "FedRouteRoutersTests",
            dependencies: ["FedRouteRouters", "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding"],
            swiftSettings: strict),
        .testTarget(
            name: "FedRouteEvaluationTests",
            dependencies: ["FedRouteEvaluation", "FedRouteRouters", "FedRouteData"],
            swiftSettings: strict),
        .testTarget(name: "FedRouteEmbeddingTests", dependencies: ["FedRouteEmbedding", "FedRouteNumerics"], swiftSettings: strict),
        .testTarget(
            name: "FedRouteFederationTests",
            dependencies: ["FedRouteFederation", "FedRouteRouters", "FedRouteData", "FedRouteFeatures", "FedRouteNumerics"],
            swiftSettings: strict),
        .testTarget(
            name: "FedRouteSimulationTests",
            dependencies: ["FedRouteSimulation", "FedRouteFederation", "FedRouteEvaluation", "FedRouteRouters", "FedRouteData", "FedRouteNumerics"],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
