import ArgumentParser
import FedRouteData

/// Where the data comes from and how it is split.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "Evaluation data: a file or folder in any supported format.")
    var data: String

    @Option(name: .long, help: "Data format (routerbench, llmrouter, routerdc, routellm, native); detected when omitted.")
    var format: DataFormat?

    @Flag(name: .long, help: "Skip rows that fail validation (they are counted and reported) instead of stopping.")
    var skipInvalid = false

    @Option(name: .long, help: "Longest query accepted, in UTF-8 bytes (a longer one is an invalid row).")
    var maxQueryBytes = LoadOptions.defaultMaxQueryBytes

    @Option(name: .long, help: "Fraction of queries held out for testing when the source has no train/test split.")
    var testFraction = 0.2

    @Option(name: .long, help: "Seed for the split and every other random choice.")
    var seed: UInt64 = 0

    func validate() throws {
        guard (0..<1).contains(testFraction) else { throw ValidationError("--test-fraction must be in [0, 1)") }
        guard maxQueryBytes > 0 else { throw ValidationError("--max-query-bytes must be positive") }
    }

    func load() throws -> LoadedDataset {
        try Self.load(path: data, format: format, skipInvalid: skipInvalid, maxQueryBytes: maxQueryBytes)
    }

    /// Loads a data set and prints its load notes and skipped rows.
    static func load(path: String, format: DataFormat?, skipInvalid: Bool, maxQueryBytes: Int = LoadOptions.defaultMaxQueryBytes) throws -> LoadedDataset {
        let loaded = try DatasetLoader.load(path: path, format: format,
                                            options: LoadOptions(invalidRows: skipInvalid ? .skip : .fail, maxQueryBytes: maxQueryBytes))
        for note in loaded.report.notes { Console.info("note: \(note)") }
        if !loaded.report.skipped.isEmpty {
            Console.info("skipped \(loaded.report.skipped.count) invalid rows; first: \(loaded.report.skipped[0])")
        }
        return loaded
    }

    /// Loads the data and splits it (source split, else seeded `--test-fraction`).
    func loadTrainTest() throws -> (train: EvaluationTable, test: EvaluationTable) {
        let (train, test) = try load().table.trainTestSplit(testFraction: testFraction, seed: seed)
        Console.info("train \(train.queryCount) queries, test \(test.queryCount) held out; \(train.modelCount) models")
        return (train, test)
    }
}
