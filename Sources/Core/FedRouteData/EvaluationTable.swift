/// Which side of a train/test split a query belongs to, when its source says.
public enum Split: String, Sendable, Codable, Hashable {
    case train, test
}

/// One query of an evaluation log.
public struct Query: Sendable, Hashable, Codable {
    public var id: String
    public var text: String
    /// Task or data-set label (e.g. `arc-challenge`).
    public var task: String
    /// The split the source file assigned, if any.
    public var split: Split?

    public init(id: String, text: String, task: String, split: Split? = nil) {
        self.id = id
        self.text = text
        self.task = task
        self.split = split
    }
}

/// One observation: query × model → quality score in [0, 1] and cost in USD.
public struct EvaluationRecord: Sendable, Hashable {
    public var query: Query
    public var model: String
    public var score: Double
    public var cost: Double

    public init(query: Query, model: String, score: Double, cost: Double) {
        self.query = query
        self.model = model
        self.score = score
        self.cost = cost
    }
}

/// Sparse query × model evaluation data: a dense table with an observation mask.
///
/// Cells that were not evaluated are unobserved; their stored score and cost are 0 and must not be
/// read. Models are kept in a fixed order (`models`), queries in load order.
public struct EvaluationTable: Sendable, Equatable {
    public private(set) var models: [String]
    public private(set) var queries: [Query]
    /// Row-major `queries.count × models.count`.
    public private(set) var scores: [Double]
    /// Row-major `queries.count × models.count`, USD.
    public private(set) var costs: [Double]
    /// Row-major mask; `true` where the model was evaluated on the query.
    public private(set) var observed: [Bool]

    public var queryCount: Int { queries.count }
    public var modelCount: Int { models.count }

    /// An empty table over `models`.
    public init(models: [String]) {
        self.models = models
        queries = []
        scores = []
        costs = []
        observed = []
    }

    /// Builds a table from parallel arrays; validates sizes and values.
    public init(models: [String], queries: [Query], scores: [Double], costs: [Double], observed: [Bool]) throws {
        let n = queries.count * models.count
        guard scores.count == n, costs.count == n, observed.count == n else {
            throw DataError(.invalidValue, "table arrays must have \(queries.count)×\(models.count) = \(n) cells")
        }
        self.models = models
        self.queries = queries
        self.scores = scores
        self.costs = costs
        self.observed = observed
        for i in 0..<n where observed[i] {
            try Self.validate(score: scores[i], cost: costs[i], model: models[i % models.count], query: queries[i / models.count].id)
        }
    }

    static func validate(score: Double, cost: Double, model: String, query: String) throws {
        guard score.isFinite, (0...1).contains(score) else {
            throw DataError(.invalidValue, "score \(score) of model '\(model)' on query '\(query)' is not in [0, 1]")
        }
        guard cost.isFinite, cost >= 0 else {
            throw DataError(.invalidValue, "cost \(cost) of model '\(model)' on query '\(query)' is not a finite non-negative number")
        }
    }

    @inlinable public func index(_ row: Int, _ model: Int) -> Int { row * models.count + model }
    public func isObserved(_ row: Int, _ model: Int) -> Bool { observed[index(row, model)] }
    public func score(_ row: Int, _ model: Int) -> Double? { observed[index(row, model)] ? scores[index(row, model)] : nil }
    public func cost(_ row: Int, _ model: Int) -> Double? { observed[index(row, model)] ? costs[index(row, model)] : nil }

    /// Index of a model by name.
    public func modelIndex(_ name: String) -> Int? { models.firstIndex(of: name) }

    /// Number of observed models for one query.
    public func observedCount(row: Int) -> Int { (0..<models.count).reduce(0) { $0 + (isObserved(row, $1) ? 1 : 0) } }

    /// True when every model was evaluated on the query.
    public func isFullyObserved(row: Int) -> Bool { observedCount(row: row) == models.count }

    /// Appends a query with its observed cells (`model index → (score, cost)`).
    public mutating func append(_ query: Query, cells: [Int: (score: Double, cost: Double)]) throws {
        var s = Array(repeating: 0.0, count: models.count)
        var c = Array(repeating: 0.0, count: models.count)
        var o = Array(repeating: false, count: models.count)
        for (m, cell) in cells {
            guard models.indices.contains(m) else { throw DataError(.unknownModel, "model index \(m) out of range for query '\(query.id)'") }
            try Self.validate(score: cell.score, cost: cell.cost, model: models[m], query: query.id)
            s[m] = cell.score; c[m] = cell.cost; o[m] = true
        }
        queries.append(query)
        scores += s; costs += c; observed += o
    }

