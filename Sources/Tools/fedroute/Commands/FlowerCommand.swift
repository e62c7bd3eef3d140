import ArgumentParser
import AsyncHTTPClient
import FedRouteData
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteFlower
import FedRouteNumerics
import Foundation
import Logging

/// `fedroute flower-node`: one organisation's process in a federation run by a Flower SuperLink.
struct FlowerNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flower-node",
        abstract: "Take part in a Flower 1.42 federation: a SuperNode speaking the Fleet API that answers from local evaluation data.",
        discussion: "The ServerApp is flower/fedroute-flower (docs/FLOWER.md). The node key is a P-256 PEM file, created on first use.")

    @Option(name: .long, help: "The SuperLink's Fleet API, e.g. http://127.0.0.1:8000 (with --insecure) or https://host:8000.") var superlink: String
    @Flag(name: .long, help: "Plain HTTP to the SuperLink (its --insecure mode).") var insecure = false
    @Option(name: .long, help: "PEM root certificates to trust for an https:// SuperLink (default: the system's).") var rootCertificates: String?
    @Option(name: .long, help: "The node's P-256 private key (PEM); created with mode 0600 when missing.") var key: String
    @Option(name: .long, help: "This client's id in the federation (default: the --data file name without its extension).") var id: String?
    @OptionGroup var local: LocalClientOptions
    @Option(name: .long, help: "Heartbeat interval announced to the SuperLink, in seconds (10…1800).") var heartbeatInterval = 10.0
    @Option(name: .long, help: "Exit with an error after this many seconds without reaching the SuperLink.") var giveUpAfter = 300.0
    @Option(name: .long, help: "Fault injection for tests: SIGKILL this process on its first train message of round N or later.") var crashInRound: Int?
    @Option(name: .long, help: "With --crash-in-round: only the first node to create this file crashes.") var crashMarker: String?
    @Flag(name: .long, help: "Unregister the key at the end (the SuperLink then refuses it for good; by default the node only deactivates).") var unregister = false
    @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info

    func validate() throws {
        let scheme = superlink.lowercased()
        if insecure {
            guard scheme.hasPrefix("http://") else { throw ValidationError("--insecure needs an http:// --superlink") }
        } else {
            guard scheme.hasPrefix("https://") else { throw ValidationError("--superlink must be https:// (or pass --insecure for http://)") }
        }
        guard (10...1800).contains(heartbeatInterval) else { throw ValidationError("--heartbeat-interval must be within 10…1800 seconds") }
        guard giveUpAfter > 0, giveUpAfter.isFinite else { throw ValidationError("--give-up-after must be a positive number of seconds") }
    }

    func run() async throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        let (table, heldOut, testTable) = try local.load()
        let clientID = id ?? ((local.data as NSString).lastPathComponent as NSString).deletingPathExtension
        LoggingSystem.bootstrapStandardError(level: logLevel)
        var logger = Logger(label: "fedroute.flower-node")
        logger[metadataKey: "client"] = .string(clientID)
        let (signer, created) = try FleetSigner.loadOrCreate(path: key)
        if created { logger.info("created a node key", metadata: ["path": .string(key)]) }
        let http = try FleetClient.makeHTTPClient(rootCertificates: rootCertificates)
        var settings = FlowerNode.Settings()
        settings.heartbeatInterval = heartbeatInterval
        settings.giveUpAfter = .milliseconds(Int64(giveUpAfter * 1000))
        settings.crashInRound = crashInRound
        settings.crashMarker = crashMarker
        settings.unregister = unregister
        let handler = FlowerTaskHandler(clientID: clientID, client: local.client(id: clientID, train: table, heldOut: heldOut))
        logger.info("starting", metadata: ["queries": .stringConvertible(table.queryCount), "held_out": .stringConvertible(heldOut.queryCount)])
        let outcome: FlowerNode.Outcome
        do {
            outcome = try await FlowerNode(fleet: FleetClient(superlink: superlink, http: http, signer: signer), handler: handler, settings: settings, logger: logger).run()
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        Console.info("\(clientID): answered \(outcome.messages) messages (\(outcome.failures) with an error), sent \(outcome.bytesSent) and received \(outcome.bytesReceived) bytes")
        for (type, t) in outcome.traffic.sorted(by: { $0.key < $1.key }) {
            Console.info("\(clientID): \(type): \(t.messages) messages, \(t.sent) bytes sent, \(t.received) bytes received, " + String(format: "%.2f s", t.seconds))
        }
        if let run = outcome.run {
            try local.personalize(routers: run.routers, fineTuning: run.fineTuning, mfFineTuning: run.mfFineTuning, train: table, test: testTable)
        }
    }
}

/// `fedroute flower-bridge`: the fedroute side of the Flower ServerApp (started by it, not by hand).
struct FlowerBridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flower-bridge",
        abstract: "Run fedroute's federation for the Flower ServerApp (flower/fedroute-flower), which starts this process.",
        discussion: "Speaks JSON lines: requests on standard output, the ServerApp's answers on standard input; logs go to standard error.")

    @Option(name: .long, help: "The federation's settings: a coordinator configuration (server.json, e.g. from simulate --export-federation).") var config: String
    @Option(name: .long, help: "Scratch folder for the arrays exchanged with the ServerApp (default: <state directory>/flower).") var work: String?
    @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info

    func run() async throws {
        let coordinator = try CoordinatorConfiguration.load(path: config)
        LoggingSystem.bootstrapStandardError(level: logLevel)
        let logger = Logger(label: "fedroute.flower-bridge")
        let stdout = FileHandle.standardOutput
        let channel = FlowerBridgeChannel(output: { stdout.write($0) })
        channel.pumpStandardInput()
        let job = coordinator.job
        let summary = try await FlowerServerJob(configuration: job, clients: coordinator.clients.map(\.id), channel: channel,
                                                workDirectory: work ?? (job.stateDirectory as NSString).appendingPathComponent("flower"), logger: logger).run()
        for (family, auc) in summary.validationAUC.sorted(by: { $0.key < $1.key }) {
            logger.info("validation AUC", metadata: ["family": .string(family), "auc": .string(String(format: "%.4f", auc))])
        }
    }
}

/// `fedroute flower-key`: the node key's public half, for `flwr supernode register` when the SuperLink
/// runs with `--enable-supernode-auth`.
struct FlowerKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flower-key",
        abstract: "Print a Flower node key's public key, creating the key (mode 0600) if the file does not exist.",
        discussion: "Enroll the OpenSSH form with `flwr supernode register PUBLIC_KEY_FILE` before the node starts against a SuperLink with --enable-supernode-auth.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        /// `ecdsa-sha2-nistp256 …`, what `flwr supernode register` reads.
        case ssh
        /// PEM SubjectPublicKeyInfo, what the node sends in `flwr-public-key`.
        case pem
    }

    @Option(name: .long, help: "The node's P-256 private key file (PEM), as passed to flower-node --key.") var key: String
    @Option(name: .long, help: "ssh (for flwr supernode register) or pem.") var format: Format = .ssh

    func run() throws {
        let (signer, created) = try FleetSigner.loadOrCreate(path: key)
        if created { Console.info("created a node key in \(key)") }
        switch format {
        case .ssh: FileHandle.standardOutput.write(Data(signer.openSSHPublicKey.utf8))
        case .pem: FileHandle.standardOutput.write(signer.publicKeyPEM)
        }
    }
}
