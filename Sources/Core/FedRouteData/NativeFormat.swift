import FedRouteNumerics
import Foundation

/// fedroute's native evaluation-log format: JSON Lines, one query per line.
///
/// ```json
/// {"id":"q1","query":"What is 2+2?","task":"math","split":"train",
///  "models":{"gpt-4":{"score":1.0,"cost":0.0031},"mistral-7b":{"score":null,"cost":null}}}
/// ```
/// `split` is optional (`train`/`test`). A model with `score: null` (or absent) was not evaluated.
/// Every evaluated cell needs a `cost` in USD. The README's Data section documents it.
public enum NativeFormat {
    struct Line: Codable {
        struct Cell: Codable {
            var score: Double?
            var cost: Double?
        }
        var id: String
        var query: String
        var task: String
        var split: Split?
        var models: [String: Cell]
    }

    public static func read(path: String, options: LoadOptions, report: inout LoadReport) throws -> EvaluationTable {
        let files = DatasetLoader.isDirectory(path) ? try DatasetLoader.files(in: path, suffix: ".jsonl") : [path]
        var lines: [(file: String, line: Int, value: Line)] = []
        var modelSet = Set<String>()
        for file in files {
            // Lines are decoded over the cores, then taken in file order: the same rows, errors and skips as one by one.
            for (n, decoded) in decodeLines(try DatasetLoader.readText(file).split(separator: "\n", omittingEmptySubsequences: false)).enumerated() {
                switch decoded {
                case nil: continue
                case .success(let value):
                    lines.append((file, n + 1, value))
                    modelSet.formUnion(value.models.keys)
                case .failure(let error):
                    let e = DataError(.malformed, "not a valid fedroute record: \(describe(error))", file: file, line: n + 1)
                    if options.invalidRows == .fail { throw e }
                    report.skipped.append(e)
                }
            }
        }
        let models = modelSet.sorted()
        var acc = TableAccumulator(models: models, options: options)
        var seen = Set<String>()
        for (file, lineNumber, line) in lines {
            try acc.row(report: &report) {
                guard seen.insert(line.id).inserted else { throw DataError(.duplicate, "query id '\(line.id)' appears twice", file: file, line: lineNumber) }
                var cells: [Int: (score: Double, cost: Double)] = [:]
                for (model, cell) in line.models {
                    guard let score = cell.score else { continue }
                    guard score.isFinite, (0...1).contains(score) else {
                        throw DataError(.invalidValue, "score \(score) of model '\(model)' is not in [0, 1]", file: file, line: lineNumber)
                    }
                    guard let cost = cell.cost, cost.isFinite, cost >= 0 else {
                        throw DataError(.invalidValue, "model '\(model)' has a score but no finite non-negative cost", file: file, line: lineNumber)
                    }
                    cells[models.firstIndex(of: model)!] = (score, cost)
                }
                return (Query(id: line.id, text: line.query, task: line.task, split: line.split), cells)
            }
        }
        return acc.finish(report: &report)
    }

    /// Each line decoded as a record (nil for a blank line), in parallel over chunks of lines.
    static func decodeLines(_ raws: [Substring]) -> [Result<Line, any Error>?] {
        var out = [Result<Line, any Error>?](repeating: nil, count: raws.count)
        out.withUnsafeMutableBufferPointer { buffer in
            // Each part writes only its own lines.
            let shared = RowParallel.Shared(buffer.baseAddress!)
            RowParallel.forEachRange(count: raws.count, minimumPerPart: 2_048) { range in
                let decoder = JSONDecoder()
                for i in range where !raws[i].allSatisfy(\.isWhitespace) {
                    shared.value[i] = Result { try decoder.decode(Line.self, from: Data(raws[i].utf8)) }
                }
            }
        }
        return out
    }

    /// Writes `table` as native JSONL (models sorted). Unobserved cells are written as `{}` so that
    /// a model nobody evaluated in this table is still in its model list when it is read back.
    public static func write(_ table: EvaluationTable, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = Data()
        for r in 0..<table.queryCount {
            var models: [String: Line.Cell] = [:]
            for m in 0..<table.modelCount {
                models[table.models[m]] = table.isObserved(r, m) ? Line.Cell(score: table.score(r, m), cost: table.cost(r, m)) : Line.Cell()
            }
            let q = table.queries[r]
            out.append(try encoder.encode(Line(id: q.id, query: q.text, task: q.task, split: q.split, models: models)))
            out.append(0x0A)
        }
        do { try out.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw DataError(.unreadable, "cannot write: \(error.localizedDescription)", file: path)
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "invalid JSON" : "invalid value at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: return "\(error)"
        }
    }
}
