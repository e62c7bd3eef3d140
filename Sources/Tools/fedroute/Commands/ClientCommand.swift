import ArgumentParser
import FedRouteData
import FedRouteFederation
import FedRouteFederationHTTP
import FedRouteNumerics
import Foundation
import Logging

/// `fedroute client`: one organisation's process in a federation.
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Take part in a federation: answer the coordinator's tasks from local evaluation data, which never leaves this process.")

    @Option(name: .long, help: "Coordinator URL, e.g. https://127.0.0.1:7443.") var server: String
    @OptionGroup var local: LocalClientOptions
    @Option(name: .long, help: "This client's key file (fedroute federation keygen).") var key: String
    @Option(name: .long, help: "CA certificate that signed the coordinator's (required for https).") var ca: String?
    @Option(name: .long, help: "Exit with an error after this many seconds without reaching the coordinator.") var giveUpAfter = 300.0
    @Option(name: .long, help: "Fault injection for tests: SIGKILL this process on its first MLP task of round N or later.") var crashInRound: Int?
    @Option(name: .long, help: "With --crash-in-round: only the first client to create this file crashes.") var crashMarker: String?
    @Option(name: .long, help: "Frame compression this client offers (\(FrameCompression.allCases.map(\.rawValue).joined(separator: ", "))); used when the coordinator's configuration enables it too.")
    var frameCompression: FrameCompression = .shuffleDeflate
    @Option(name: .long, help: "HTTP version (\(ClientHTTPVersion.allCases.map(\.rawValue).joined(separator: ", "))): http1.1 (the default), or auto for HTTP/2 when the coordinator offers it, whose 64 kB window slows uploads on links with long round trips (README, Performance).")
    var httpVersion: ClientHTTPVersion = FederationClientRunner.Settings.defaultHTTPVersion
    @Option(name: .long, parsing: .upToNextOption,
            help: "Secure-aggregation mask generators this client declares (\(MaskGenerator.allCases.map(\.rawValue).joined(separator: ", "))); default: aes256-ctr and chacha20 where the CPU has AES instructions, chacha20 otherwise. A pair uses AES only when both declared it.")
    var maskGenerators: [MaskGenerator] = []
    @Flag(name: .long, inversion: .prefixedNo,
          help: "In secure rounds, start training on the task the coordinator sends with the key request, before the participant list is known (saves a request-answer cycle a round); with --no-train-with-key, wait for the list as older clients do.")
    var trainWithKey = true
    @Flag(name: .long, inversion: .prefixedNo,
          help: "Declare the 32-bit ring with secure-aggregation keys: rounds whose clients all declare it send half the bytes, at 2^-28 a word (docs/FEDERATION.md); with --no-secure-words32, every round this client is in stays in the 64-bit ring.")
    var secureWords32 = true
    @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info

    func validate() throws {
        let scheme = server.lowercased()
        guard scheme.hasPrefix("https://") || scheme.hasPrefix("http://") else { throw ValidationError("--server must be an http:// or https:// URL") }
        if scheme.hasPrefix("https://") && ca == nil { throw ValidationError("--ca is required for an https:// coordinator") }
        guard giveUpAfter > 0, giveUpAfter.isFinite else { throw ValidationError("--give-up-after must be a positive number of seconds") }
    }

    func run() async throws {
        AllocatorTuning.applyForTraining(environment: ProcessInfo.processInfo.environment)
        let identity = try ClientIdentity(contentsOf: key)
        let (table, heldOut, testTable) = try local.load()
        LoggingSystem.bootstrapStandardError(level: logLevel)
        var logger = Logger(label: "fedroute.client")
        logger[metadataKey: "client"] = .string(identity.id)
        var settings = FederationClientRunner.Settings(server: server, tls: try ca.map { try FederationCertificates.clientConfiguration(caFile: $0) })
        settings.giveUpAfter = .milliseconds(Int64(giveUpAfter * 1000))
        settings.crashInRound = crashInRound
        settings.crashMarker = crashMarker
        settings.frameCompression = frameCompression
        settings.httpVersion = httpVersion
        let client = local.client(id: identity.id, train: table, heldOut: heldOut, maskGenerators: maskGenerators.isEmpty ? nil : maskGenerators,
                                  trainsWithKey: trainWithKey ? nil : false, ring32: secureWords32 ? nil : false)
        logger.info("starting", metadata: ["queries": .stringConvertible(table.queryCount), "held_out": .stringConvertible(heldOut.queryCount),
                                           "models": .stringConvertible(table.modelCount)])
        let outcome = try await FederationClientRunner(identity: identity, local: client, settings: settings, logger: logger).run()
        Console.info("\(identity.id): answered \(outcome.tasks) tasks over \(outcome.joins) session(s)")
        try local.personalize(routers: outcome.routers, fineTuning: outcome.fineTuning, mfFineTuning: outcome.mfFineTuning, train: table, test: testTable)
    }
}
