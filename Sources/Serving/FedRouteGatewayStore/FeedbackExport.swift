import FedRouteData
import Foundation

/// Turns rated gateway requests into local evaluation data for the next federated round.
///
/// Each answered request with a feedback score becomes one observed cell: (query text, the model
/// that answered) → (feedback score, price-table cost). Requests with the same query text are
/// merged into one query row, so a text answered by two models yields two cells; repeated
/// (text, model) pairs are averaged. Unrated, failed and interrupted requests are counted, not
/// exported.
public enum FeedbackExport {
    /// What the export kept and left out.
    public struct Report: Sendable, Equatable, Codable {
        public var requests = 0
        public var exportedCells = 0
        public var queries = 0
        public var unrated = 0
        public var notAnswered = 0
        public var interrupted = 0
        /// Ratings merged into an existing (text, model) cell by averaging.
        public var averaged = 0
    }

    /// The evaluation table of `requests` with every query under `task` and the given split.
    public static func table(from requests: [RoutedRequest], task: String, split: Split? = nil) throws -> (table: EvaluationTable, report: Report) {
        var report = Report()
        report.requests = requests.count
        struct Cell { var scoreSum = 0.0, costSum = 0.0, n = 0 }
        var order: [String] = []               // query texts, first-seen order
        var ids: [String: String] = [:]        // text -> id of its first request
        var cells: [String: [String: Cell]] = [:]
        for r in requests {
            guard r.outcome != .failed, let model = r.chosenModel, let cost = r.costUSD else { report.notAnswered += 1; continue }
            guard r.outcome == .answered else { report.interrupted += 1; continue }
            guard let score = r.feedbackScore else { report.unrated += 1; continue }
            if ids[r.query] == nil {
                ids[r.query] = r.id
                order.append(r.query)
            }
            var c = cells[r.query, default: [:]][model, default: Cell()]
            if c.n > 0 { report.averaged += 1 }
            c.scoreSum += score
            c.costSum += cost
            c.n += 1
            cells[r.query, default: [:]][model] = c
        }
        let models = Set(cells.values.flatMap(\.keys)).sorted()
        var table = EvaluationTable(models: models)
        for text in order {
            var row: [Int: (score: Double, cost: Double)] = [:]
            for (model, c) in cells[text]! {
                row[models.firstIndex(of: model)!] = (c.scoreSum / Double(c.n), c.costSum / Double(c.n))
            }
            try table.append(Query(id: ids[text]!, text: text, task: task, split: split), cells: row)
        }
        report.queries = table.queryCount
        report.exportedCells = table.observed.filter { $0 }.count
        return (table, report)
    }
}
