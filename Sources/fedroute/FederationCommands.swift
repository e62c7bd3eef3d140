import ArgumentParser
import FedRouteData
import FedRouteEvaluation
import FedRouteFederation
import FedRouteHTTP
import FedRouteNetwork
import FedRouteRouters
import Foundation
import Logging

/// `fedroute server`: the coordinator of a federation over the network.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Coordinate federated training over the network (HTTP/2 + TLS): setup, MLP rounds, federated K-Means; resumes from its checkpoint.")

    @Option(name: .long, help: "Server configuration (YAML or JSON; see docs/FEDERATION.md).") var config: String
    @Option(name: .long, help: "Override the configured port (0 picks a free one).") var port: Int?
    @Flag(name: .long, help: "Ignore an existing checkpoint and start over.") var fresh = false
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: Logger.Level = .info

    func run() async throws {
        var c = try FederationServerConfiguration.load(path: config)
        if let port { c.port = port }
        bootstrapLogging(logLevel)
        let logger = Logger(label: "fedroute.server")
        let store = try CheckpointStore(directory: c.stateDirectory)
        var state = fresh ? nil : try store.load()
        if state != nil {
            state!.restarts += 1
            logger.notice("resuming from checkpoint", metadata: ["path": .string(store.path), "completed_rounds": .stringConvertible(state!.mlp?.completedRounds ?? 0),
                                                                 "finished": .string(state!.finishedFamilies.joined(separator: ","))])
        }
        let authenticator = try ClientAuthenticator(publicKeys: Dictionary(uniqueKeysWithValues: c.clients.map { ($0.id, $0.publicKey) }),
                                                    lastNonce: state?.nonces ?? [:])
        let registry = ClientRegistry(federation: c.federation, authenticator: authenticator, logger: logger)
        let tls = try c.tls.map { try FederationCertificates.serverConfiguration(certificate: $0.certificate, key: $0.key) }
        if tls == nil { logger.warning("no tls section: serving plaintext HTTP/1.1; use this on loopback only") }
        let bar = ProgressBar(label: "federation", total: max(1, c.mlp.rounds))
        let job = FederationJob(configuration: c, registry: registry, store: store, logger: logger) { p in
            if p.stage == "FedAvg round" { bar.update(p.step, detail: p.loss.map { String(format: "loss %.4f", $0) } ?? "") }
        }
        let host = c.host
        let scheme = tls == nil ? "http" : "https"
        let transport = try FederationServer.transport(tls: tls)
        let result = try await ServerRunner.withRunning(logger: logger, { ready in
            FederationServer.application(registry: registry, host: host, port: c.port, transport: transport, logger: logger, onServerRunning: ready)
        }) { bound in
            logger.notice("coordinator listening", metadata: ["url": .string("\(scheme)://\(host):\(bound)"), "clients": .stringConvertible(c.clients.count)])
            let result = try await job.run(initialState: state)
            // Let clients that are polling hear that training is over.
            try await Task.sleep(for: .seconds(2))
            return result
        }
        bar.finish()
        for (family, auc) in result.validationAUC.sorted(by: { $0.key < $1.key }) { print(String(format: "%@ validation AUC %.4f", family, auc)) }
        print("wrote \(c.outputDirectory)/summary.json and \(result.routerFiles.values.sorted().joined(separator: ", "))")
    }
}

