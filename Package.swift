// swift-tools-version: 6.1
import PackageDescription

/// `scripts/fuzz.sh` sets FEDROUTE_FUZZ=1 (with its own build folder): every fedroute target is then compiled with
/// libFuzzer's coverage instrumentation and AddressSanitizer, and the `fedroute-fuzz` driver is declared, linked
/// against the toolchain's libFuzzer without its `main` (FEDROUTE_FUZZER_LIB, found by the script).
let fuzzing = Context.environment["FEDROUTE_FUZZ"] == "1"

// Every target: existential `any` spelled out, and members visible only through imports the file declares.
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")]
    + (fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : [])

/// The folders show the layers (README, "Layout"): a target may depend only on its own layer and the ones above it in
/// this list — Core, Routing, Federation, Serving, Research, Fuzz, Tools.
func target(_ name: String, layer: String, dependencies: [Target.Dependency] = []) -> Target {
    .target(name: name, dependencies: dependencies, path: "Sources/\(layer)/\(name)", swiftSettings: strict)
}

func testTarget(_ name: String, layer: String, dependencies: [Target.Dependency], exclude: [String] = []) -> Target {
    .testTarget(name: name, dependencies: dependencies, path: "Tests/\(layer)/\(name)", exclude: exclude, swiftSettings: strict)
}

