import CSV
import Foundation

/// Reads RouteLLM's two-model correctness data: `mmlu/mmlu_<subject>.csv` and `gsm8k_responses.csv`
/// (`prompt`, then one True/False column per model, optionally `<model>_response`).
///
/// There are no costs. fedroute uses the models' public list prices per million tokens
/// (`listPrices`), on estimated prompt tokens plus the response's tokens when the file has the
/// response, else `assumedOutputTokens`. `mt_bench/` (judge scores) is not an evaluation table and
/// is not read here.
public enum RouteLLMLoader {
    /// USD per million tokens (input, output) used for the RouteLLM models.
    public static let listPrices: [String: TokenPrice] = [
        "gpt-4-1106-preview": TokenPrice(input: 10, output: 30),
        "mistralai/Mixtral-8x7B-Instruct-v0.1": TokenPrice(input: 0.6, output: 0.6),
    ]

    public static func load(directory: String, options: LoadOptions, report: inout LoadReport) throws -> EvaluationTable {
        var files: [(path: String, task: String)] = []
        let mmlu = (directory as NSString).appendingPathComponent("mmlu")
        if FileManager.default.fileExists(atPath: mmlu) {
            files += try DatasetLoader.files(in: mmlu, suffix: ".csv").map { ($0, ((($0 as NSString).lastPathComponent) as NSString).deletingPathExtension) }
        }
        let gsm = (directory as NSString).appendingPathComponent("gsm8k_responses.csv")
        if FileManager.default.fileExists(atPath: gsm) { files.append((gsm, "gsm8k")) }
        guard !files.isEmpty else { throw DataError(.empty, "no mmlu/*.csv or gsm8k_responses.csv", file: directory) }
        let models = listPrices.keys.sorted()
        report.note("RouteLLM has no costs: list prices \(listPrices.map { "\($0.key) $\($0.value.input)/$\($0.value.output) per M tokens" }.sorted().joined(separator: ", ")); prompt tokens ≈ bytes / 4")
        var acc = TableAccumulator(models: models, options: options)
        for (file, task) in files {
            let reader: CSVReader
            do { reader = try CSVReader(string: try DatasetLoader.readText(file), hasHeaderRow: true) } catch let e as DataError { throw e } catch {
                throw DataError(.malformed, "cannot parse CSV: \(error)", file: file, line: 1)
            }
            guard let header = reader.headerRow, let promptColumn = header.firstIndex(of: "prompt") else {
                throw DataError(.missingColumn, "no 'prompt' column", file: file, line: 1)
            }
            var modelColumns: [(m: Int, score: Int, response: Int?)] = []
            for (m, model) in models.enumerated() {
                guard let c = header.firstIndex(of: model) else { throw DataError(.missingColumn, "no column for model '\(model)'", file: file, line: 1) }
                modelColumns.append((m, c, header.firstIndex(of: model + "_response")))
            }
            for name in header where !["prompt"].contains(name) && !name.hasSuffix("_response") && !models.contains(name) {
                throw DataError(.unknownModel, "column '\(name)' names a model without a known price", file: file, line: 1)
            }
            var rowNumber = 1
            while let fields = reader.next() {
                rowNumber += 1
                let line = rowNumber
                try acc.row(report: &report) {
                    guard fields.count == header.count else {
                        throw DataError(.malformed, "row has \(fields.count) fields, header has \(header.count)", file: file, line: line)
                    }
                    let prompt = fields[promptColumn]
                    let inTokens = TokenEstimate.count(prompt)
                    var cells: [Int: (score: Double, cost: Double)] = [:]
                    for col in modelColumns {
                        let raw = fields[col.score].trimmingCharacters(in: .whitespaces)
                        if raw.isEmpty || raw.lowercased() == "nan" { continue }
                        let score: Double
                        switch raw.lowercased() {
                        case "true", "1", "1.0": score = 1
                        case "false", "0", "0.0": score = 0
                        default: throw DataError(.invalidValue, "'\(raw)' is not a boolean for model '\(models[col.m])'", file: file, line: line)
                        }
                        let outTokens = col.response.map { TokenEstimate.count(fields[$0]) } ?? options.assumedOutputTokens
                        cells[col.m] = (score, listPrices[models[col.m]]!.cost(inputTokens: inTokens, outputTokens: outTokens))
                    }
                    return (Query(id: "\(task):\(line - 1)", text: prompt, task: task, split: nil), cells)
                }
            }
            if let error = reader.error { throw DataError(.malformed, "CSV parse error after row \(rowNumber): \(error)", file: file, line: rowNumber) }
        }
        return acc.finish(report: &report)
    }
}