    /// The rows at `indices`, in order.
    public func subset(_ indices: [Int]) -> EvaluationTable {
        var t = EvaluationTable(models: models)
        let m = models.count
        t.queries = indices.map { queries[$0] }
        t.scores.reserveCapacity(indices.count * m)
        for i in indices {
            t.scores += scores[(i * m)..<((i + 1) * m)]
            t.costs += costs[(i * m)..<((i + 1) * m)]
            t.observed += observed[(i * m)..<((i + 1) * m)]
        }
        return t
    }

    /// The same table with its model columns in `order` (the same names, any order), or nil when
    /// `order` names other models.
    public func reorderingModels(_ order: [String]) -> EvaluationTable? {
        guard order.count == models.count, Set(order).count == order.count else { return nil }
        let source = order.compactMap { modelIndex($0) }
        guard source.count == order.count else { return nil }
        var t = EvaluationTable(models: order)
        t.queries = queries
        t.scores.reserveCapacity(scores.count); t.costs.reserveCapacity(costs.count); t.observed.reserveCapacity(observed.count)
        for r in 0..<queryCount {
            for s in source {
                let i = index(r, s)
                t.scores.append(scores[i]); t.costs.append(costs[i]); t.observed.append(observed[i])
            }
        }
        return t
    }

    /// Rows matching `predicate`.
    public func filter(_ predicate: (Int) -> Bool) -> EvaluationTable { subset((0..<queryCount).filter(predicate)) }

    /// A copy with `mask` (row-major, same size) AND-ed into the observation mask.
    public func masked(by mask: [Bool]) -> EvaluationTable {
        precondition(mask.count == observed.count, "mask size mismatch")
        var t = self
        for i in t.observed.indices where !mask[i] {
            t.observed[i] = false
            t.scores[i] = 0
            t.costs[i] = 0
        }
        return t
    }

    /// Concatenates tables over the same models.
    public static func concatenate(_ tables: [EvaluationTable]) throws -> EvaluationTable {
        guard let first = tables.first else { throw DataError(.invalidValue, "nothing to concatenate") }
        var t = EvaluationTable(models: first.models)
        for other in tables {
            guard other.models == first.models else {
                throw DataError(.unknownModel, "cannot concatenate tables with different models: \(first.models) vs \(other.models)")
            }
            t.queries += other.queries
            t.scores += other.scores
            t.costs += other.costs
            t.observed += other.observed
        }
        return t
    }

    /// The table as flat records, one per observed cell.
    public var records: [EvaluationRecord] {
        var out: [EvaluationRecord] = []
        for r in 0..<queryCount {
            for m in 0..<modelCount where isObserved(r, m) {
                out.append(EvaluationRecord(query: queries[r], model: models[m], score: scores[index(r, m)], cost: costs[index(r, m)]))
            }
        }
        return out
    }

    /// Builds a table from flat records. Models are sorted by name; a query's first record fixes its
    /// text, task and split; a repeated (query, model) pair is an error.
    public init(records: [EvaluationRecord]) throws {
        let models = Array(Set(records.map(\.model))).sorted()
        let modelIndex = Dictionary(uniqueKeysWithValues: models.enumerated().map { ($1, $0) })
        var order: [String] = []
        var queryByID: [String: Query] = [:]
        var cells: [String: [Int: (score: Double, cost: Double)]] = [:]
        for r in records {
            if queryByID[r.query.id] == nil { queryByID[r.query.id] = r.query; order.append(r.query.id) }
            let m = modelIndex[r.model]!
            if cells[r.query.id, default: [:]][m] != nil {
                throw DataError(.duplicate, "query '\(r.query.id)' has two records for model '\(r.model)'")
            }
            cells[r.query.id, default: [:]][m] = (r.score, r.cost)
        }
        var t = EvaluationTable(models: models)
        for id in order { try t.append(queryByID[id]!, cells: cells[id] ?? [:]) }
        self = t
    }
}
