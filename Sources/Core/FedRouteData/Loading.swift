import Foundation

/// The evaluation-data formats fedroute reads.
public enum DataFormat: String, Sendable, CaseIterable, Codable {
    /// RouterBench CSV: one row per query, `<model>`, `<model>|total_cost` columns.
    case routerbench
    /// LLMRouter: `dc_{train,test}.json` + `q_{train,test}.jsonl` + `default_llm.json` prices.
    case llmrouter
    /// RouterDC: JSON lists of `{question, scores}`.
    case routerdc
    /// RouteLLM: `mmlu/*.csv` and `gsm8k_responses.csv`, strong/weak booleans.
    case routellm
    /// fedroute's own JSONL (documented in the README's Data section).
    case native
}

/// Options shared by the loaders.
public struct LoadOptions: Sendable {
    public var invalidRows: InvalidRowPolicy
    /// Output tokens assumed when a source gives neither a cost nor a response to count.
    public var assumedOutputTokens: Int

    public init(invalidRows: InvalidRowPolicy = .fail, assumedOutputTokens: Int = 256) {
        self.invalidRows = invalidRows
        self.assumedOutputTokens = assumedOutputTokens
    }
}

/// A loaded data set: its table, where it came from, and what the loader noted.
public struct LoadedDataset: Sendable {
    public var table: EvaluationTable
    public var format: DataFormat
    public var source: String
    public var report: LoadReport

    public init(table: EvaluationTable, format: DataFormat, source: String, report: LoadReport) {
        self.table = table
        self.format = format
        self.source = source
        self.report = report
    }
}

/// Entry point: detects the format of a file or folder and loads it.
public enum DatasetLoader {
    public static func load(path: String, format: DataFormat? = nil, options: LoadOptions = LoadOptions()) throws -> LoadedDataset {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError(.fileNotFound, "no such file or folder", file: path)
        }
        let chosen = try format ?? detectFormat(path: path, isDirectory: isDirectory.boolValue)
        var report = LoadReport()
        let table: EvaluationTable
        switch chosen {
        case .routerbench: table = try RouterBenchLoader.load(path: path, options: options, report: &report)
        case .llmrouter: table = try LLMRouterLoader.load(directory: path, options: options, report: &report)
        case .routerdc: table = try RouterDCLoader.load(path: path, options: options, report: &report)
        case .routellm: table = try RouteLLMLoader.load(directory: path, options: options, report: &report)
        case .native: table = try NativeFormat.read(path: path, options: options, report: &report)
        }
        guard table.queryCount > 0 else { throw DataError(.empty, "no queries loaded", file: path) }
        return LoadedDataset(table: table, format: chosen, source: path, report: report)
    }

    /// Guesses the format from file names and the first bytes.
    public static func detectFormat(path: String, isDirectory: Bool) throws -> DataFormat {
        let fm = FileManager.default
        if !isDirectory {
            if path.hasSuffix(".jsonl") { return .native }
            if path.hasSuffix(".csv") { return .routerbench }
            if path.hasSuffix(".json") { return .routerdc }
            throw DataError(.unknownFormat, "cannot tell the format from the name; pass --format", file: path)
        }
        let names = (try? fm.contentsOfDirectory(atPath: path)) ?? []
        if names.contains("dc_train.json") || names.contains("default_llm.json") { return .llmrouter }
        if names.contains("mmlu") || names.contains("gsm8k_responses.csv") { return .routellm }
        if names.contains(where: { $0.hasSuffix(".csv") }) { return .routerbench }
        if names.contains(where: { $0.hasSuffix(".jsonl") }) { return .native }
        if names.contains(where: { $0.hasSuffix(".json") }) { return .routerdc }
        throw DataError(.unknownFormat, "no recognisable evaluation files in folder; pass --format", file: path)
    }

    /// Files in `directory` with `suffix`, sorted by name.
    static func files(in directory: String, suffix: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasSuffix(suffix) }
                .sorted()
                .map { (directory as NSString).appendingPathComponent($0) }
        } catch {
            throw DataError(.unreadable, "cannot list folder: \(error.localizedDescription)", file: directory)
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    static func readText(_ path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(.fileNotFound, "no such file", file: path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(.unreadable, "cannot read", file: path) }
        guard let s = String(data: data, encoding: .utf8) else { throw DataError(.malformed, "not valid UTF-8", file: path) }
        return s
    }

    static func readJSON(_ path: String) throws -> Any {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(FileManager.default.fileExists(atPath: path) ? .unreadable : .fileNotFound, "cannot read", file: path)
        }
        do { return try JSONSerialization.jsonObject(with: data) } catch {
            throw DataError(.malformed, "invalid JSON: \(error.localizedDescription)", file: path)
        }
    }

    /// Split and task label implied by a file name such as `arc_challenge_train.csv` or `gsm8k-test.json`.
    static func splitAndStem(fileName: String) -> (stem: String, split: Split?) {
        let base = (fileName as NSString).deletingPathExtension
        for (suffix, split) in [("_train", Split.train), ("-train", .train), ("_test", .test), ("-test", .test)] where base.hasSuffix(suffix) {
            return (String(base.dropLast(suffix.count)), split)
        }
        return (base, nil)
    }
}

/// Rough token counts for sources that give prices per token instead of costs.
public enum TokenEstimate {
    /// About four UTF-8 bytes per token, as OpenAI's rule of thumb; at least 1.
    public static func count(_ text: String) -> Int { count(bytes: text.utf8.count) }

    /// The same estimate from a UTF-8 byte count.
    public static func count(bytes: Int) -> Int { max(1, (bytes + 3) / 4) }
}

/// USD per million input and output tokens.
public struct TokenPrice: Sendable, Equatable, Codable {
    public var input: Double
    public var output: Double

    public init(input: Double, output: Double) {
        self.input = input
        self.output = output
    }

    public func cost(inputTokens: Int, outputTokens: Int) -> Double {
        (input * Double(inputTokens) + output * Double(outputTokens)) / 1_000_000
    }
}

/// Collects rows into a table, applying the invalid-row policy.
struct TableAccumulator {
    var table: EvaluationTable
    var policy: InvalidRowPolicy
    private var seenIDs: [String: Int] = [:]
    var renamedIDs = 0

    init(models: [String], policy: InvalidRowPolicy) {
        table = EvaluationTable(models: models)
        self.policy = policy
    }

    /// Runs `body` to parse one row and appends what it returns; a query id seen before gets a
    /// `#2`, `#3`… suffix (counted in `renamedIDs`). A thrown `DataError` fails or is recorded as skipped.
    mutating func row(report: inout LoadReport, _ body: () throws -> (Query, [Int: (score: Double, cost: Double)])?) throws {
        do {
            guard let (parsedQuery, cells) = try body() else { return }
            var query = parsedQuery
            let original = query.id
            let n = seenIDs[original, default: 0] + 1
            if n > 1 { query.id = "\(original)#\(n)" }
            try table.append(query, cells: cells)
            seenIDs[original] = n
            if n > 1 { renamedIDs += 1 }
        } catch let error as DataError {
            switch policy {
            case .fail: throw error
            case .skip: report.skipped.append(error)
            }
        }
    }
}
