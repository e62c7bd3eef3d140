import FedRouteNumerics

/// Settings of (weighted) k-means.
public struct KMeansConfiguration: Sendable, Codable, Equatable {
    public enum Initialization: String, Sendable, Codable, CaseIterable { case kMeansPlusPlus = "k-means++", random }

    public var clusters: Int
    public var initialization: Initialization = .kMeansPlusPlus
    /// Independent runs; the one with the lowest inertia is kept.
    public var restarts = 4
    public var maxIterations = 100
    /// Stop when the summed squared centre shift ≤ tolerance × mean per-feature variance of the data.
    public var tolerance = 1e-4
    public var seed: UInt64 = 0

    public init(clusters: Int) { self.clusters = clusters }
}

/// The outcome of k-means: centres, assignments, inertia (weighted sum of squared distances).
public struct KMeansResult: Sendable, Equatable {
    public var centroids: Matrix
    public var assignments: [Int]
    public var inertia: Double
    public var iterations: Int
    /// Empty clusters that were re-seeded during the winning run.
    public var reseeds: Int
}

/// Lloyd's k-means with k-means++ or random initialisation, restarts, weights and empty-cluster reseeding.
public enum KMeans {
    public static func fit(points: Matrix, weights: [Float]? = nil, configuration c: KMeansConfiguration) throws -> KMeansResult {
        let n = points.rows
        guard c.clusters >= 1 else { throw RouterError.invalidConfiguration("k-means needs at least one cluster") }
        guard n >= c.clusters else { throw RouterError.noTrainingData("\(n) points for \(c.clusters) clusters") }
        guard c.restarts >= 1, c.maxIterations >= 1 else { throw RouterError.invalidConfiguration("restarts and iterations must be ≥ 1") }
        guard points.isFinite else { throw RouterError.nonFiniteInput }
        let w = weights ?? Array(repeating: 1, count: n)
        guard w.count == n, w.allSatisfy({ $0.isFinite && $0 >= 0 }), w.contains(where: { $0 > 0 }) else {
            throw RouterError.invalidConfiguration("k-means weights must be \(n) finite non-negative numbers, not all zero")
        }
        let threshold = c.tolerance * meanVariance(points, w)
        var rng = SeededRandom(seed: c.seed)
        var best: KMeansResult?
        for _ in 0..<c.restarts {
            var runRNG = rng.derived(rng.next())
            let result = run(points, w, c, threshold: threshold, rng: &runRNG)
            if best == nil || result.inertia < best!.inertia { best = result }
        }
        return best!
    }

    /// Nearest centre and squared distance for every point.
    public static func assign(points: Matrix, centroids: Matrix) -> (assignments: [Int], distances: [Float]) {
        precondition(points.cols == centroids.cols, "dimension mismatch")
        let dots = points.multiplied(by: centroids, transposeOther: true)
        let pn = points.rowSquaredNorms()
        let cn = centroids.rowSquaredNorms()
        var a = [Int](repeating: 0, count: points.rows)
        var d = [Float](repeating: 0, count: points.rows)
        let k = centroids.rows
        for i in 0..<points.rows {
            var bestJ = 0
            var bestD = Float.infinity
            for j in 0..<k {
                let dist = pn[i] - 2 * dots.data[i * k + j] + cn[j]
                if dist < bestD { bestD = dist; bestJ = j }
            }
            a[i] = bestJ
            d[i] = max(0, bestD)
        }
        return (a, d)
    }

    static func meanVariance(_ x: Matrix, _ w: [Float]) -> Double {
        let total = w.reduce(0.0) { $0 + Double($1) }
        var sum = 0.0
        for j in 0..<x.cols {
            var mean = 0.0
            for i in 0..<x.rows { mean += Double(w[i]) * Double(x[i, j]) }
            mean /= total
            var v = 0.0
            for i in 0..<x.rows { let d = Double(x[i, j]) - mean; v += Double(w[i]) * d * d }
            sum += v / total
        }
        return sum / Double(max(1, x.cols))
    }

    static func run(_ x: Matrix, _ w: [Float], _ c: KMeansConfiguration, threshold: Double, rng: inout SeededRandom) -> KMeansResult {
        var centroids = initialize(x, w, c, rng: &rng)
        var assignments = [Int](repeating: 0, count: x.rows)
        var iterations = 0
        var reseeds = 0
        for it in 1...c.maxIterations {
            iterations = it
            var (a, dist) = assign(points: x, centroids: centroids)
            // Re-seed empty clusters with the points farthest from their centres.
            var counts = [Float](repeating: 0, count: c.clusters)
            for i in 0..<x.rows { counts[a[i]] += w[i] }
            for j in 0..<c.clusters where counts[j] == 0 {
                var far = -1
                for i in 0..<x.rows where w[i] > 0 && counts[a[i]] > w[i] && (far < 0 || dist[i] > dist[far]) { far = i }
                guard far >= 0 else { continue }
                counts[a[far]] -= w[far]
                a[far] = j
                counts[j] = w[far]
                dist[far] = 0
                reseeds += 1
            }
            assignments = a
            var next = Matrix(rows: c.clusters, cols: x.cols)
            for i in 0..<x.rows where w[i] > 0 {
                let j = a[i]
                for f in 0..<x.cols { next.data[j * x.cols + f] += w[i] * x.data[i * x.cols + f] }
            }
            for j in 0..<c.clusters {
                if counts[j] > 0 { for f in 0..<x.cols { next.data[j * x.cols + f] /= counts[j] } } else {
                    for f in 0..<x.cols { next.data[j * x.cols + f] = centroids.data[j * x.cols + f] }
                }
            }
            var shift = 0.0
            for i in next.data.indices { let d = Double(next.data[i] - centroids.data[i]); shift += d * d }
            centroids = next
            if shift <= threshold { break }
        }
        let (a, dist) = assign(points: x, centroids: centroids)
        assignments = a
        let inertia = zip(dist, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        return KMeansResult(centroids: centroids, assignments: assignments, inertia: inertia, iterations: iterations, reseeds: reseeds)
    }

    static func initialize(_ x: Matrix, _ w: [Float], _ c: KMeansConfiguration, rng: inout SeededRandom) -> Matrix {
        var chosen: [Int] = []
        switch c.initialization {
        case .random:
            var candidates = (0..<x.rows).filter { w[$0] > 0 }
            rng.shuffle(&candidates)
            chosen = Array(candidates.prefix(c.clusters))
            while chosen.count < c.clusters { chosen.append(candidates[chosen.count % candidates.count]) }
        case .kMeansPlusPlus:
            chosen.append(rng.weightedIndex(w.map(Double.init)))
            var best = [Double](repeating: .infinity, count: x.rows)
            while chosen.count < c.clusters {
                let last = x.row(chosen.last!)
                for i in 0..<x.rows {
                    var d = 0.0
                    for f in 0..<x.cols { let v = Double(x.data[i * x.cols + f] - last[f]); d += v * v }
                    best[i] = min(best[i], d)
                }
                let weights = (0..<x.rows).map { Double(w[$0]) * best[$0] }
                chosen.append(weights.contains(where: { $0 > 0 }) ? rng.weightedIndex(weights) : rng.nextInt(below: x.rows))
            }
        }
        return x.gatherRows(chosen)
    }
}
