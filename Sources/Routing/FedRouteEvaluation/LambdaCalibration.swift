import FedRouteData
import FedRouteRouters
import Foundation

/// What an operator asks a router's λ to achieve on a set of queries.
public enum CalibrationTarget: Sendable, Equatable, CustomStringConvertible {
    /// Mean cost per query (USD) at most this: the highest-quality λ that stays within it.
    case costPerQuery(Double)
    /// This fraction of queries routed to `model` (RouteLLM's "share of strong-model calls").
    case share(model: String, fraction: Double)
    /// Mean quality at least this: the cheapest λ that keeps it.
    case quality(Double)

    public var description: String {
        switch self {
        case .costPerQuery(let c): "mean cost ≤ \(c) USD per query"
        case .share(let m, let f): "\(f * 100)% of queries to \(m)"
        case .quality(let q): "mean quality ≥ \(q)"
        }
    }
}

/// What routing with one λ does on a set of queries.
public struct OperatingPoint: Sendable, Equatable, Codable {
    public var lambda: Double
    public var queries: Int
    /// Mean score and cost (USD) of the chosen models: the table's values where the chosen cell was
    /// observed, the router's predictions where it was not (`estimatedCells` of them).
    public var meanScore: Double
    public var meanCost: Double
    /// Fraction of queries routed to each model.
    public var share: [String: Double]
    public var estimatedCells: Int
}

/// Finds the λ at which a router meets a target on a set of queries (`fedroute calibrate`), the way
/// RouteLLM calibrates its threshold to a share of strong-model calls, and reads the operating point
/// of a λ on other queries (to check the calibration on held-out data).
public enum LambdaCalibration {
    /// Why a calibration cannot be made.
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// λ values searched before refining: 0 and 40 per decade from 10⁻⁴ to 10⁷.
    public static let grid: [Double] = [0] + (-160...280).map { pow(10, Double($0) / 40) }

    /// The operating point of `lambda` on `table`'s queries, routed by `predictions` (one row per query).
    public static func operatingPoint(predictions: RouterPredictions, table: EvaluationTable, lambda: Double) throws -> OperatingPoint {
        guard predictions.rows == table.queryCount, table.queryCount > 0 else {
            throw Failure(message: "predictions for \(predictions.rows) queries do not match the \(table.queryCount) queries of the data")
        }
        let columns = predictions.models.map { table.modelIndex($0) }
        let m = predictions.models.count
        var score = 0.0, cost = 0.0, estimated = 0
        var counts = [Int](repeating: 0, count: m)
        for (r, j) in predictions.choose(lambda: lambda).enumerated() {
            counts[j] += 1
            if let c = columns[j], let s = table.score(r, c), let k = table.cost(r, c) {
                score += s
                cost += k
            } else {
                score += predictions.score[r * m + j]
                cost += predictions.cost[r * m + j]
                estimated += 1
            }
        }
        let n = Double(table.queryCount)
        var share: [String: Double] = [:]
        for (j, name) in predictions.models.enumerated() where counts[j] > 0 { share[name] = Double(counts[j]) / n }
        return OperatingPoint(lambda: lambda, queries: table.queryCount, meanScore: score / n, meanCost: cost / n, share: share, estimatedCells: estimated)
    }

    /// The λ that meets `target` on `table` (see `CalibrationTarget` for which one when several do),
    /// and whether it is met at all (when not, the closest point).
    public static func calibrate(predictions: RouterPredictions, table: EvaluationTable, target: CalibrationTarget) throws -> (point: OperatingPoint, met: Bool) {
        switch target {
        case .costPerQuery(let c): guard c.isFinite, c >= 0 else { throw Failure(message: "the target cost must be a finite number ≥ 0, not \(c)") }
        case .quality(let q): guard q.isFinite else { throw Failure(message: "the target quality must be a finite number, not \(q)") }
        case .share(let model, let f):
            guard predictions.models.contains(model) else {
                throw Failure(message: "the router has no model '\(model)' (it has \(predictions.models.joined(separator: ", ")))")
            }
            guard f.isFinite, (0...1).contains(f) else { throw Failure(message: "the target share must be in [0, 1], not \(f)") }
        }
        let points = try grid.map { try operatingPoint(predictions: predictions, table: table, lambda: $0) }
        /// Bisects between a λ that meets the target (`good`) and a neighbour that does not (`bad`),
        /// moving towards `bad` as far as the target still holds.
        func refine(good: OperatingPoint, bad: Double, holds: (OperatingPoint) -> Bool) throws -> OperatingPoint {
            var (g, b, best) = (good.lambda, bad, good)
            for _ in 0..<40 {
                let mid = g == 0 || b == 0 ? (g + b) / 2 : sqrt(g * b)
                let p = try operatingPoint(predictions: predictions, table: table, lambda: mid)
                if holds(p) { (g, best) = (mid, p) } else { b = mid }
            }
            return best
        }
        switch target {
        case .costPerQuery(let c):
            // Cost never rises with λ, so the first λ within budget is the one of highest quality.
            let within = { (p: OperatingPoint) in p.meanCost <= c }
            guard let i = points.firstIndex(where: within) else { return (points.last!, false) }
            if i == 0 { return (points[0], true) }
            return (try refine(good: points[i], bad: points[i - 1].lambda, holds: within), true)
        case .quality(let q):
            // The last λ before quality first drops below the target.
            let keeps = { (p: OperatingPoint) in p.meanScore >= q }
            guard keeps(points[0]) else { return (points[0], false) }
            guard let drop = points.firstIndex(where: { !keeps($0) }) else { return (points.last!, true) }
            return (try refine(good: points[drop - 1], bad: points[drop].lambda, holds: keeps), true)
        case .share(let model, let f):
            let distance = { (p: OperatingPoint) in abs((p.share[model] ?? 0) - f) }
            var i = 0
            for k in points.indices where distance(points[k]) < distance(points[i]) { i = k }
            var best = points[i]
            // Refine towards whichever neighbour brackets the target.
            for k in [i - 1, i + 1] where points.indices.contains(k) {
                let side = ((points[k].share[model] ?? 0) - f).sign != ((points[i].share[model] ?? 0) - f).sign
                guard side else { continue }
                var (a, b) = (points[i].lambda, points[k].lambda)
                for _ in 0..<40 {
                    let mid = a == 0 || b == 0 ? (a + b) / 2 : sqrt(a * b)
                    let p = try operatingPoint(predictions: predictions, table: table, lambda: mid)
                    if distance(p) < distance(best) { best = p }
                    if ((p.share[model] ?? 0) - f).sign == ((points[i].share[model] ?? 0) - f).sign { a = mid } else { b = mid }
                }
            }
            // Met when no query more or fewer could bring it closer.
            return (best, distance(best) <= 1 / Double(table.queryCount) + 1e-12)
        }
    }
}
