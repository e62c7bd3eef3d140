import Foundation

/// Writes an `EvaluationReport` as JSON, CSV (one line per frontier point), SVG and a text table.
public enum ReportWriter {
    public static func json(_ report: EvaluationReport) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(report)
    }

    public static func csv(_ report: EvaluationReport) -> String {
        var out = "name,role,lambda,cost,quality\n"
        for entry in report.entries {
            for p in entry.points {
                out += "\(quoted(entry.name)),\(entry.role.rawValue),\(p.lambda.map { "\($0)" } ?? ""),\(p.cost),\(p.quality)\n"
            }
        }
        for s in report.singleModels { out += "\(quoted(s.model)),single-model,,\(s.cost),\(s.quality)\n" }
        return out
    }

    static func quoted(_ s: String) -> String { s.contains(where: { $0 == "," || $0 == "\"" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }

    /// A plain-text table of the metrics, routers first.
    public static func table(_ report: EvaluationReport) -> String {
        let fractions = report.entries.first?.costToReach.keys.sorted { Int($0.dropLast())! < Int($1.dropLast())! } ?? []
        var rows: [[String]] = [["router", "AUC", "− best-single@λ", "− zero-router", "AIQ", "max quality", "min cost $"] + fractions.map { "$ to \($0) best" }]
        for e in report.entries {
            // Every router row shows what it must beat; reference rows leave the margins empty.
            let margins = e.role == .router ? report.margins(of: e.name) : nil
            rows.append([e.name, f(e.auc, 4), margins.map { signed($0.overBestSingle) } ?? "", margins.map { signed($0.overZeroRouter) } ?? "",
                         f(e.aiq, 4), f(e.maxQuality, 4), sci(e.minCost)] + fractions.map { k in (e.costToReach[k] ?? nil).map(sci) ?? "—" })
        }
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max()! }
        var out = rows.enumerated().map { i, row in
            row.enumerated().map { c, s in c == 0 ? s.padding(toLength: widths[c], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[c] - s.count) + s }
                .joined(separator: "  ") + (i == 0 ? "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") : "")
        }.joined(separator: "\n")
        out += "\n\n\(report.testQueries) fully labelled test queries (\(report.excludedTestQueries) excluded: not every model evaluated); "
        out += "AUC/AIQ normalised over single-model cost window [\(sci(report.window.low)), \(sci(report.window.high))] $/query; best single model by train score: \(report.bestSingleModel)\n"
        return out
    }

    static func f(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
    static func signed(_ x: Double) -> String { String(format: "%+.4f", x) }
    static func sci(_ x: Double) -> String { String(format: "%.3e", x) }

    public static func write(_ report: EvaluationReport, to directory: String, title: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let paths = ["report.json", "frontier.csv", "frontier.svg", "summary.txt"].map { (directory as NSString).appendingPathComponent($0) }
        try json(report).write(to: URL(fileURLWithPath: paths[0]), options: .atomic)
        try Data(csv(report).utf8).write(to: URL(fileURLWithPath: paths[1]), options: .atomic)
        try Data(SVGPlot.render(report, title: title).utf8).write(to: URL(fileURLWithPath: paths[2]), options: .atomic)
        try Data(table(report).utf8).write(to: URL(fileURLWithPath: paths[3]), options: .atomic)
        return paths
    }
}
