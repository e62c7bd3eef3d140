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
    /// Longest query text accepted, in UTF-8 bytes: a longer one is an invalid row (an error, or
    /// skipped and counted with `--skip-invalid`).
    public var maxQueryBytes: Int

    /// 1 MiB: 250 times the longest prompt of the bundled data, far beyond any routed prompt.
    public static let defaultMaxQueryBytes = 1 << 20

    public init(invalidRows: InvalidRowPolicy = .fail, assumedOutputTokens: Int = 256, maxQueryBytes: Int = defaultMaxQueryBytes) {
        self.invalidRows = invalidRows
        self.assumedOutputTokens = assumedOutputTokens
        self.maxQueryBytes = maxQueryBytes
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
        guard let s = String(data: data, encoding: .utf8) else {
            let (line, byte) = firstInvalidUTF8(data)
            throw DataError(.malformed, "not valid UTF-8 (byte \(byte) of the line, offset \(line.offset) in the file)", file: path, line: line.number)
        }
        return s
    }

    /// Where the first invalid UTF-8 sequence of `data` starts: its line (1-based) and file offset,
    /// and its byte within that line (1-based).
    static func firstInvalidUTF8(_ data: Data) -> (line: (number: Int, offset: Int), byte: Int) {
        var line = 1, lineStart = 0, offset = 0
        var parser = Unicode.UTF8.ForwardParser()
        var bytes = data.makeIterator()
        while true {
            switch parser.parseScalar(from: &bytes) {
            case .valid(let scalar):
                offset += scalar.count
                if scalar.count == 1, scalar.first == 0x0A { line += 1; lineStart = offset }
            case .error, .emptyInput:
                return ((line, offset), offset - lineStart + 1)
            }
        }
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

/// Collects rows into a table, applying the invalid-row policy, the query-length limit, and
/// `finish`'s removal of exact duplicates and of training rows that repeat a test query.
struct TableAccumulator {
    var table: EvaluationTable
    var policy: InvalidRowPolicy
    var maxQueryBytes: Int
    /// Per query id: how often it was seen, and the texts it was seen with.
    private var seenIDs: [String: (count: Int, texts: Set<String>)] = [:]
    /// Whole rows (id, task, split, text, cells) seen so far, to recognise exact repeats.
    private var seenRows: Set<String> = []
    var renamedIDs = 0
    var renamedSamePrompt = 0
    var exactDuplicates = 0

    init(models: [String], policy: InvalidRowPolicy, maxQueryBytes: Int = LoadOptions.defaultMaxQueryBytes) {
        table = EvaluationTable(models: models)
        self.policy = policy
        self.maxQueryBytes = maxQueryBytes
    }

    init(models: [String], options: LoadOptions) {
        self.init(models: models, policy: options.invalidRows, maxQueryBytes: options.maxQueryBytes)
    }

    /// Runs `body` to parse one row and appends what it returns. A query longer than
    /// `maxQueryBytes` (UTF-8) is invalid; an exact repeat of an earlier row is dropped (counted in
    /// `exactDuplicates`); another row with a query id seen before gets a `#2`, `#3`… suffix
    /// (counted in `renamedIDs`). A thrown `DataError` fails or is recorded as skipped.
    mutating func row(report: inout LoadReport, file: String? = nil, line: Int? = nil,
                      _ body: () throws -> (Query, [Int: (score: Double, cost: Double)])?) throws {
        do {
            guard let (parsedQuery, cells) = try body() else { return }
            let bytes = parsedQuery.text.utf8.count
            guard bytes <= maxQueryBytes else {
                throw DataError(.invalidValue, "query '\(parsedQuery.id.prefix(80))' is \(bytes) bytes long; the limit is \(maxQueryBytes) bytes (--max-query-bytes)",
                                file: file, line: line)
            }
            let cellKey = cells.keys.sorted().map { "\($0):\(cells[$0]!.score.bitPattern):\(cells[$0]!.cost.bitPattern)" }.joined(separator: ",")
            let rowKey = [parsedQuery.id, parsedQuery.task, parsedQuery.split?.rawValue ?? "-", cellKey, parsedQuery.text].joined(separator: "\u{0}")
            guard !seenRows.contains(rowKey) else {
                exactDuplicates += 1
                return
            }
            var query = parsedQuery
            let original = query.id
            let seen = seenIDs[original]
            let n = (seen?.count ?? 0) + 1
            if n > 1 { query.id = "\(original)#\(n)" }
            try table.append(query, cells: cells)
            seenRows.insert(rowKey)
            seenIDs[original] = (n, (seen?.texts ?? []).union([parsedQuery.text]))
            if n > 1 {
                renamedIDs += 1
                if seen?.texts.contains(parsedQuery.text) == true { renamedSamePrompt += 1 }
            }
        } catch let error as DataError {
            switch policy {
            case .fail: throw error
            case .skip: report.skipped.append(error)
            }
        }
    }

    /// The table, with notes for what was renamed or dropped, and without training rows whose text
    /// is also a test query (the test row stays; a leaked copy would let a router see the answer).
    mutating func finish(report: inout LoadReport) -> EvaluationTable { finishKeepingRows(report: &report).table }

    /// `finish`, with the indices of the rows kept (to align per-row side data such as responses).
    mutating func finishKeepingRows(report: inout LoadReport) -> (table: EvaluationTable, kept: [Int]) {
        if exactDuplicates > 0 { report.note("\(exactDuplicates) rows repeating an earlier row exactly (same id, prompt and scores) were dropped") }
        if renamedIDs > 0 {
            let differ = renamedIDs - renamedSamePrompt
            var parts: [String] = []
            if differ > 0 { parts.append("\(differ) with a different prompt") }
            if renamedSamePrompt > 0 { parts.append("\(renamedSamePrompt) with the same prompt but different scores") }
            report.note("\(renamedIDs) repeated query ids were made unique with a '#n' suffix (\(parts.joined(separator: ", ")))")
        }
        let testTexts = Set((0..<table.queryCount).filter { table.queries[$0].split == .test }.map { table.queries[$0].text })
        let all = Array(0..<table.queryCount)
        guard !testTexts.isEmpty else { return (table, all) }
        let leaked = all.filter { table.queries[$0].split == .train && testTexts.contains(table.queries[$0].text) }
        guard !leaked.isEmpty else { return (table, all) }
        report.note("\(leaked.count) training rows whose prompt is also a test query were dropped (no test query leaks into training)")
        let drop = Set(leaked)
        let kept = all.filter { !drop.contains($0) }
        return (table.subset(kept), kept)
    }
}
