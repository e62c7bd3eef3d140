import CSV
import Foundation

/// Reads RouterBench CSV files (one or a folder of `{task}_{train,test}.csv`).
///
/// Model columns are the names `X` with a companion `X|total_cost` column. An empty or `nan`
/// score means "not evaluated" (unobserved cell). The `prompt` column holds the Python repr of a
/// list of turns; turns are joined with a blank line.
public enum RouterBenchLoader {
    public static func load(path: String, options: LoadOptions, report: inout LoadReport) throws -> EvaluationTable {
        var responses: [[String?]]? = nil
        return try load(path: path, options: options, report: &report, responses: &responses)
    }

    /// Loads the table and each cell's stored answer (`<model>|model_response`, the Python list of
    /// turns joined with a blank line), row-aligned with the table; `nil` where the source has none.
    public static func loadWithResponses(path: String, options: LoadOptions, report: inout LoadReport) throws -> (table: EvaluationTable, responses: [[String?]]) {
        var responses: [[String?]]? = []
        let table = try load(path: path, options: options, report: &report, responses: &responses)
        return (table, responses ?? [])
    }

    static func load(path: String, options: LoadOptions, report: inout LoadReport, responses: inout [[String?]]?) throws -> EvaluationTable {
        let files = DatasetLoader.isDirectory(path) ? try DatasetLoader.files(in: path, suffix: ".csv") : [path]
        guard !files.isEmpty else { throw DataError(.empty, "no .csv files", file: path) }
        var accumulator: TableAccumulator?
        for file in files {
            try loadFile(file, options: options, accumulator: &accumulator, report: &report, responses: &responses)
        }
        guard var acc = accumulator else { throw DataError(.empty, "no rows", file: path) }
        let (table, kept) = acc.finishKeepingRows(report: &report)
        if let all = responses, kept.count != all.count { responses = kept.map { all[$0] } }
        let unobserved = table.observed.filter { !$0 }.count
        if unobserved > 0 { report.note("\(unobserved) cells have no score (empty or NaN in the source) and are treated as not evaluated") }
        return table
    }

    static func loadFile(_ file: String, options: LoadOptions, accumulator: inout TableAccumulator?, report: inout LoadReport,
                         responses: inout [[String?]]?) throws {
        let text = try DatasetLoader.readText(file)
        let reader: CSVReader
        do { reader = try CSVReader(string: text, hasHeaderRow: true) } catch {
            throw DataError(.malformed, "cannot parse CSV header: \(error)", file: file, line: 1)
        }
        guard let header = reader.headerRow else { throw DataError(.empty, "no header row", file: file, line: 1) }
        var column: [String: Int] = [:]
        for (i, name) in header.enumerated() {
            if let first = column[name] {
                throw DataError(.duplicate, "column '\(name.prefix(100))' appears twice (columns \(first + 1) and \(i + 1))", file: file, line: 1)
            }
            column[name] = i
        }
        for required in ["sample_id", "prompt", "eval_name"] where column[required] == nil {
            throw DataError(.missingColumn, "no '\(required)' column", file: file, line: 1)
        }
        let models = header.filter { !$0.contains("|") && column[$0 + "|total_cost"] != nil }.sorted()
        // Every other column must be a usable model: one without its cost column (or a cost column
        // without its score column) is left out with a note, never silently.
        let known: Set<String> = ["", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"]
        let costless = header.filter { !$0.contains("|") && !known.contains($0) && column[$0 + "|total_cost"] == nil }
        let scoreless = header.filter { $0.hasSuffix("|total_cost") && column[String($0.dropLast("|total_cost".count))] == nil }
        if accumulator == nil, !(costless + scoreless).isEmpty {
            report.note("columns left out of \((file as NSString).lastPathComponent): "
                        + (costless.map { "'\($0.prefix(100))' (no '|total_cost' column)" } + scoreless.map { "'\($0.prefix(100))' (no score column)" }).joined(separator: ", "))
        }
        if accumulator == nil { accumulator = TableAccumulator(models: models, options: options) }
        guard accumulator!.table.models == models else {
            throw DataError(.unknownModel, "models \(models) differ from earlier files' \(accumulator!.table.models)", file: file, line: 1)
        }
        let split = DatasetLoader.splitAndStem(fileName: (file as NSString).lastPathComponent).split
        var rowNumber = 1
        while let fields = reader.next() {
            rowNumber += 1
            let line = rowNumber
            if fields.count == 1 && fields[0].isEmpty { continue }  // blank line
            let rowsBefore = accumulator!.table.queryCount
            defer {
                if responses != nil, accumulator!.table.queryCount > rowsBefore {
                    responses!.append(models.map { model in
                        guard let c = column[model + "|model_response"], c < fields.count else { return nil }
                        let raw = fields[c]
                        if raw.isEmpty || raw == "nan" { return nil }
                        return (try? PythonLiteral.parseStringList(raw))?.joined(separator: "\n\n") ?? raw
                    })
                }
            }
            try accumulator!.row(report: &report, file: file, line: line) {
                guard fields.count == header.count else {
                    throw DataError(.malformed, "row has \(fields.count) fields, header has \(header.count)", file: file, line: line)
                }
                let turns: [String]
                do { turns = try PythonLiteral.parseStringList(fields[column["prompt"]!]) } catch {
                    throw DataError(.malformed, "prompt is not a Python list of strings (\(error))", file: file, line: line)
                }
                let id = fields[column["sample_id"]!]
                guard !id.isEmpty else { throw DataError(.malformed, "empty sample_id", file: file, line: line) }
                var cells: [Int: (score: Double, cost: Double)] = [:]
                for (m, model) in models.enumerated() {
                    let raw = fields[column[model]!].trimmingCharacters(in: .whitespaces)
                    if raw.isEmpty || raw.lowercased() == "nan" { continue }
                    guard let score = Double(raw), score.isFinite, (0...1).contains(score) else {
                        throw DataError(.invalidValue, "score '\(raw)' of model '\(model)' is not a number in [0, 1]", file: file, line: line)
                    }
                    let rawCost = fields[column[model + "|total_cost"]!].trimmingCharacters(in: .whitespaces)
                    guard let cost = Double(rawCost), cost.isFinite, cost >= 0 else {
                        throw DataError(.invalidValue, "cost '\(rawCost)' of model '\(model)' is not a finite non-negative number", file: file, line: line)
                    }
                    cells[m] = (score, cost)
                }
                return (Query(id: id, text: turns.joined(separator: "\n\n"), task: fields[column["eval_name"]!], split: split), cells)
            }
        }
        if let error = reader.error {
            throw DataError(.malformed, "CSV parse error after row \(rowNumber): \(error)", file: file, line: rowNumber)
        }
    }
}

