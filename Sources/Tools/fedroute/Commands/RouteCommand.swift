import ArgumentParser
import FedRouteEmbedding
import FedRouteRouters
import Foundation

struct RouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "route", abstract: "Route one query: print the chosen model and each model's predicted score and cost, best first.")

    @Option(name: .long, help: "Router file.") var router: String
    @Option(name: .customLong("lambda"), help: "Willingness-to-pay trade-off λ (utility = score − λ·cost).") var lambda: Double
    @Option(name: .long, help: "Folder with the MiniLM weights, for routers trained on MiniLM features.") var minilmPath: String?
    @Argument(help: "The query text.") var query: String

    func validate() throws {
        do { try RouterPredictions.validate(lambda: lambda) } catch { throw ValidationError("--lambda: \(error)") }
    }

    func run() throws {
        let pipeline = try RouterFile.load(path: router, minilmDirectory: minilmPath ?? MiniLMEncoder.configuredDirectory)
        let p = try pipeline.predict(texts: [query])
        let order = p.ranked(row: 0, lambda: lambda)
        print("chosen: \(p.models[order[0]])")
        let w = p.models.map(\.count).max() ?? 5
        print("  " + "model".padding(toLength: w, withPad: " ", startingAt: 0) + "  pred. score   pred. cost $     utility")
        for m in order {
            let mark = m == order[0] ? "*" : " "
            if p.available[m] {
                print("\(mark) " + p.models[m].padding(toLength: w, withPad: " ", startingAt: 0)
                      + String(format: "  %11.4f  %12.4e  %10.4f", p.score[m], p.cost[m], p.utility(row: 0, model: m, lambda: lambda)))
            } else {
                print("\(mark) " + p.models[m].padding(toLength: w, withPad: " ", startingAt: 0) + "  (no observations near this query)")
            }
        }
    }
}
