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
        .library(name: "FedRouteFeedback", targets: ["FedRouteFeedback"]),
        .library(name: "FedRouteGateway", targets: ["FedRouteGateway"]),
        .library(name: "FedRouteFakeUpstream", targets: ["FedRouteFakeUpstream"]),
        .library(name: "FedRouteMetaRouter", targets: ["FedRouteMetaRouter"]),
        .library(name: "FedRouteMultiRound", targets: ["FedRouteMultiRound"]),
        .library(name: "FedRouteHTTP", targets: ["FedRouteHTTP"]),
        .library(name: "FedRouteNetwork", targets: ["FedRouteNetwork"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
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
        // personalisation, growing the federation, DP-FedAvg with its accountant, pairwise-masked
        // secure aggregation, resumable rounds) over the `FederatedClient` message interface.
        .target(
            name: "FedRouteFederation",
            dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters",
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // The paper's experimental protocol: Dirichlet client partition, sparse coverage, every
        // baseline, evaluation on the global and per-client test sets, multi-seed summaries.
        .target(
            name: "FedRouteSimulation",
            dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteEvaluation", "FedRouteFederation"],
            swiftSettings: strict),
        // Meta-Router (arXiv 2509.25535): gains learned from few gold and many biased judge labels,
        // the bias as a CATE (R-/DR-learner, cross-fitted), over additive statistics so that the
        // federated fit equals the centralized one; the judge simulation and split experiment.
        .target(name: "FedRouteMetaRouter", dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteEvaluation"], swiftSettings: strict),
        .target(
            name: "FedRouteMultiRound",
            dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteRouters", "FedRouteEvaluation"],
            swiftSettings: strict),
        // Running a Hummingbird application for the length of a closure (tests, benchmarks, embedding).
        .target(
            name: "FedRouteHTTP",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // Federation over the network: the coordinator (Hummingbird, HTTP/2 over TLS) with signed
        // requests, task mailboxes, deadlines and checkpoints; the client process (async-http-client);
        // certificates and keys.
        .target(
            name: "FedRouteNetwork",
            dependencies: [
                "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteEvaluation", "FedRouteFederation", "FedRouteHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),
        // The gateway's request log (SQLite via GRDB): routed requests, their cost and tokens, quality
        // feedback, and export of rated requests as local evaluation data.
        .target(
            name: "FedRouteFeedback",
            dependencies: ["FedRouteData", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        // The OpenAI-compatible routing gateway (Hummingbird server, async-http-client upstreams,
        // fallback, SSE pass-through, Prometheus metrics) and its models.yaml configuration.
        .target(
            name: "FedRouteGateway",
            dependencies: [
                "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteFeedback",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // A scripted OpenAI-compatible upstream (fixed answers, failures, broken streams) for the
        // gateway's tests, its load benchmark and dry runs.
        .target(
            name: "FedRouteFakeUpstream",
            dependencies: [
                "FedRouteGateway", "FedRouteHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "fedroute",
            dependencies: [
                "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteEvaluation",
                "FedRouteEmbedding", "FedRouteFederation", "FedRouteSimulation", "FedRouteFeedback", "FedRouteGateway", "FedRouteMetaRouter", "FedRouteMultiRound", "FedRouteNetwork",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "fedroute-bench",
            dependencies: [
                "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteFederation", "FedRouteSimulation",
                "FedRouteFeedback", "FedRouteGateway", "FedRouteFakeUpstream", "FedRouteHTTP", "FedRouteNetwork",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
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
        .testTarget(name: "FedRouteMetaRouterTests", dependencies: ["FedRouteMetaRouter", "FedRouteNumerics", "FedRouteData"], swiftSettings: strict),
        .testTarget(
            name: "FedRouteMultiRoundTests",
            dependencies: ["FedRouteMultiRound", "FedRouteNumerics", "FedRouteData", "FedRouteEvaluation"],
            swiftSettings: strict),
        .testTarget(
            name: "FedRouteNetworkTests",
            dependencies: [
                "FedRouteNetwork", "FedRouteFederation", "FedRouteHTTP", "FedRouteRouters", "FedRouteData", "FedRouteNumerics",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(name: "FedRouteFeedbackTests", dependencies: ["FedRouteFeedback", "FedRouteData"], swiftSettings: strict),
        .testTarget(
            name: "FedRouteGatewayTests",
            dependencies: [
                "FedRouteGateway", "FedRouteFakeUpstream", "FedRouteHTTP", "FedRouteFeedback", "FedRouteRouters", "FedRouteFeatures", "FedRouteNumerics", "FedRouteData",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
