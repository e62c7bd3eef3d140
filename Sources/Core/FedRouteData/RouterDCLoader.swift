import Foundation

/// Reads RouterDC JSON (`[{question, scores: {model: score}}]`, one file per task, `_train`/`_test`
/// or `-train`/`-test` suffixes give the split).
///
/// The data has no costs. fedroute uses a documented proxy: a price of $0.02 per million tokens per
/// billion parameters (parsed from the model name, e.g. `7B`), on estimated prompt tokens plus
/// `assumedOutputTokens`.
public enum RouterDCLoader {
    public static let dollarsPerMillionTokensPerBillionParameters = 0.02

    public static func load(path: String, options: LoadOptions, report: inout LoadReport) throws -> EvaluationTable {
        let files = DatasetLoader.isDirectory(path) ? try DatasetLoader.files(in: path, suffix: ".json") : [path]
        var parsed: [(file: String, rows: [[String: Any]])] = []
        var modelSet = Set<String>()
        for file in files {
            guard let rows = try DatasetLoader.readJSON(file) as? [[String: Any]] else { throw DataError(.malformed, "expected a JSON list of objects", file: file) }
            for (i, r) in rows.enumerated() {
                guard let s = r["scores"] as? [String: Any] else {
                    if options.invalidRows == .skip { continue }
                    throw DataError(.malformed, "item \(i + 1) lacks 'scores'", file: file, line: i + 1)
                }
                modelSet.formUnion(s.keys)
            }
            parsed.append((file, rows))
        }
        let models = modelSet.sorted()
        var prices: [String: TokenPrice] = [:]
        for model in models {
            guard let billions = parameterCount(model) else {
                throw DataError(.unknownModel, "cannot derive a cost proxy for '\(model)': no parameter count like '7B' in its name")
            }
            let p = billions * dollarsPerMillionTokensPerBillionParameters
            prices[model] = TokenPrice(input: p, output: p)
        }
        report.note("RouterDC has no costs: proxy price $\(dollarsPerMillionTokensPerBillionParameters)/M tokens per billion parameters, \(options.assumedOutputTokens) output tokens assumed")
        var acc = TableAccumulator(models: models, options: options)
        for (file, rows) in parsed {
            let (stem, split) = DatasetLoader.splitAndStem(fileName: (file as NSString).lastPathComponent)
            for (i, r) in rows.enumerated() {
                try acc.row(report: &report) {
                    guard let question = r["question"] as? String, let scores = r["scores"] as? [String: Any] else {
                        throw DataError(.malformed, "item lacks 'question' or 'scores'", file: file, line: i + 1)
                    }
                    let tokens = TokenEstimate.count(question)
                    var cells: [Int: (score: Double, cost: Double)] = [:]
                    for (model, value) in scores {
                        if value is NSNull { continue }
                        guard let score = (value as? NSNumber)?.doubleValue, score.isFinite, (0...1).contains(score) else {
                            throw DataError(.invalidValue, "score of '\(model)' is not a number in [0, 1]", file: file, line: i + 1)
                        }
                        cells[models.firstIndex(of: model)!] = (score, prices[model]!.cost(inputTokens: tokens, outputTokens: options.assumedOutputTokens))
                    }
                    return (Query(id: "\(stem):\(i)", text: question, task: stem, split: split), cells)
                }
            }
        }
        return acc.finish(report: &report)
    }

    /// Billions of parameters named in a model id (`Meta-Llama-3-8B` → 8), if any.
    public static func parameterCount(_ model: String) -> Double? {
        let chars = Array(model.lowercased())
        var best: Double?
        var i = 0
        while i < chars.count {
            if chars[i].isNumber, i == 0 || !chars[i - 1].isLetter && !chars[i - 1].isNumber && chars[i - 1] != "." {
                var j = i
                while j < chars.count, chars[j].isNumber || chars[j] == "." { j += 1 }
                if j < chars.count, chars[j] == "b", j + 1 == chars.count || !chars[j + 1].isLetter {
                    if let v = Double(String(chars[i..<j])) { best = v }
                }
                i = j
            } else { i += 1 }
        }
        return best
    }
}
