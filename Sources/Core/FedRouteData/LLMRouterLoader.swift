import Foundation

/// Reads the LLMRouter example data: `dc_{train,test}.json` scores joined on the query text with
/// `q_{train,test}.jsonl` task labels, costs from `default_llm.json` per-token prices.
///
/// Cost = input price × estimated prompt tokens + output price × `assumedOutputTokens` (the data has
/// no responses). A test question that also appears in train is removed from train (noted).
public enum LLMRouterLoader {
    public static func load(directory: String, options: LoadOptions, report: inout LoadReport) throws -> EvaluationTable {
        let pricePath = (directory as NSString).appendingPathComponent("default_llm.json")
        guard let priceJSON = try DatasetLoader.readJSON(pricePath) as? [String: Any] else {
            throw DataError(.malformed, "expected an object of models", file: pricePath)
        }
        var prices: [String: TokenPrice] = [:]
        for (model, value) in priceJSON {
            guard let entry = value as? [String: Any],
                  let input = (entry["input_price"] as? NSNumber)?.doubleValue,
                  let output = (entry["output_price"] as? NSNumber)?.doubleValue
            else { throw DataError(.malformed, "model '\(model)' lacks numeric input_price/output_price", file: pricePath) }
            guard input.isFinite, output.isFinite, input >= 0, output >= 0 else {
                throw DataError(.invalidValue, "model '\(model)': input_price \(input) and output_price \(output) must be finite numbers ≥ 0", file: pricePath)
            }
            prices[model] = TokenPrice(input: input, output: output)
        }
        // Models are those with scores (the price table may list more); each needs a price.
        var scored = Set<String>()
        var splitRows: [(split: Split, path: String, rows: [Any])] = []
        for split in [Split.train, .test] {
            let path = (directory as NSString).appendingPathComponent("dc_\(split.rawValue).json")
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let rows = try DatasetLoader.readJSON(path) as? [Any] else { throw DataError(.malformed, "expected a JSON list", file: path) }
            for case let obj as [String: Any] in rows { scored.formUnion((obj["scores"] as? [String: Any])?.keys ?? [:].keys) }
            splitRows.append((split, path, rows))
        }
        let models = scored.sorted()
        if let unpriced = models.first(where: { prices[$0] == nil }) {
            throw DataError(.unknownModel, "model '\(unpriced)' has scores but no price", file: pricePath)
        }
        report.note("costs estimated from default_llm.json prices: prompt tokens ≈ UTF-8 bytes / 4, \(options.assumedOutputTokens) output tokens assumed")
        var acc = TableAccumulator(models: models, options: options)
        let testQuestions = Set(splitRows.filter { $0.split == .test }.flatMap { $0.rows.compactMap { ($0 as? [String: Any])?["question"] as? String } })
        var droppedOverlap = 0
        var missingTask = 0
        for (split, scorePath, rows) in splitRows {
            let taskOf = try taskLabels((directory as NSString).appendingPathComponent("q_\(split.rawValue).jsonl"), report: &report)
            for (i, item) in rows.enumerated() {
                try acc.row(report: &report) {
                    guard let obj = item as? [String: Any], let question = obj["question"] as? String,
                          let scores = obj["scores"] as? [String: Any]
                    else { throw DataError(.malformed, "item \(i) lacks 'question' or 'scores'", file: scorePath, line: i + 1) }
                    if split == .train && testQuestions.contains(question) { droppedOverlap += 1; return nil }
                    let task: String
                    if let t = taskOf[question] { task = t } else {
                        missingTask += 1
                        task = (obj["cluster_id"] as? NSNumber).map { "cluster-\($0)" } ?? "unknown"
                    }
                    var cells: [Int: (score: Double, cost: Double)] = [:]
                    let tokens = TokenEstimate.count(question)
                    for (model, value) in scores {
                        let m = models.firstIndex(of: model)!
                        if value is NSNull { continue }
                        guard let score = (value as? NSNumber)?.doubleValue, score.isFinite, (0...1).contains(score) else {
                            throw DataError(.invalidValue, "score of '\(model)' is not a number in [0, 1]", file: scorePath, line: i + 1)
                        }
                        cells[m] = (score, prices[model]!.cost(inputTokens: tokens, outputTokens: options.assumedOutputTokens))
                    }
                    return (Query(id: "dc_\(split.rawValue):\(i)", text: question, task: task, split: split), cells)
                }
            }
        }
        if droppedOverlap > 0 { report.note("\(droppedOverlap) train questions also in dc_test.json were removed from train") }
        if missingTask > 0 { report.note("\(missingTask) questions had no task in q_*.jsonl and were labelled by cluster_id") }
        return acc.finish(report: &report)
    }

    static func taskLabels(_ path: String, report: inout LoadReport) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        var out: [String: String] = [:]
        var conflicts = 0
        for (n, line) in try DatasetLoader.readText(path).split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let query = obj["query"] as? String, let task = obj["task_name"] as? String
            else { throw DataError(.malformed, "expected an object with 'query' and 'task_name'", file: path, line: n + 1) }
            if let existing = out[query], existing != task { conflicts += 1; continue }
            out[query] = task
        }
        if conflicts > 0 { report.note("\(conflicts) queries in \((path as NSString).lastPathComponent) carry two task labels; the first is kept") }
        return out
    }
}
