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
        let norms = points.rowSquaredNorms()
        var rng = SeededRandom(seed: c.seed)
        var best: KMeansResult?
        for _ in 0..<c.restarts {
            var runRNG = rng.derived(rng.next())
            let result = run(points, w, c, norms: norms, threshold: threshold, rng: &runRNG)
            if best == nil || result.inertia < best!.inertia { best = result }
        }
        return best!
    }

    /// Nearest centre and squared distance for every point.
    public static func assign(points: Matrix, centroids: Matrix) -> (assignments: [Int], distances: [Float]) {
        assign(points: points, norms: points.rowSquaredNorms(), centroids: centroids)
    }

    /// `assign` with the points' squared norms given (they do not change between iterations). Rows are
    /// split over the cores; each row's nearest centre is found by the same code whatever the split.
    static func assign(points: Matrix, norms pn: [Float], centroids: Matrix) -> (assignments: [Int], distances: [Float]) {
        precondition(points.cols == centroids.cols && pn.count == points.rows, "dimension mismatch")
        let dots = points.multiplied(by: centroids, transposeOther: true)
        let cn = centroids.rowSquaredNorms()
        var a = [Int](repeating: 0, count: points.rows)
        var d = [Float](repeating: 0, count: points.rows)
        let k = centroids.rows
        a.withUnsafeMutableBufferPointer { pa in
            d.withUnsafeMutableBufferPointer { pd in
                // Each part writes only its own rows.
                let out = RowParallel.Shared((pa.baseAddress!, pd.baseAddress!))
                RowParallel.forEachRange(count: points.rows, minimumPerPart: 4_096) { range in
                    dots.data.withUnsafeBufferPointer { dp in
                        for i in range {
                            var bestJ = 0
                            var bestD = Float.infinity
                            for j in 0..<k {
                                let dist = pn[i] - 2 * dp[i * k + j] + cn[j]
                                if dist < bestD { bestD = dist; bestJ = j }
                            }
                            out.value.0[i] = bestJ
                            out.value.1[i] = max(0, bestD)
                        }
                    }
                }
            }
        }
        return (a, d)
    }

    /// The weighted variance per feature, averaged over features. Rows are read in order (each feature's
    /// sums still run over rows 0, 1, 2, …), not feature by feature down the columns.
    static func meanVariance(_ x: Matrix, _ w: [Float]) -> Double {
        let total = w.reduce(0.0) { $0 + Double($1) }
        let cols = x.cols
        var mean = [Double](repeating: 0, count: cols)
        var v = [Double](repeating: 0, count: cols)
        x.data.withUnsafeBufferPointer { p in
            for i in 0..<x.rows {
                let wi = Double(w[i])
                for j in 0..<cols { mean[j] += wi * Double(p[i * cols + j]) }
            }
            for j in 0..<cols { mean[j] /= total }
            for i in 0..<x.rows {
                let wi = Double(w[i])
                for j in 0..<cols { let d = Double(p[i * cols + j]) - mean[j]; v[j] += wi * d * d }
            }
        }
        var sum = 0.0
        for j in 0..<cols { sum += v[j] / total }
        return sum / Double(max(1, cols))
    }

    static func run(_ x: Matrix, _ w: [Float], _ c: KMeansConfiguration, norms: [Float], threshold: Double, rng: inout SeededRandom) -> KMeansResult {
        var centroids = initialize(x, w, c, rng: &rng)
        var assignments = [Int](repeating: 0, count: x.rows)
        var iterations = 0
        var reseeds = 0
        for it in 1...c.maxIterations {
            iterations = it
            var (a, dist) = assign(points: x, norms: norms, centroids: centroids)
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
            let next = centroidsOf(x, w, assignments: a, counts: counts, previous: centroids)
            var shift = 0.0
            for i in next.data.indices { let d = Double(next.data[i] - centroids.data[i]); shift += d * d }
            centroids = next
            if shift <= threshold { break }
        }
        let (a, dist) = assign(points: x, norms: norms, centroids: centroids)
        assignments = a
        let inertia = zip(dist, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        return KMeansResult(centroids: centroids, assignments: assignments, inertia: inertia, iterations: iterations, reseeds: reseeds)
    }

    /// Weighted means of the points of each cluster (a cluster without weight keeps its previous centre).
    /// Features are split over the cores; every sum still runs over the points in order.
    static func centroidsOf(_ x: Matrix, _ w: [Float], assignments a: [Int], counts: [Float], previous: Matrix) -> Matrix {
        let k = counts.count, cols = x.cols
        var next = Matrix(rows: k, cols: cols)
        next.data.withUnsafeMutableBufferPointer { pn in
            // Each part writes only its own features (columns) of every centre.
            let out = RowParallel.Shared(pn.baseAddress!)
            RowParallel.forEachRange(count: cols, minimumPerPart: x.rows >= 4_096 ? 64 : cols) { features in
                x.data.withUnsafeBufferPointer { p in
                    for i in 0..<x.rows where w[i] > 0 {
                        let row = a[i] * cols, src = i * cols
                        for f in features { out.value[row + f] += w[i] * p[src + f] }
                    }
                    for j in 0..<k {
                        if counts[j] > 0 { for f in features { out.value[j * cols + f] /= counts[j] } } else {
                            for f in features { out.value[j * cols + f] = previous.data[j * cols + f] }
                        }
                    }
                }
            }
        }
        return next
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
                let cols = x.cols
                best.withUnsafeMutableBufferPointer { pb in
                    // Rows split over the cores, each distance summed in feature order as before.
                    let out = RowParallel.Shared(pb.baseAddress!)
                    RowParallel.forEachRange(count: x.rows, minimumPerPart: 1_024) { range in
                        x.data.withUnsafeBufferPointer { p in
                            for i in range {
                                var d = 0.0
                                for f in 0..<cols { let v = Double(p[i * cols + f] - last[f]); d += v * v }
                                out.value[i] = min(out.value[i], d)
                            }
                        }
                    }
                }
                let weights = (0..<x.rows).map { Double(w[$0]) * best[$0] }
                chosen.append(weights.contains(where: { $0 > 0 }) ? rng.weightedIndex(weights) : rng.nextInt(below: x.rows))
            }
        }
        return x.gatherRows(chosen)
    }
}
