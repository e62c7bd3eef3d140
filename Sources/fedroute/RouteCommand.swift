import ArgumentParser
import FedRouteEmbedding
import FedRouteRouters
import Foundation

struct RouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "route", abstract: "Route one query: print the chosen model and each model's predicted score and cost.")

    @Option(name: .long, help: "Router file.") var router: String
    @Option(name: .customLong("lambda"), help: "Willingness-to-pay trade-off λ (utility = score − λ·cost).") var lambda: Double
    @Option(name: .long, help: "Folder with the MiniLM weights, for routers trained on MiniLM features.") var minilmPath: String?
    @Argument(help: "The query text.") var query: String

    func run() throws {
        guard lambda.isFinite, lambda >= 0 else { throw ValidationError("--lambda must be a finite non-negative number") }
        let pipeline = try RouterFile.load(path: router, minilmDirectory: minilmPath ?? MiniLMEncoder.configuredDirectory)
        let p = try pipeline.predict(texts: [query])
        let chosen = p.choose(lambda: lambda)[0]
        print("chosen: \(p.models[chosen])")
        let w = p.models.map(\.count).max() ?? 5
        print("  " + "model".padding(toLength: w, withPad: " ", startingAt: 0) + "  pred. score   pred. cost $     utility")
        let order = p.models.indices.sorted { p.score[$0] - lambda * p.cost[$0] > p.score[$1] - lambda * p.cost[$1] }
        for m in order {
            let mark = m == chosen ? "*" : " "
            if p.available[m] {
                print("\(mark) " + p.models[m].padding(toLength: w, withPad: " ", startingAt: 0)
                      + String(format: "  %11.4f  %12.4e  %10.4f", p.score[m], p.cost[m], p.score[m] - lambda * p.cost[m]))
            } else {
                print("  " + p.models[m].padding(toLength: w, withPad: " ", startingAt: 0) + "  (no observations near this query)")
            }
        }
    }
}
