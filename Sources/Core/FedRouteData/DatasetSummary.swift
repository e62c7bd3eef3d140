import FedRouteNumerics

/// Per-model and per-task counts and means of a table, for `fedroute data inspect`.
public struct DatasetSummary: Sendable, Codable {
    public struct ModelRow: Sendable, Codable {
        public var model: String
        public var observed: Int
        /// Observed fraction of queries.
        public var coverage: Double
        public var meanScore: Double?
        public var meanCost: Double?
    }

    public var queries: Int
    public var models: Int
    public var fullyObserved: Int
    public var tasks: [String: Int]
    public var splits: [String: Int]
    public var perModel: [ModelRow]

    public init(_ table: EvaluationTable) {
        queries = table.queryCount
        models = table.modelCount
        fullyObserved = (0..<table.queryCount).filter { table.isFullyObserved(row: $0) }.count
        tasks = Dictionary(table.queries.map { ($0.task, 1) }, uniquingKeysWith: +)
        splits = Dictionary(table.queries.map { ($0.split?.rawValue ?? "none", 1) }, uniquingKeysWith: +)
        perModel = table.models.enumerated().map { m, name in
            var n = 0
            var s = 0.0
            var c = 0.0
            for r in 0..<table.queryCount where table.isObserved(r, m) {
                n += 1
                s += table.scores[table.index(r, m)]
                c += table.costs[table.index(r, m)]
            }
            return ModelRow(model: name, observed: n, coverage: table.queryCount == 0 ? 0 : Double(n) / Double(table.queryCount),
                            meanScore: n > 0 ? s / Double(n) : nil, meanCost: n > 0 ? c / Double(n) : nil)
        }
    }
}
