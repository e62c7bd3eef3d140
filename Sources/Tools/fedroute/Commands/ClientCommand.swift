import ArgumentParser
import FedRouteData
import FedRouteFederation
import FedRouteFederationHTTP
import Foundation
import Logging

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
    @Option(name: .long, help: "Local epochs of MLP fine-tuning (the other settings are the federation's).") var fineTuneEpochs = 1
    @Option(name: .long, help: "K-Means fine-tuning: pseudo-observations of the global cell mean.") var priorStrength = 1.0
    @Option(name: .long, help: "A local test set (fully labelled): report federated vs personalised AUC on it.") var test: String?
    @Option(name: .long, help: "Log level.") var logLevel: Logger.Level = .info
    @Option(name: .long, help: "Held-out rows for the federation's model selection and safety gate (nothing trains on them); overrides --validation-fraction.") var validation: String?
    @Option(name: .long, help: "Share of --data held out for validation when --validation is not given (0: none).") var validationFraction = 0.15
    @Option(name: .long, help: "Seed of the --validation-fraction hold-out.") var validationSeed: UInt64 = 0

    func validate() throws {
        let scheme = server.lowercased()
        guard scheme.hasPrefix("https://") || scheme.hasPrefix("http://") else { throw ValidationError("--server must be an http:// or https:// URL") }
        if scheme.hasPrefix("https://") && ca == nil { throw ValidationError("--ca is required for an https:// coordinator") }
        guard giveUpAfter > 0, giveUpAfter.isFinite else { throw ValidationError("--give-up-after must be a positive number of seconds") }
        guard minGroupSize >= 1 else { throw ValidationError("--min-group-size must be at least 1") }
        guard fineTuneEpochs >= 0 else { throw ValidationError("--fine-tune-epochs must be ≥ 0") }
        guard priorStrength >= 0, priorStrength.isFinite else { throw ValidationError("--prior-strength must be finite and ≥ 0") }
        guard (0..<1).contains(validationFraction) else { throw ValidationError("--validation-fraction must be in [0, 1)") }
    }

    func run() async throws {
        let identity = try ClientIdentity(contentsOf: key)
        let loaded = try DataOptions.load(path: data, format: format, skipInvalid: false).table
        // The held-out rows: a file of their own, or a seeded share of --data.
        let table: EvaluationTable, heldOut: EvaluationTable
        if let validation {
            (table, heldOut) = (loaded, try DataOptions.load(path: validation, format: nil, skipInvalid: false).table)
            guard heldOut.models == table.models else { throw ValidationError("--validation \(validation) has models \(heldOut.models), --data has \(table.models)") }
        } else {
            let (fit, held) = loaded.holdOutRows(fraction: validationFraction, seed: validationSeed)
            (table, heldOut) = (loaded.subset(fit), loaded.subset(held))
        }
        let testTable = try test.map { try DataOptions.load(path: $0, format: nil, skipInvalid: false).table }
        if let personalize { try OutputPath.checkWritable(directory: personalize, option: "--personalize \(personalize)") }
        LoggingSystem.bootstrapStandardError(level: logLevel)
        var logger = Logger(label: "fedroute.client")
        logger[metadataKey: "client"] = .string(identity.id)
        var settings = FederationClientRunner.Settings(server: server, tls: try ca.map { try FederationCertificates.clientConfiguration(caFile: $0) })
        settings.giveUpAfter = .milliseconds(Int64(giveUpAfter * 1000))
        settings.crashInRound = crashInRound
        settings.crashMarker = crashMarker
        let local = InProcessClient(id: identity.id, train: table, validation: heldOut, policy: ClientPolicy(minimumGroupSize: minGroupSize, noiseSeed: noiseSeed))
        logger.info("starting", metadata: ["queries": .stringConvertible(table.queryCount), "held_out": .stringConvertible(heldOut.queryCount),
                                           "models": .stringConvertible(table.modelCount)])
        let outcome = try await FederationClientRunner(identity: identity, local: local, settings: settings, logger: logger).run()
        Console.info("\(identity.id): answered \(outcome.tasks) tasks over \(outcome.joins) session(s)")
        guard let personalize else { return }
        // Fine-tuning starts from the federation's local settings (older coordinators send none: defaults).
        var mlp = outcome.fineTuning ?? LocalTrainingSettings()
        mlp.epochs = fineTuneEpochs
        var mf = outcome.mfFineTuning
        mf?.epochs = fineTuneEpochs
        let personalization = ClientPersonalization(settings: .init(mlp: mlp, seed: personalizeSeed, kmeansPriorStrength: priorStrength, mf: mf))
        for o in try personalization.run(routers: outcome.routers, train: table, test: testTable, into: personalize) {
            if let auc = o.auc {
                print(String(format: "%@ on the local test set: federated AUC %.4f, fine-tuned %.4f", o.family, auc["federated"] ?? .nan, auc["fine-tuned"] ?? .nan))
            }
        }
        Console.info("wrote the federation's and the personalised routers to \(personalize)/")
    }
}
