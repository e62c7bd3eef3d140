import FedRouteNumerics

/// A small evaluation table with known structure, for tests and benchmarks.
///
/// Queries belong to `topics` topics (task `topic-t`); each text mixes topic words with common
/// words, so any text encoder can tell topics apart. Model `m < topics` is strong (success
/// probability 0.9) on topic `m` and weak (0.2) elsewhere; the last model is a uniformly decent,
/// expensive generalist (0.7). Costs rise geometrically with the model index, ±10 % noise: by e^1.2
/// per model up to 3 topics, and over the same overall span (e^3.6) with more topics.
public enum SyntheticData {
    public static func table(queries: Int, topics: Int = 3, seed: UInt64) throws -> EvaluationTable {
        precondition(queries >= 0 && topics >= 1, "queries ≥ 0 and topics ≥ 1")
        var rng = SeededRandom(seed: seed)
        let models = (0..<topics).map { "specialist-\($0)" } + ["generalist"]
        var t = EvaluationTable(models: models)
        let growth = 1.2 * min(1, 3 / Double(topics))
        let common = ["please", "answer", "the", "following", "question", "briefly", "now", "what"]
        for q in 0..<queries {
            let topic = rng.nextInt(below: topics)
            var words = ["topic\(topic)"]
            for _ in 0..<8 { words.append("t\(topic)w\(rng.nextInt(below: 20))") }
            for _ in 0..<3 { words.append(common[rng.nextInt(below: common.count)]) }
            rng.shuffle(&words)
            var cells: [Int: (score: Double, cost: Double)] = [:]
            for m in 0..<models.count {
                let p = m == topics ? 0.7 : (m == topic ? 0.9 : 0.2)
                let base = 1e-4 * Scalar.exp(Double(m) * growth)
                cells[m] = (rng.nextDouble() < p ? 1 : 0, base * (0.9 + 0.2 * rng.nextDouble()))
            }
            try t.append(Query(id: "q\(q)", text: words.joined(separator: " "), task: "topic-\(topic)"), cells: cells)
        }
        return t
    }

    /// Consecutive slices of one synthetic table, one per size, each with a single observed model
    /// per query (drawn with `maskSeed`): the sparse logs of a small federation.
    public static func sparseShards(sizes: [Int], seed: UInt64, maskSeed: UInt64) throws -> [EvaluationTable] {
        let table = try Self.table(queries: sizes.reduce(0, +), seed: seed)
        var rng = SeededRandom(seed: maskSeed)
        var start = 0
        return sizes.map { n in
            let part = table.subset(Array(start..<(start + n)))
            start += n
            var keep = [Bool](repeating: false, count: part.observed.count)
            for r in 0..<n { keep[part.index(r, rng.nextInt(below: part.modelCount))] = true }
            return part.masked(by: keep)
        }
    }
}
