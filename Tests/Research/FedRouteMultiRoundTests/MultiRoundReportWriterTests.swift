import FedRouteData
import FedRouteMultiRound
import FedRouteNumerics
import Foundation
import Testing

@Suite struct MultiRoundReportWriterTests {
    @Test func writesEveryFileAndASummaryWithEveryMethod() throws {
        let table = try MultiRoundTests.syntheticTable(rows: 60, seed: 2)
        var features = Matrix(rows: table.rowCount, cols: 2)
        for r in 0..<table.rowCount { features[r, 0] = 1; features[r, 1] = Float(r % 2) }
        var s = MultiRoundExperiment.Settings()
        s.alphas = [0.5]
        s.zeroShotAlphas = []
        s.heldOut = []
        s.ppo.iterations = 2
        s.ppo.episodesPerIteration = 32
        s.ppo.minibatchSize = 32
        s.ppo.hidden = 8
        s.ppo.candidateHidden = 4
        s.ppo.valueHidden = 8
        let result = try MultiRoundExperiment.run(table: table, features: features, settings: s)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-mr-\(UUID().uuidString)").path
        let text = try MultiRoundReportWriter.write(result, source: "synthetic", to: dir)
        for file in ["result.json", "points.csv", "training.csv", "pareto.svg", "summary.txt"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + file), "\(file) missing")
        }
        #expect(text.hasPrefix("Multi-round routing on synthetic: "))
        for summary in result.summaries { #expect(text.contains(summary.method), "\(summary.method) missing from the summary") }
        #expect(try String(contentsOfFile: dir + "/summary.txt", encoding: .utf8) == text)
        let csv = try String(contentsOfFile: dir + "/points.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "method,setting,quality,cost_usd,invalid_rate,mean_calls" && csv.count == result.points.count + 1)
        #expect(try String(contentsOfFile: dir + "/pareto.svg", encoding: .utf8).hasPrefix("<svg"))
    }
}