let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let httpClient = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let cryptoExtras = Target.Dependency.product(name: "CryptoExtras", package: "swift-crypto")
let httpTypes = Target.Dependency.product(name: "HTTPTypes", package: "swift-http-types")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let nioFoundation = Target.Dependency.product(name: "NIOFoundationCompat", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioHTTPTypes = Target.Dependency.product(name: "NIOHTTPTypes", package: "swift-nio-extras")
let tracing = Target.Dependency.product(name: "Tracing", package: "swift-distributed-tracing")

let package = Package(
    name: "fedroute",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fedroute", targets: ["fedroute"]),
        .executable(name: "fedroute-bench", targets: ["fedroute-bench"]),
        // What another program builds on: evaluation data, routers and their files, honest evaluation,
        // the federated algorithms over any transport, the HTTP/2 transport, the simulation, the gateway.
        .library(name: "FedRouteData", targets: ["FedRouteData"]),
        .library(name: "FedRouteRouters", targets: ["FedRouteRouters"]),
        .library(name: "FedRouteEvaluation", targets: ["FedRouteEvaluation"]),
        .library(name: "FedRouteFederation", targets: ["FedRouteFederation"]),
        .library(name: "FedRouteFederationHTTP", targets: ["FedRouteFederationHTTP"]),
        .library(name: "FedRouteSimulation", targets: ["FedRouteSimulation"]),
        .library(name: "FedRouteGateway", targets: ["FedRouteGateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
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
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // OTLP over HTTP only: the gRPC exporter would add grpc-swift to every build.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // MARK: Core — numbers, data, text → features
        // Dense float32 linear algebra (BLAS or portable fallback), seeded RNG, optimisers, safetensors.
        // C kernels compiled per instruction set and chosen at run time: the portable GEMM's micro-kernels, element-wise
        // neural kernels, AdamW, secure aggregation's fixed-point encoding and AES-CTR masks.
        .target(name: "CFedRouteKernels", path: "Sources/Core/CFedRouteKernels", cSettings: [.unsafeFlags(["-O2"])]),
        target("FedRouteNumerics", layer: "Core", dependencies: ["CFedRouteKernels"]),
        // Evaluation records, tables, loaders for every bundled format, the native JSONL format, splits.
        target("FedRouteData", layer: "Core", dependencies: ["FedRouteNumerics", .product(name: "CSV", package: "CSV.swift")]),
        // Native sentence embedder: BERT WordPiece tokenizer and the all-MiniLM-L6-v2 encoder.
        target("FedRouteEmbedding", layer: "Core", dependencies: ["FedRouteNumerics"]),
        // Query text -> feature vectors (QueryEncoder protocol, hashed TF-IDF, MiniLM as an encoder, on-disk cache).
        target("FedRouteFeatures", layer: "Core", dependencies: ["FedRouteNumerics", "FedRouteEmbedding"]),

        // MARK: Routing — routers, their files, and how they are judged
        // The routing rule, router families (MLP, K-Means, kNN), training, router files.
        target("FedRouteRouters", layer: "Routing", dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding"]),
        // Accuracy-cost frontiers, AUC / hull / AIQ, baselines, reports and SVG plots.
        target("FedRouteEvaluation", layer: "Routing", dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters"]),

        // MARK: Federation — algorithms over a transport seam, the HTTP/2 transport, the simulation
        // The `FederatedClient` seam and its messages, the federated algorithms (FedAvg/FedProx/FedAdam MLP,
        // two-pass k-means, personalisation, growth, DP-FedAvg, secure aggregation), and the checkpointed
        // `FederationJob` that runs them over any `FederationTransport` (in process here).
        target("FedRouteFederation", layer: "Federation", dependencies: [
            "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteEvaluation", crypto, cryptoExtras, logging,
        ]),
        // The paper's experimental protocol: Dirichlet client partition, sparse coverage, every
        // baseline, evaluation on the global and per-client test sets, multi-seed summaries.
        target("FedRouteSimulation", layer: "Federation", dependencies: [
            "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteEvaluation", "FedRouteFederation",
        ]),
        // The HTTP/2 + TLS transport: the coordinator service (Hummingbird routes, signed requests, task
        // mailboxes, deadlines), the client process (async-http-client), certificates and keys, and the
        // export of a simulated federation as files for real processes.
        target("FedRouteFederationHTTP", layer: "Federation", dependencies: [
            "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteEvaluation", "FedRouteFederation", "FedRouteSimulation",
            "FedRouteHTTPRunner", hummingbird,
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "HummingbirdHTTP2", package: "hummingbird"),
            httpClient, .product(name: "NIOSSL", package: "swift-nio-ssl"), nioCore,
            .product(name: "X509", package: "swift-certificates"), .product(name: "SwiftASN1", package: "swift-asn1"),
            crypto, logging, httpTypes, serviceLifecycle, nioFoundation, nioHTTP1, .product(name: "Yams", package: "Yams"),
            .product(name: "CompressNIO", package: "compress-nio"),
        ]),

        // Flower as the federation engine: a node speaking Flower 1.42's Fleet API (protobuf over HTTP,
        // signed requests, the content-addressed object store, `.npy` arrays) that answers through the
        // `FederatedClient` seam, and the bridge that runs fedroute's setup and k-means passes for the
        // Python ServerApp in flower/ while Flower's strategies run the MLP rounds.
        target("FedRouteFlower", layer: "Federation", dependencies: [
            "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteFederation",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"), httpClient, nioCore, nioHTTP1, nioFoundation, crypto, logging,
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),

        // MARK: Serving — the routing gateway and what it runs on
        // Running a Hummingbird application for the length of a closure (tests, benchmarks, embedding).
        target("FedRouteHTTPRunner", layer: "Serving", dependencies: [hummingbird, logging, serviceLifecycle, .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        // The gateway's shared state behind the `GatewayStore` protocol: virtual keys (HMAC-hashed), their
        // spend and budget reservations, the request log with quality feedback (SQLite via GRDB here), and
        // export of rated requests as local evaluation data.
        target("FedRouteGatewayStore", layer: "Serving", dependencies: ["FedRouteData", .product(name: "GRDB", package: "GRDB.swift"), crypto]),
        // The `GatewayStore` on PostgreSQL (postgres-nio): keys, spend, budgets and the request log shared by
        // several gateway replicas, with the SQLite store's schema and migrations.
        target("FedRouteGatewayPostgres", layer: "Serving", dependencies: [
            "FedRouteGatewayStore", .product(name: "PostgresNIO", package: "postgres-nio"), logging,
        ]),
        // The OpenAI-compatible routing gateway (Hummingbird routes, async-http-client upstreams,
        // fallback, SSE pass-through, Prometheus metrics), its models.yaml and the `GatewayService`.
        target("FedRouteGateway", layer: "Serving", dependencies: [
            "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteGatewayStore", "FedRouteGatewayPostgres",
            "FedRouteHTTPRunner", hummingbird, .product(name: "HummingbirdCore", package: "hummingbird"), crypto, tracing,
            .product(name: "HummingbirdTLS", package: "hummingbird"), .product(name: "HummingbirdHTTP2", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"), httpClient, .product(name: "Prometheus", package: "swift-prometheus"), logging,
            .product(name: "Yams", package: "Yams"), nioCore, nioHTTP1, nioFoundation,
            .product(name: "NIOPosix", package: "swift-nio"), httpTypes, nioHTTPTypes, serviceLifecycle,
        ]),
        // Exporting the gateway's spans over OTLP/HTTP (swift-otel); only the command line links it.
        target("FedRouteTelemetry", layer: "Serving", dependencies: [
            .product(name: "OTel", package: "swift-otel"), tracing, serviceLifecycle, logging,
        ]),
        // A scripted OpenAI-compatible upstream (fixed answers, failures, broken streams) for the
        // gateway's tests, its load benchmark and dry runs.
        target("FedRouteFakeUpstream", layer: "Serving", dependencies: ["FedRouteGateway", "FedRouteHTTPRunner", hummingbird, httpTypes, nioCore]),

        // MARK: Research — experiments beyond single-round routing
        // Meta-Router (arXiv 2509.25535): gains learned from few gold and many biased judge labels,
        // the bias as a CATE (R-/DR-learner, cross-fitted), over additive statistics so that the
        // federated fit equals the centralized one; the judge simulation, split experiment and its report.
        target("FedRouteMetaRouter", layer: "Research", dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEvaluation"]),
        // Router-R1-style multi-round routing learned with PPO on stored answers, its baselines and report.
        target("FedRouteMultiRound", layer: "Research", dependencies: ["FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteEvaluation"]),

        // MARK: Fuzz — libFuzzer targets over every reader of untrusted bytes (router files, loaders, wire messages,
        // signatures, chat requests, SSE, checkpoints); `swift test` replays Tests/Fuzz/regressions through them.
        target("FedRouteFuzzTargets", layer: "Fuzz", dependencies: [
            "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteFederation", "FedRouteFederationHTTP",
            "FedRouteGateway", "FedRouteFlower", crypto, logging, .product(name: "CSV", package: "CSV.swift"),
        ]),

        // MARK: Tools — the command line (parses, calls one library entry point, prints) and the benchmarks
        .executableTarget(
            name: "fedroute",
            dependencies: [
                "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteRouters", "FedRouteEvaluation",
                "FedRouteEmbedding", "FedRouteFederation", "FedRouteSimulation", "FedRouteGatewayStore", "FedRouteGateway",
                "FedRouteMetaRouter", "FedRouteMultiRound", "FedRouteFederationHTTP", "FedRouteTelemetry", "FedRouteFlower", httpClient,
                .product(name: "ArgumentParser", package: "swift-argument-parser"), logging,
            ],
            path: "Sources/Tools/fedroute", swiftSettings: strict),
        .executableTarget(
            name: "fedroute-bench",
            dependencies: [
                "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding", "FedRouteRouters", "FedRouteFederation", "FedRouteSimulation",
                "FedRouteGatewayStore", "FedRouteGatewayPostgres", "FedRouteGateway", "FedRouteFakeUpstream", "FedRouteHTTPRunner", "FedRouteFederationHTTP",
                hummingbird, httpClient, logging, nioCore, nioHTTP1, nioFoundation,
            ],
            path: "Sources/Tools/fedroute-bench", swiftSettings: strict),

        // MARK: Tests, mirroring Sources
        testTarget("FedRouteFuzzTargetsTests", layer: "Fuzz", dependencies: ["FedRouteFuzzTargets", "FedRouteRouters", "FedRouteData", "FedRouteNumerics", "FedRouteFederationHTTP"]),
        testTarget("FedRouteNumericsTests", layer: "Core", dependencies: ["FedRouteNumerics", crypto]),
        testTarget("FedRouteDataTests", layer: "Core", dependencies: ["FedRouteData", "FedRouteNumerics"]),
        testTarget("FedRouteEmbeddingTests", layer: "Core", dependencies: ["FedRouteEmbedding", "FedRouteNumerics"]),
        testTarget("FedRouteFeaturesTests", layer: "Core", dependencies: ["FedRouteFeatures", "FedRouteNumerics", "FedRouteData"]),
        testTarget("FedRouteRoutersTests", layer: "Routing", dependencies: ["FedRouteRouters", "FedRouteNumerics", "FedRouteData", "FedRouteFeatures", "FedRouteEmbedding"]),
        testTarget("FedRouteEvaluationTests", layer: "Routing", dependencies: ["FedRouteEvaluation", "FedRouteRouters", "FedRouteData", "FedRouteNumerics"]),
        testTarget("FedRouteFederationTests", layer: "Federation", dependencies: [
            "FedRouteFederation", "FedRouteRouters", "FedRouteData", "FedRouteFeatures", "FedRouteNumerics", "FedRouteEvaluation", logging, crypto,
        ]),
        testTarget("FedRouteSimulationTests", layer: "Federation", dependencies: [
            "FedRouteSimulation", "FedRouteFederation", "FedRouteEvaluation", "FedRouteRouters", "FedRouteData", "FedRouteNumerics", "FedRouteFeatures",
        ]),
        testTarget("FedRouteFederationHTTPTests", layer: "Federation", dependencies: [
            "FedRouteFederationHTTP", "FedRouteFederation", "FedRouteSimulation", "FedRouteHTTPRunner", "FedRouteRouters", "FedRouteData", "FedRouteNumerics", "FedRouteFeatures",
            "FedRouteEvaluation", httpClient, crypto, logging, nioCore, nioHTTP1, nioFoundation,
        ]),
        testTarget("FedRouteFlowerTests", layer: "Federation", dependencies: [
            "FedRouteFlower", "FedRouteFederation", "FedRouteRouters", "FedRouteData", "FedRouteNumerics", "FedRouteFeatures",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"), crypto, "FedRouteHTTPRunner", hummingbird, httpClient, logging, nioCore, nioFoundation,
        ], exclude: ["Fixtures"]),
        testTarget("FedRouteGatewayStoreTests", layer: "Serving", dependencies: ["FedRouteGatewayStore", "FedRouteData", .product(name: "GRDB", package: "GRDB.swift")]),
        testTarget("FedRouteHTTPRunnerTests", layer: "Serving", dependencies: [
            "FedRouteHTTPRunner", hummingbird, .product(name: "HummingbirdCore", package: "hummingbird"), httpClient, logging,
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        testTarget("FedRouteGatewayPostgresTests", layer: "Serving", dependencies: [
            "FedRouteGatewayPostgres", "FedRouteGatewayStore", .product(name: "PostgresNIO", package: "postgres-nio"), logging,
        ]),
        testTarget("FedRouteGatewayTests", layer: "Serving", dependencies: [
            "FedRouteGateway", "FedRouteFakeUpstream", "FedRouteHTTPRunner", "FedRouteGatewayStore", "FedRouteGatewayPostgres", "FedRouteRouters",
            "FedRouteFeatures", "FedRouteNumerics", "FedRouteFederationHTTP", "FedRouteTelemetry", .product(name: "NIOSSL", package: "swift-nio-ssl"), tracing,
            serviceLifecycle,
            "FedRouteData", hummingbird, httpClient, logging, nioHTTP1,
        ]),
        testTarget("FedRouteMetaRouterTests", layer: "Research", dependencies: ["FedRouteMetaRouter", "FedRouteNumerics", "FedRouteData", "FedRouteEvaluation"]),
        testTarget("FedRouteMultiRoundTests", layer: "Research", dependencies: ["FedRouteMultiRound", "FedRouteNumerics", "FedRouteData", "FedRouteEvaluation"]),
        // Runs the built `fedroute` executable on small inputs: output, files, exit codes, error messages.
        testTarget("FedRouteCLITests", layer: "Tools", dependencies: ["fedroute", "FedRouteData", "FedRouteNumerics", "FedRouteRouters", "FedRouteGatewayStore", httpClient, nioCore, nioHTTP1]),
    ],
    swiftLanguageModes: [.v6]
)

if fuzzing {
    package.targets.append(.executableTarget(
        name: "fedroute-fuzz", dependencies: ["FedRouteFuzzTargets"], path: "Sources/Fuzz/fedroute-fuzz", swiftSettings: strict,
        linkerSettings: [.unsafeFlags(["-sanitize=address", "-Xlinker", Context.environment["FEDROUTE_FUZZER_LIB"] ?? "libclang_rt.fuzzer_no_main.a", "-lstdc++"])]))
    package.products.append(.executable(name: "fedroute-fuzz", targets: ["fedroute-fuzz"]))
}
