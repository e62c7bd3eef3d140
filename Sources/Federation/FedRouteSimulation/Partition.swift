import FedRouteData
import FedRouteNumerics

/// The paper's client construction: label-skewed Dirichlet split, local 75/25 split, sparse coverage.
public struct PartitionConfiguration: Sendable, Codable, Equatable {
    public var clients = 10
    /// Concentration α of the per-task Dirichlet(α·1) over clients (small = heterogeneous).
    public var taskAlpha = 0.6
    /// Concentration of each client's model-preference Dirichlet(·1) over models.
    public var modelAlpha = 0.45
    /// Observed models per local training query; nil = max(1, ⌊coverageFraction·M⌋).
    public var observedPerQuery: Int?
    public var coverageFraction = 0.1
    /// Fraction of each client's rows held out as its local test set (all models kept).
    public var localTestFraction = 0.25
    public var seed: UInt64 = 0

    public init() {}

    public func observedPerQuery(models: Int) -> Int {
        observedPerQuery ?? max(1, Int((coverageFraction * Double(models)).rounded(.down)))
    }

    func validate(models: Int) throws {
        guard clients >= 1, taskAlpha > 0, taskAlpha.isFinite, modelAlpha > 0, modelAlpha.isFinite,
              (0..<1).contains(localTestFraction), (0...1).contains(coverageFraction), observedPerQuery(models: models) >= 1
        else {
            throw DataError(.invalidValue, "partition needs ≥ 1 client, positive finite Dirichlet concentrations, a local test fraction in [0, 1) and ≥ 1 observed model per query")
        }
    }
}

/// One simulated client's data.
public struct ClientShard: Sendable, Equatable {
    public var id: String
    /// Local training rows with the sparse observation mask applied.
    public var train: EvaluationTable
    /// Local test rows with every model the source evaluated.
    public var test: EvaluationTable
    /// The client's model-preference vector p_i that drew its observed models.
    public var modelPreference: [Double]
    /// Row indices of `train` and `test` in the partitioned table.
    public var trainRows: [Int]
    public var testRows: [Int]
}

/// Builds the simulated federation from one evaluation table.
public enum FederatedPartition {
    /// Splits every query of `table` (its source train/test split is ignored) over clients.
    public static func make(_ table: EvaluationTable, configuration c: PartitionConfiguration) throws -> [ClientShard] {
        try c.validate(models: table.modelCount)
        guard table.queryCount > 0 else { throw DataError(.invalidValue, "no queries to partition") }
        var rng = SeededRandom(seed: c.seed)
        // 1. Per task, Dirichlet(α) proportions over clients; contiguous chunks of a shuffled order.
        var rowsOf = Array(repeating: [Int](), count: c.clients)
        let tasks = Dictionary(grouping: 0..<table.queryCount) { table.queries[$0].task }
        for task in tasks.keys.sorted() {
            var rows = tasks[task]!
            rng.shuffle(&rows)
            let p = rng.dirichlet(Array(repeating: c.taskAlpha, count: c.clients))
            var cumulative = 0.0
            var start = 0
            for k in 0..<c.clients {
                cumulative += p[k]
                let end = k == c.clients - 1 ? rows.count : min(rows.count, Int((cumulative * Double(rows.count)).rounded(.down)))
                if end > start { rowsOf[k] += rows[start..<end] }
                start = max(start, end)
            }
        }
        // 2. Per client: shuffle, local split, model preference and sparse coverage of train rows.
        let k = c.observedPerQuery(models: table.modelCount)
        let width = String(c.clients - 1).count
        return (0..<c.clients).map { i in
            var clientRNG = rng.derived(UInt64(i) &+ 1)
            var rows = rowsOf[i]
            clientRNG.shuffle(&rows)
            let nTrain = Int((Double(rows.count) * (1 - c.localTestFraction)).rounded(.down))
            let trainRows = Array(rows[..<nTrain]), testRows = Array(rows[nTrain...])
            let train = table.subset(trainRows)
            let test = table.subset(testRows)
            let preference = clientRNG.dirichlet(Array(repeating: c.modelAlpha, count: table.modelCount))
            var keep = [Bool](repeating: false, count: train.observed.count)
            for r in 0..<train.queryCount {
                var candidates = (0..<table.modelCount).filter { train.isObserved(r, $0) }
                for _ in 0..<min(k, candidates.count) {
                    let w = candidates.map { preference[$0] }
                    let pick = w.contains(where: { $0 > 0 }) ? clientRNG.weightedIndex(w) : clientRNG.nextInt(below: candidates.count)
                    keep[train.index(r, candidates[pick])] = true
                    candidates.remove(at: pick)
                }
            }
            let id = "client-" + String(repeating: "0", count: width - String(i).count) + String(i)
            return ClientShard(id: id, train: train.masked(by: keep), test: test, modelPreference: preference, trainRows: trainRows, testRows: testRows)
        }
    }
}