/// `fedroute client`: one organisation's process in a federation.
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Take part in a federation: answer the coordinator's tasks from local evaluation data, which never leaves this process.")

    @Option(name: .long, help: "Coordinator URL, e.g. https://127.0.0.1:7443.") var server: String
    @Option(name: .long, help: "Local evaluation data (any supported format).") var data: String
    @Option(name: .long, help: "Data format; detected when omitted.") var format: DataFormat?
    @Option(name: .long, help: "This client's key file (fedroute federation keygen).") var key: String
    @Option(name: .long, help: "CA certificate that signed the coordinator's (required for https).") var ca: String?
    @Option(name: .long, help: "Privacy floor: fewest local rows behind any shared aggregate.") var minGroupSize = 3
    @Option(name: .long, help: "Seed the DP noise (reproducible experiments only; the default draws it from the system).") var noiseSeed: UInt64?
    @Option(name: .long, help: "Exit with an error after this many seconds without reaching the coordinator.") var giveUpAfter = 300.0
    @Option(name: .long, help: "Fault injection for tests: SIGKILL this process on its first MLP task of round N or later.") var crashInRound: Int?
    @Option(name: .long, help: "With --crash-in-round: only the first client to create this file crashes.") var crashMarker: String?
    @Option(name: .long, help: "After training, write the federation's routers and this client's personalised ones (fine-tuned on the local data) here.") var personalize: String?
    @Option(name: .long, help: "Seed of MLP fine-tuning.") var personalizeSeed: UInt64 = 0
    @Option(name: .long, help: "Local epochs of MLP fine-tuning.") var fineTuneEpochs = 1
    @Option(name: .long, help: "K-Means fine-tuning: pseudo-observations of the global cell mean.") var priorStrength = 1.0
    @Option(name: .long, help: "A local test set (fully labelled): report federated vs personalised AUC on it.") var test: String?
    @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info

    func run() async throws {
        let identity = try ClientIdentity(contentsOf: key)
        let table = try DataOptions.load(path: data, format: format, skipInvalid: false).table
        bootstrapLogging(logLevel)
        var logger = Logger(label: "fedroute.client")
        logger[metadataKey: "client"] = .string(identity.id)
        let isTLS = server.lowercased().hasPrefix("https://")
        guard isTLS || server.lowercased().hasPrefix("http://") else { throw ValidationError("--server must be an http:// or https:// URL") }
        if isTLS && ca == nil { throw ValidationError("--ca is required for an https:// coordinator") }
        var settings = FederationClientRunner.Settings(server: server, tls: try ca.map { try FederationCertificates.clientConfiguration(caFile: $0) })
        settings.giveUpAfter = .milliseconds(Int64(giveUpAfter * 1000))
        settings.crashInRound = crashInRound
        settings.crashMarker = crashMarker
        let local = InProcessClient(id: identity.id, train: table, policy: ClientPolicy(minimumGroupSize: minGroupSize, noiseSeed: noiseSeed))
        logger.info("starting", metadata: ["queries": .stringConvertible(table.queryCount), "models": .stringConvertible(table.modelCount)])
        let outcome = try await FederationClientRunner(identity: identity, local: local, settings: settings, logger: logger).run()
        Console.info("\(identity.id): answered \(outcome.tasks) tasks over \(outcome.joins) session(s)")
        if let personalize { try personalizeLocally(outcome.routers, train: table, into: personalize) }
    }

    /// Saves the federation's routers, fine-tunes each on the local data (the simulation's
    /// "fine-tuned" personalisation), saves those, and evaluates both on `--test` if given.
    func personalizeLocally(_ routers: [String: Data], train: EvaluationTable, into directory: String) throws {
        guard !routers.isEmpty else { throw ValidationError("the coordinator sent no routers to personalise") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let testTable = try test.map { try DataOptions.load(path: $0, format: nil, skipInvalid: false).table }
        var report: [String: [String: Double]] = [:]
        for (family, bytes) in routers.sorted(by: { $0.key < $1.key }) {
            let global = (directory as NSString).appendingPathComponent("federated-\(family).safetensors")
            try bytes.write(to: URL(fileURLWithPath: global), options: .atomic)
            let pipeline = try RouterFile.load(path: global)
            let features = pipeline.encoder.encode(train.queries.map(\.text))
            let tuned: AnyRouter
            switch pipeline.router {
            case .mlp(let r):
                var settings = LocalTrainingSettings()
                settings.epochs = fineTuneEpochs
                tuned = .mlp(try Personalization.fineTune(r, features: features, table: train, settings: settings, seed: personalizeSeed))
            case .kmeans(let r):
                tuned = .kmeans(try Personalization.fineTune(r, features: features, table: train, priorStrength: priorStrength))
            case .knn:
                throw ValidationError("a kNN router cannot be personalised")
            }
            let file = (directory as NSString).appendingPathComponent("personalized-\(family).safetensors")
            try RouterFile.save(try RoutingPipeline(encoder: pipeline.encoder, router: tuned), to: file,
                                extraMetadata: ["trained_by": "fedroute client --personalize (fine-tuned on local data)"])
            if let testTable {
                let evaluator = try Evaluator(train: train, test: testTable, lambdas: FrontierMetrics.geomspace(1e-2, 1e7, count: 100))
                let rows = (0..<testTable.queryCount).filter { testTable.isFullyObserved(row: $0) }
                let x = pipeline.encoder.encode(rows.map { testTable.queries[$0].text })
                let r = try evaluator.evaluate([("federated", try pipeline.router.predict(features: x)), ("fine-tuned", try tuned.predict(features: x))])
                let auc = Dictionary(uniqueKeysWithValues: r.entries.filter { $0.role == .router }.map { ($0.name, $0.auc) })
                report[family] = auc
                print(String(format: "%@ on the local test set: federated AUC %.4f, fine-tuned %.4f", family, auc["federated"]!, auc["fine-tuned"]!))
            }
        }
        if !report.isEmpty {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            try e.encode(report).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("personalization.json")), options: .atomic)
        }
        Console.info("wrote the federation's and the personalised routers to \(directory)/")
    }
}

/// `fedroute federation`: keys and certificates.
struct FederationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "federation",
        abstract: "Keys and certificates for a federation over the network.",
        subcommands: [KeygenCommand.self, CertsCommand.self])

    struct KeygenCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "keygen", abstract: "Make a client's Ed25519 key file; prints the public key for the server configuration.")
        @Option(name: .long, help: "Client id.") var id: String
        @Option(name: .long, help: "Key file to write (mode 0600).") var out: String

        func run() throws {
            let identity = ClientIdentity(id: id)
            try identity.write(to: out)
            print("- id: \(id)\n  publicKey: \(identity.publicKeyBase64)")
        }
    }

    struct CertsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "certs", abstract: "Make a private CA and a server certificate (ca.pem, server.pem and their keys).")
        @Option(name: .long, help: "Output folder.") var out: String
        @Option(name: .long, help: "Host names or IPv4 addresses the server is reached at.") var host: [String] = ["127.0.0.1", "localhost"]
        @Option(name: .long, help: "Validity in days.") var days = 365

        func run() throws {
            try FederationCertificates.generate(directory: out, hosts: host, validDays: days)
            print("wrote \(out)/ca.pem, ca-key.pem, server.pem, server-key.pem for \(host.joined(separator: ", "))")
        }
    }
}

func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = level
        return h
    }
}
