import FedRouteEvaluation
import FedRouteFeatures
import FedRouteNumerics
import Foundation

/// Writes the Meta-Router experiments' reports: `result.json`, `curves.csv`, `curves-n<gold>.svg` and
/// `summary.txt` for two models; `result-many.json` and `summary-many.txt` for M models.
public enum MetaRouterReportWriter {
    /// Hashed TF-IDF features of the queries, fitted on their text alone (label-free, so every split
    /// sees the same features).
    public static func features(_ texts: [String], dimension: Int) -> Matrix {
        var encoder = HashedTFIDFEncoder(configuration: .init(dimension: dimension))
        encoder.fit(texts)
        return encoder.encode(texts)
    }

    /// Writes the two-model experiment to `directory`; returns the summary text. `source` names the data.
    @discardableResult
    public static func write(_ result: MetaRouterExperiment.Result, queries: Int, source: String, to directory: String) throws -> String {
        let s = result.settings
        try writeJSON(result, to: directory, name: "result.json")
        var csv = "method,gold_size," + result.usageGrid.map { String(format: "gain@%.2f", $0) }.joined(separator: ",") + ",median_area,median_share_of_perfect\n"
        for c in result.curves {
            csv += "\"\(c.method)\",\(c.goldSize)," + c.medianGain.map { String(format: "%.6f", $0) }.joined(separator: ",")
                + String(format: ",%.6f,%.4f\n", c.medianArea, c.medianShareOfPerfect)
        }
        try csv.write(toFile: directory + "/curves.csv", atomically: true, encoding: .utf8)
        // One chart per gold size: the median gain curves (federated variants coincide with the centralized ones).
        for n in s.goldSizes {
            let series = MetaRouterExperiment.methods.filter { !$0.hasPrefix("federated") }.compactMap { method -> SVGPlot.Series? in
                guard let c = result.curves.first(where: { $0.method == method && $0.goldSize == n }) else { return nil }
                return SVGPlot.Series(name: String(format: "%@ (area %.4f)", method, c.medianArea),
                                      points: zip(result.usageGrid, c.medianGain).map { (x: $0, y: $1) }, reference: method == "oracle")
            }
            let svg = SVGPlot.lines(series, title: "Efficiency gain over random routing, n = \(n) gold, m = \(s.judgeSize) judge (median of \(s.splits) splits)",
                                    xLabel: "primary-model usage ratio", yLabel: "quality gain over random routing")
            try svg.write(toFile: directory + "/curves-n\(n).svg", atomically: true, encoding: .utf8)
        }
        var text = "Meta-Router on \(source): \(queries) queries, \(s.splits) splits, m = \(s.judgeSize) judge rows, alignment \(s.configuration.alignment.rawValue), propensity \(s.configuration.propensity.rawValue)\n"
        text += "median over splits of the mean efficiency gain over random routing (primary usage 0…1), and its share of the perfect ranking's\n\n"
        text += header(s.goldSizes)
        for method in MetaRouterExperiment.methods {
            text += column(method, 22)
            for n in s.goldSizes {
                let c = result.curves.first { $0.method == method && $0.goldSize == n }!
                text += column(String(format: "%.4f (%5.1f%%)", c.medianArea, c.medianShareOfPerfect * 100), 20)
            }
            text += "\n"
        }
        text += column("perfect ranking", 22) + s.goldSizes.map { column(String(format: "%.4f", result.perfectMedianArea[$0] ?? .nan), 20) }.joined() + "\n"
        text += String(format: "\nfederated vs centralized R/DR predictions: max |difference| %.2e\n", result.federatedMaxDifference)
        try text.write(toFile: directory + "/summary.txt", atomically: true, encoding: .utf8)
        return text
    }

    /// Writes the M-model experiment to `directory`; returns the summary text.
    @discardableResult
    public static func write(_ result: MultiModelMetaRouter.Result, queries: Int, source: String, to directory: String) throws -> String {
        let s = result.settings
        try writeJSON(result, to: directory, name: "result-many.json")
        var text = "M-model Meta-Router on \(source): \(queries) queries, reference \(result.reference), candidates \(result.candidates.joined(separator: ", ")); \(s.splits) splits, m = \(s.judgeSize) judge rows\n"
        text += "median over splits of the normalised area under the quality–cost hull (routing by ψ̂_j − w·Δcost_j over a w sweep), and of the best quality\n\n"
        text += header(s.goldSizes)
        for method in MultiModelMetaRouter.methods {
            text += column(method, 22)
            for n in s.goldSizes {
                let m = result.methods.first { $0.method == method && $0.goldSize == n }!
                text += column(String(format: "%.4f (max %.4f)", m.medianArea, m.medianMaxQuality), 20)
            }
            text += "\n"
        }
        text += column("single models", 22) + String(format: "%.4f\n", result.singleModelsMedianArea)
        text += String(format: "\nfederated vs centralized R/DR predictions: max |difference| %.2e\n", result.federatedMaxDifference)
        try text.write(toFile: directory + "/summary-many.txt", atomically: true, encoding: .utf8)
        return text
    }

    static func header(_ gold: [Int]) -> String {
        column("method", 22) + gold.map { column("n = \($0)", 20) }.joined() + "\n"
    }

    static func column(_ s: String, _ width: Int) -> String { s.padding(toLength: width, withPad: " ", startingAt: 0) }

    /// Writes `value` as pretty-printed JSON to `name` in `directory` (created if missing).
    static func writeJSON(_ value: some Encodable, to directory: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(value).write(to: URL(fileURLWithPath: directory + "/" + name))
    }
}
