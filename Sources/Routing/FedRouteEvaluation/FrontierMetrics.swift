/// A (cost, quality) pair: mean USD per query and mean score per query.
public struct CostQuality: Sendable, Codable, Equatable {
    public var cost: Double
    public var quality: Double

    public init(cost: Double, quality: Double) {
        self.cost = cost
        self.quality = quality
    }
}

/// Metrics of accuracy–cost curves. All areas are exact integrals of piecewise-linear curves.
public enum FrontierMetrics {
    /// `count` values spaced evenly on a log scale from `low` to `high` (numpy's geomspace).
    public static func geomspace(_ low: Double, _ high: Double, count: Int) -> [Double] {
        precondition(low > 0 && high > 0 && count >= 1, "geomspace needs positive bounds and count")
        if count == 1 { return [low] }
        let a = log(low), b = log(high)
        return (0..<count).map { i in i == 0 ? low : i == count - 1 ? high : exp(a + (b - a) * Double(i) / Double(count - 1)) }
    }

    /// Points sorted by cost with equal costs merged (highest quality kept).
    public static func curve(_ points: [CostQuality]) -> [CostQuality] {
        var out: [CostQuality] = []
        for p in points.sorted(by: { ($0.cost, $0.quality) < ($1.cost, $1.quality) }) {
            if let last = out.last, last.cost == p.cost { out[out.count - 1].quality = max(last.quality, p.quality) } else { out.append(p) }
        }
        return out
    }

    /// Linear interpolation of a cost-sorted curve, held constant beyond its ends (numpy `interp`).
    public static func interpolate(_ curve: [CostQuality], at c: Double) -> Double {
        guard let first = curve.first, let last = curve.last else { return 0 }
        if c <= first.cost { return first.quality }
        if c >= last.cost { return last.quality }
        var i = 1
        while curve[i].cost < c { i += 1 }
        let a = curve[i - 1], b = curve[i]
        return a.quality + (b.quality - a.quality) * (c - a.cost) / (b.cost - a.cost)
    }

    /// Quality a policy with this curve attains at budget `c`: 0 below its cheapest point (it cannot
    /// run that cheaply), linear between its points (mixing the two neighbouring operating points),
    /// and held at its most expensive point's quality beyond it (a larger budget runs the same policy).
    public static func attainable(_ curve: [CostQuality], at c: Double) -> Double {
        guard let first = curve.first, c >= first.cost else { return 0 }
        return interpolate(curve, at: c)
    }

    /// Normalised area: ∫ attainable(c) dc / (high − low) over the window `[low, high]`, exact
    /// trapezoids between the curve's own points. A zero-width window gives attainable(low).
    public static func normalizedArea(_ points: [CostQuality], low: Double, high: Double) -> Double {
        let c = curve(points)
        guard let first = c.first else { return 0 }
        guard high > low else { return attainable(c, at: low) }
        var xs = [low] + c.map(\.cost).filter { $0 > low && $0 < high } + [high]
        xs.sort()
        var area = 0.0
        for i in 1..<xs.count where xs[i - 1] >= first.cost {
            area += (xs[i] - xs[i - 1]) * (interpolate(c, at: xs[i - 1]) + interpolate(c, at: xs[i])) / 2
        }
        return area / (high - low)
    }

    /// RouterBench's non-decreasing convex hull: the upper convex hull of the points from the
    /// cheapest point up to the best-quality point.
    public static func nonDecreasingConvexHull(_ points: [CostQuality]) -> [CostQuality] {
        let c = curve(points)
        guard c.count > 1 else { return c }
        var hull: [CostQuality] = []
        for p in c {
            while hull.count >= 2 {
                let a = hull[hull.count - 2], b = hull[hull.count - 1]
                // Drop b when it lies on or below the segment a→p.
                let cross = (b.cost - a.cost) * (p.quality - a.quality) - (b.quality - a.quality) * (p.cost - a.cost)
                if cross >= 0 { hull.removeLast() } else { break }
            }
            hull.append(p)
        }
        // Keep the rising part only.
        var best = 0
        for i in hull.indices where hull[i].quality > hull[best].quality { best = i }
        return Array(hull[...best])
    }

    /// Cheapest cost at which the piecewise-linear non-decreasing `hull` reaches `target`, or nil.
    public static func cost(toReach target: Double, on hull: [CostQuality]) -> Double? {
        guard let first = hull.first else { return nil }
        if first.quality >= target { return first.cost }
        for i in 1..<hull.count where hull[i].quality >= target {
            let a = hull[i - 1], b = hull[i]
            return a.cost + (b.cost - a.cost) * (target - a.quality) / (b.quality - a.quality)
        }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
