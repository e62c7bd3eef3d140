import ArgumentParser
import FedRouteData
import FedRouteFederation
import Foundation

/// What a federation participant holds and does with the result, shared by `fedroute client` (fedroute's
/// own transport) and `fedroute flower-node` (Flower's Fleet API).
struct LocalClientOptions: ParsableArguments {
    @Option(name: .long, help: "Local evaluation data (any supported format).") var data: String
    @Option(name: .long, help: "Data format; detected when omitted.") var format: DataFormat?
    @Option(name: .long, help: "Privacy floor: fewest local rows behind any shared aggregate.") var minGroupSize = 3
    @Option(name: .long, help: "Seed the DP noise (reproducible experiments only; the default draws it from the system).") var noiseSeed: UInt64?
    @Option(name: .long, help: "After training, write the federation's routers and this client's personalised ones (fine-tuned on the local data) here.") var personalize: String?
    @Option(name: .long, help: "Seed of MLP fine-tuning.") var personalizeSeed: UInt64 = 0
    @Option(name: .long, help: "Local epochs of MLP fine-tuning (the other settings are the federation's).") var fineTuneEpochs = 1
    @Option(name: .long, help: "K-Means fine-tuning: pseudo-observations of the global cell mean.") var priorStrength = 1.0
    @Option(name: .long, help: "A local test set (fully labelled): report federated vs personalised AUC on it.") var test: String?
    @Option(name: .long, help: "Held-out rows for the federation's model selection and safety gate (nothing trains on them); overrides --validation-fraction.") var validation: String?
    @Option(name: .long, help: "Share of --data held out for validation when --validation is not given (0: none).") var validationFraction = 0.15
    @Option(name: .long, help: "Seed of the --validation-fraction hold-out.") var validationSeed: UInt64 = 0

    func validate() throws {
        guard minGroupSize >= 1 else { throw ValidationError("--min-group-size must be at least 1") }
        guard fineTuneEpochs >= 0 else { throw ValidationError("--fine-tune-epochs must be ≥ 0") }
        guard priorStrength >= 0, priorStrength.isFinite else { throw ValidationError("--prior-strength must be finite and ≥ 0") }
        guard (0..<1).contains(validationFraction) else { throw ValidationError("--validation-fraction must be in [0, 1)") }
    }

    /// The local training rows and the held-out rows: a file of their own, or a seeded share of --data.
    func load() throws -> (train: EvaluationTable, heldOut: EvaluationTable, test: EvaluationTable?) {
        let loaded = try DataOptions.load(path: data, format: format, skipInvalid: false).table
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
        return (table, heldOut, testTable)
    }

    /// The client as the federation's algorithms see it.
    func client(id: String, train: EvaluationTable, heldOut: EvaluationTable, maskGenerators: [MaskGenerator]? = nil,
                trainsWithKey: Bool? = nil, ring32: Bool? = nil) -> InProcessClient {
        InProcessClient(id: id, train: train, validation: heldOut,
                        policy: ClientPolicy(minimumGroupSize: minGroupSize, noiseSeed: noiseSeed, maskGenerators: maskGenerators, trainsWithKey: trainsWithKey,
                                             ring32: ring32))
    }

    /// With --personalize: writes the federation's routers and the fine-tuned ones, and prints the
    /// local test AUCs.
    func personalize(routers: [String: Data], fineTuning: LocalTrainingSettings?, mfFineTuning: LocalTrainingSettings?,
                     train: EvaluationTable, test: EvaluationTable?) throws {
        guard let personalize else { return }
        // Fine-tuning starts from the federation's local settings (older coordinators send none: defaults).
        var mlp = fineTuning ?? LocalTrainingSettings()
        mlp.epochs = fineTuneEpochs
        var mf = mfFineTuning
        mf?.epochs = fineTuneEpochs
        let personalization = ClientPersonalization(settings: .init(mlp: mlp, seed: personalizeSeed, kmeansPriorStrength: priorStrength, mf: mf))
        for o in try personalization.run(routers: routers, train: train, test: test, into: personalize) {
            if let auc = o.auc {
                print(String(format: "%@ on the local test set: federated AUC %.4f, fine-tuned %.4f", o.family, auc["federated"] ?? .nan, auc["fine-tuned"] ?? .nan))
            }
        }
        Console.info("wrote the federation's and the personalised routers to \(personalize)/")
    }
}
