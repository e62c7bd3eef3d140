import FedRouteEvaluation
import Foundation

/// Writes the multi-round experiment's report: `result.json`, `points.csv`, `training.csv`,
/// `pareto.svg` and `summary.txt`.
public enum MultiRoundReportWriter {
    /// Writes `result` to `directory`; returns the summary text. `source` names the data.
    @discardableResult
    public static func write(_ result: MultiRoundExperiment.Result, source: String, to out: String) throws -> String {
        let rule = result.settings.rule
        let maxCalls = result.settings.maxCalls
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(result).write(to: URL(fileURLWithPath: out + "/result.json"))
        var csv = "method,setting,quality,cost_usd,invalid_rate,mean_calls\n"
        for p in result.points {
            csv += "\"\(p.method)\",\"\(p.setting)\"," + String(format: "%.6f,%.8f,%.4f,%.4f\n", p.quality, p.cost, p.invalidRate, p.meanCalls)
        }
        try csv.write(toFile: out + "/points.csv", atomically: true, encoding: .utf8)
        var training = "run,iteration,mean_reward,quality,cost_usd,invalid_rate,mean_calls,entropy,approx_kl,clip_fraction\n"
        for (run, log) in result.training.sorted(by: { $0.key < $1.key }) {
            for l in log {
                training += "\"\(run)\",\(l.iteration)," + String(format: "%.5f,%.5f,%.8f,%.4f,%.4f,%.4f,%.5f,%.4f\n", l.meanReward, l.quality, l.cost,
                                                                    l.invalidRate, l.meanCalls, l.entropy, l.approximateKL, l.clipFraction)
            }
        }
        try training.write(toFile: out + "/training.csv", atomically: true, encoding: .utf8)

        // Pareto chart: hulls of every method, PPO's α points as they are, log cost on x.
        var series: [SVGPlot.Series] = []
        for s in result.summaries where s.method != "single model" {
            let points: [(x: Double, y: Double)]
            if s.method.contains("PPO") {
                points = result.points.filter { $0.method == s.method }.sorted { $0.cost < $1.cost }.map { (x: log10($0.cost), y: $0.quality) }
            } else {
                points = s.hull.map { (x: log10($0.cost), y: $0.quality) }
            }
            series.append(SVGPlot.Series(name: String(format: "%@ (area %.3f)", s.method, s.area), points: points, reference: s.method.hasPrefix("hindsight")))
        }
        let singles = result.points.filter { $0.method == "single model" }.sorted { $0.cost < $1.cost }
        series.append(SVGPlot.Series(name: "single models", points: FrontierMetrics.nonDecreasingConvexHull(singles.map { CostQuality(cost: $0.cost, quality: $0.quality) }).map { (x: log10($0.cost), y: $0.quality) }))
        let svg = SVGPlot.lines(series, title: "Quality vs cost on \(result.testQueries) test queries (PPO: one point per α)",
                                xLabel: "log10 mean USD per query", yLabel: "mean score", width: 1100, includeZero: false)
        try svg.write(toFile: out + "/pareto.svg", atomically: true, encoding: .utf8)

        var text = "Multi-round routing on \(source): \(result.trainQueries) train / \(result.testQueries) test queries, \(result.models.count) models, rule \(rule.rawValue), ≤ \(maxCalls) calls\n\n"
        text += "quality of each method's hull at a budget (USD per query); area = normalised area under the hull over the single models' cost range\n"
        text += "method".padding(toLength: 34, withPad: " ", startingAt: 0)
            + result.settings.budgets.map { String(format: "%.2g", $0).padding(toLength: 9, withPad: " ", startingAt: 0) }.joined() + "area    max\n"
        for s in result.summaries {
            text += s.method.padding(toLength: 34, withPad: " ", startingAt: 0)
                + s.qualityAtBudget.map { String(format: "%.4f", $0).padding(toLength: 9, withPad: " ", startingAt: 0) }.joined()
                + String(format: "%.4f  %.4f\n", s.area, s.maxQuality)
        }
        text += "\nPPO policies (greedy) on the test queries\n"
        text += "α      quality  cost (mUSD)  calls  invalid  most called\n"
        for p in result.points where p.method == "multi-round PPO" {
            let top = p.callShare.filter { $0.value > 0 }.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.prefix(3).map { String(format: "%@ %.0f%%", $0.key, $0.value * 100) }.joined(separator: ", ")
            text += p.setting.padding(toLength: 7, withPad: " ", startingAt: 0) + String(format: "%.4f   %8.4f     %.2f   %.3f    ", p.quality, p.cost * 1000, p.meanCalls, p.invalidRate) + top + "\n"
        }
        if !result.zeroShot.isEmpty {
            text += "\nzero-shot: trained without \(result.settings.heldOut.joined(separator: ", ")), then offered them by descriptor\n"
            text += "α      without held-out        zero-shot with them      trained with all         held-out call share\n"
            for z in result.zeroShot {
                func f(_ p: PolicyEvaluation?) -> String { p.map { String(format: "%.4f @ %.4f mUSD", $0.quality, $0.cost * 1000) }.map { $0.padding(toLength: 25, withPad: " ", startingAt: 0) } ?? "–".padding(toLength: 25, withPad: " ", startingAt: 0) }
                let shares = result.settings.heldOut.map { String(format: "%@ %.1f%%", $0, (z.zeroShot.callShare[$0] ?? 0) * 100) }.joined(separator: ", ")
                text += String(format: "%-7.2f", z.alpha) + f(z.withoutHeldOut) + f(z.zeroShot) + f(z.trainedWithAll) + shares + "\n"
            }
        }
        try text.write(toFile: out + "/summary.txt", atomically: true, encoding: .utf8)
        return text
    }
}
