import FedRouteNumerics
import Foundation

/// One party's rows for the Meta-Router: query features and either a gold label r (quality gain
/// of the primary over the alternative model, gold scale) or a judge label y (judge scale).
///
/// Every estimator below only ever adds statistics over shards, so one shard holding all rows is
/// the centralized estimator and many shards are the federated one, with the same result.
public struct MetaRouterShard: Sendable {
    public var features: Matrix
    public var isGold: [Bool]
    public var label: [Double]
    /// Cross-fitting fold of each row, in 0..<folds, assigned from a global row id so that it does
    /// not depend on how rows are spread over shards.
    public var fold: [Int]
    /// The design of the bias regression Δ̂(x) (the CATE stage), when it should be simpler than
    /// the gain's: e.g. a few query attributes such as length. Nil = `features`.
    public var biasFeatures: Matrix?

    public init(features: Matrix, isGold: [Bool], label: [Double], fold: [Int], biasFeatures: Matrix? = nil) throws {
        guard isGold.count == features.rows, label.count == features.rows, fold.count == features.rows else {
            throw MetaRouterError.invalidInput("shard has \(features.rows) feature rows but \(isGold.count) flags, \(label.count) labels, \(fold.count) folds")
        }
        guard label.allSatisfy(\.isFinite) else { throw MetaRouterError.invalidInput("a label is NaN or infinite") }
        guard features.isFinite else { throw MetaRouterError.invalidInput("features contain NaN or infinity") }
        if let b = biasFeatures {
            guard b.rows == features.rows, b.cols >= 1, b.isFinite else {
                throw MetaRouterError.invalidInput("bias features are \(b.rows)×\(b.cols) (finite: \(b.isFinite)) for \(features.rows) rows")
            }
        }
        self.biasFeatures = biasFeatures
        self.features = features
        self.isGold = isGold
        self.label = label
        self.fold = fold
    }

    var rows: Range<Int> { 0..<features.rows }
    var biasDesign: Matrix { biasFeatures ?? features }
    var goldRows: [Int] { rows.filter { isGold[$0] } }
    var judgeRows: [Int] { rows.filter { !isGold[$0] } }
}

/// How gold labels are put on the judge's scale.
public enum ScaleAlignment: String, Sendable, Codable, CaseIterable {
    /// Keep the gold scale.
    case none
    /// r̃ = μ_y + (r − μ_r)·σ_y/σ_r (means and variances are additive statistics).
    case varianceRatio = "variance-ratio"
    /// Quantile (1-D Wasserstein-2) map r̃ = Q_y(F_r(r)), from 256-bin histograms (additive counts).
    case quantile
}

/// The propensity e(x) = P(gold | x).
public enum PropensityModel: String, Sendable, Codable, CaseIterable {
    /// n / (n + m).
    case constant
    /// Ridge-penalised logistic regression on the features (IRLS).
    case logistic
}

/// Ways to estimate the gain ψ(q) of the primary over the alternative model.
public enum GainEstimator: String, Sendable, Codable, CaseIterable {
    /// Ridge on the gold rows only.
    case goldOnly = "gold-only"
    /// Ridge on the judge rows only, mapped to the gold scale.
    case judgeOnly = "judge-only"
    /// Gold (aligned) and judge rows pooled without correction.
    case pooled
    /// Judge labels shifted by one constant (mean aligned gold − mean judge), then pooled.
    case meanShift = "mean-shift"
    /// Judge labels corrected by the R-learner's Δ̂(x), then pooled.
    case rLearner = "r-learner"
    /// Judge labels corrected by the DR-learner's Δ̂(x), then pooled.
    case drLearner = "dr-learner"
}

public struct MetaRouterConfiguration: Sendable, Codable, Equatable {
    public var alignment: ScaleAlignment = .varianceRatio
    public var propensity: PropensityModel = .constant
    public var folds = 5
    /// Ridge penalty (per unit of row weight) of the outcome, CATE and final regressions.
    public var ridge = 1e-3
    /// Ridge penalty of the bias regression Δ̂(x): the method's premise is that the judge's bias is
    /// simpler than the gain itself, so it is shrunk harder towards a constant.
    public var biasRidge = 0.01
    /// Ridge penalty of the logistic propensity.
    public var propensityRidge = 1e-2
    /// Propensities are clipped into [clip, 1 − clip]; no row is dropped.
    public var clip = 0.01

    public init() {}
}

/// The fitted gain model: ψ̂ on the judge scale and the map back to the gold scale.
public struct GainModel: Sendable {
    public var estimator: GainEstimator
    public var model: RidgeModel
    public var alignment: Alignment
    /// The bias model Δ̂ (judge scale) for the R/DR learners, on the shards' bias design
    /// (`MetaRouterShard.biasFeatures`, else the features); constant for the mean shift.
    public var bias: RidgeModel?

    /// ψ̂(x) on the gold scale.
    public func predict(_ features: Matrix, rows: [Int]) -> [Double] {
        model.predict(features, rows: rows).map { alignment.toGold($0) }
    }
}

/// The fitted gold → judge map and its inverse.
public struct Alignment: Sendable {
    public var kind: ScaleAlignment
    var goldMean = 0.0, goldSD = 1.0, judgeMean = 0.0, judgeSD = 1.0
    var goldHistogram: Histogram?
    var judgeHistogram: Histogram?

    public static let identity = Alignment(kind: .none)

    public func toJudge(_ r: Double) -> Double {
        switch kind {
        case .none: return r
        case .varianceRatio: return judgeMean + (r - goldMean) * judgeSD / goldSD
        case .quantile: return judgeHistogram!.quantile(goldHistogram!.midCDF(r))
        }
    }

    public func toGold(_ s: Double) -> Double {
        switch kind {
        case .none: return s
        case .varianceRatio: return goldMean + (s - judgeMean) * goldSD / judgeSD
        case .quantile: return goldHistogram!.quantile(judgeHistogram!.midCDF(s))
        }
    }
}

/// A fixed-range histogram: additive counts, mid-CDF and quantiles by linear interpolation.
struct Histogram: Sendable {
    static let bins = 256
    var low: Double
    var high: Double
    var counts: [Double]

    init(low: Double, high: Double) {
        self.low = low
        self.high = high > low ? high : low + 1
        counts = [Double](repeating: 0, count: Self.bins)
    }

    func bin(_ v: Double) -> Int { min(Self.bins - 1, max(0, Int((v - low) / (high - low) * Double(Self.bins)))) }
    mutating func add(_ v: Double) { counts[bin(v)] += 1 }

    static func + (a: Histogram, b: Histogram) -> Histogram {
        var c = a
        for i in c.counts.indices { c.counts[i] += b.counts[i] }
        return c
    }

    /// P(X < v) + ½·P(X in v's bin).
    func midCDF(_ v: Double) -> Double {
        let total = counts.reduce(0, +)
        guard total > 0 else { return 0.5 }
        let b = bin(v)
        return (counts[..<b].reduce(0, +) + counts[b] / 2) / total
    }

    /// The value below which a fraction `p` of the mass lies (bins spread uniformly).
    func quantile(_ p: Double) -> Double {
        let total = counts.reduce(0, +)
        guard total > 0 else { return (low + high) / 2 }
        let target = min(max(p, 0), 1) * total
        var cumulative = 0.0
        let width = (high - low) / Double(Self.bins)
        for (i, c) in counts.enumerated() where c > 0 {
            if cumulative + c >= target {
                return low + (Double(i) + (target - cumulative) / c) * width
            }
            cumulative += c
        }
        return high
    }
}

/// Gain estimators over shards (one shard: centralized; many: federated).
public enum MetaRouter {
    /// Fits `estimator` on the rows of `shards`.
    public static func fit(_ estimator: GainEstimator, shards: [MetaRouterShard], configuration c: MetaRouterConfiguration = MetaRouterConfiguration()) throws -> GainModel {
        guard let d = shards.first?.features.cols, shards.allSatisfy({ $0.features.cols == d }) else {
            throw MetaRouterError.invalidInput("shards are empty or have different feature dimensions")
        }
        guard c.folds >= 2, c.clip > 0, c.clip < 0.5, c.ridge >= 0 else { throw MetaRouterError.invalidInput("folds ≥ 2, 0 < clip < 0.5 and ridge ≥ 0 are required") }
        let goldCount = shards.reduce(0) { $0 + $1.goldRows.count }
        let judgeCount = shards.reduce(0) { $0 + $1.judgeRows.count }
        guard goldCount >= 2 else { throw MetaRouterError.noRows("at least 2 gold rows are needed, found \(goldCount)") }

        if estimator == .goldOnly {
            let stats = statistics(shards, rows: { $0.goldRows }, target: { k, r in shards[k].label[r] })
            return GainModel(estimator: estimator, model: try stats.solve(lambda: c.ridge), alignment: .identity, bias: nil)
        }
        guard judgeCount >= 2 else { throw MetaRouterError.noRows("at least 2 judge rows are needed, found \(judgeCount)") }
        let alignment = try align(shards, kind: c.alignment)
        // Z: aligned gold on gold rows, judge labels on judge rows.
        let z = shards.map { s in s.rows.map { s.isGold[$0] ? alignment.toJudge(s.label[$0]) : s.label[$0] } }

        switch estimator {
        case .goldOnly:
            fatalError("handled above")
        case .judgeOnly:
            let stats = statistics(shards, rows: { $0.judgeRows }, target: { k, r in z[k][r] })
            return GainModel(estimator: estimator, model: try stats.solve(lambda: c.ridge), alignment: alignment, bias: nil)
        case .pooled:
            let stats = statistics(shards, rows: { Array($0.rows) }, target: { k, r in z[k][r] })
            return GainModel(estimator: estimator, model: try stats.solve(lambda: c.ridge), alignment: alignment, bias: nil)
        case .meanShift:
            var goldSum = 0.0, judgeSum = 0.0
            for (k, s) in shards.enumerated() {
                for r in s.rows { if s.isGold[r] { goldSum += z[k][r] } else { judgeSum += z[k][r] } }
            }
            let shift = goldSum / Double(goldCount) - judgeSum / Double(judgeCount)
            let stats = statistics(shards, rows: { Array($0.rows) }, target: { k, r in z[k][r] + (shards[k].isGold[r] ? 0 : shift) })
            return GainModel(estimator: estimator, model: try stats.solve(lambda: c.ridge), alignment: alignment, bias: .constant(shift, dimension: d))
        case .rLearner, .drLearner:
            let bias = try cate(estimator == .rLearner ? .r : .dr, shards: shards, z: z, goldCount: goldCount, judgeCount: judgeCount, configuration: c)
            let stats = statistics(shards, rows: { Array($0.rows) }, target: { k, r in
                z[k][r] + (shards[k].isGold[r] ? 0 : bias.predict(shards[k].biasDesign, row: r))
            })
            return GainModel(estimator: estimator, model: try stats.solve(lambda: c.ridge), alignment: alignment, bias: bias)
        }
    }

    enum Learner { case r, dr }

    /// Δ̂(x) = E[Z | x, gold] − E[Z | x, judge] by the R- or DR-learner with cross-fitted nuisances.
    static func cate(_ learner: Learner, shards: [MetaRouterShard], z: [[Double]], goldCount: Int, judgeCount: Int, configuration c: MetaRouterConfiguration) throws -> RidgeModel {
        let d = shards[0].features.cols
        let folds = c.folds
        // Per-fold statistics, summed over shards; a fold's nuisance is fitted on the other folds.
        func perFold(_ rows: @escaping (MetaRouterShard) -> [Int], target: (Int, Int) -> Double) -> [RidgeStatistics] {
            (0..<folds).map { f in statistics(shards, rows: { s in rows(s).filter { s.fold[$0] == f } }, target: target) }
        }
        func outOfFold(_ stats: [RidgeStatistics]) throws -> [RidgeModel] {
            let total = stats.reduce(RidgeStatistics(dimension: d), +)
            return try stats.map { try (total - $0).solve(lambda: c.ridge) }
        }
        let mu1 = try outOfFold(perFold({ $0.goldRows }, target: { k, r in z[k][r] }))
        let mu0 = try outOfFold(perFold({ $0.judgeRows }, target: { k, r in z[k][r] }))
        let mAll = try outOfFold(perFold({ Array($0.rows) }, target: { k, r in z[k][r] }))
        let propensity: [(Int, Int) -> Double]
        switch c.propensity {
        case .constant:
            let e = Double(goldCount) / Double(goldCount + judgeCount)
            propensity = [(Int, Int) -> Double](repeating: { _, _ in e }, count: folds)
        case .logistic:
            propensity = try (0..<folds).map { f in
                let model = try logistic(shards: shards, excludingFold: f, ridge: c.propensityRidge)
                return { k, r in sigmoid(model.predict(shards[k].features, row: r)) }
            }
        }
        func e(_ k: Int, _ r: Int) -> Double { min(1 - c.clip, max(c.clip, propensity[shards[k].fold[r]](k, r))) }
        let t: (Int, Int) -> Double = { k, r in shards[k].isGold[r] ? 1 : 0 }

        guard shards.allSatisfy({ ($0.biasFeatures == nil) == (shards[0].biasFeatures == nil) && $0.biasDesign.cols == shards[0].biasDesign.cols }) else {
            throw MetaRouterError.invalidInput("every shard needs bias features of the same dimension, or none")
        }
        let stats: RidgeStatistics
        switch learner {
        case .r:
            // min Σ ((Z − m̂) − (T − ê)·Δ(x))²  ⇔  weighted ridge of (Z − m̂)/(T − ê) with weights (T − ê)².
            stats = statistics(shards) { k, s in
                let rows = Array(s.rows)
                let residualT = rows.map { t(k, $0) - e(k, $0) }
                let target = rows.enumerated().map { i, r in (z[k][r] - mAll[s.fold[r]].predict(s.features, row: r)) / residualT[i] }
                return (rows, target, residualT.map { $0 * $0 })
            } design: { $0.biasDesign }
        case .dr:
            // φ = μ̂1 − μ̂0 + T(Z − μ̂1)/ê − (1 − T)(Z − μ̂0)/(1 − ê), regressed on x.
            stats = statistics(shards) { k, s in
                let rows = Array(s.rows)
                let phi = rows.map { r -> Double in
                    let f = s.fold[r]
                    let m1 = mu1[f].predict(s.features, row: r), m0 = mu0[f].predict(s.features, row: r)
                    let p = e(k, r)
                    return s.isGold[r] ? m1 - m0 + (z[k][r] - m1) / p : m1 - m0 - (z[k][r] - m0) / (1 - p)
                }
                return (rows, phi, nil)
            } design: { $0.biasDesign }
        }
        return try stats.solve(lambda: c.biasRidge)
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// Σ over shards of the ridge statistics of the rows, targets and weights each shard gives:
    /// the only way any estimator here touches the data, hence federated = centralized.
    /// `design` picks the regressors (the features, or the bias design for the CATE stage).
    static func statistics(
        _ shards: [MetaRouterShard], _ part: (Int, MetaRouterShard) -> (rows: [Int], z: [Double], weights: [Double]?),
        design: (MetaRouterShard) -> Matrix = { $0.features }
    ) -> RidgeStatistics {
        shards.enumerated().map { k, s in
            let p = part(k, s)
            return RidgeStatistics(features: design(s), rows: p.rows, z: p.z, weights: p.weights)
        }.reduce(RidgeStatistics(dimension: design(shards[0]).cols), +)
    }

    /// Σ over shards of the statistics of the rows `rows` picks, with targets `target(shard, row)`.
    static func statistics(_ shards: [MetaRouterShard], rows: (MetaRouterShard) -> [Int], target: (Int, Int) -> Double) -> RidgeStatistics {
        statistics(shards) { k, s in
            let r = rows(s)
            return (r, r.map { target(k, $0) }, nil)
        }
    }

    /// P(gold | x) by IRLS; each step sums weighted statistics over shards (rows of fold `excludingFold` left out).
    static func logistic(shards: [MetaRouterShard], excludingFold: Int?, ridge: Double, iterations: Int = 8) throws -> RidgeModel {
        let d = shards[0].features.cols
        var model = RidgeModel.constant(0, dimension: d)
        for _ in 0..<iterations {
            let stats = statistics(shards) { _, s in
                let rows = s.rows.filter { s.fold[$0] != excludingFold }
                var w: [Double] = [], target: [Double] = []
                for r in rows {
                    let eta = model.predict(s.features, row: r)
                    let p = min(1 - 1e-6, max(1e-6, sigmoid(eta)))
                    let weight = p * (1 - p)
                    w.append(weight)
                    target.append(eta - (p - (s.isGold[r] ? 1 : 0)) / weight)
                }
                return (rows, target, w)
            }
            model = try stats.solve(lambda: ridge)
        }
        return model
    }

    /// The gold → judge map from additive statistics of both label sets.
    static func align(_ shards: [MetaRouterShard], kind: ScaleAlignment) throws -> Alignment {
        var a = Alignment(kind: kind)
        guard kind != .none else { return a }
        var n = [0.0, 0.0], s = [0.0, 0.0], ss = [0.0, 0.0]
        var low = Double.infinity, high = -Double.infinity
        var lowJ = Double.infinity, highJ = -Double.infinity
        for sh in shards {
            for r in sh.rows {
                let g = sh.isGold[r] ? 0 : 1
                let v = sh.label[r]
                n[g] += 1; s[g] += v; ss[g] += v * v
                if g == 0 { low = min(low, v); high = max(high, v) } else { lowJ = min(lowJ, v); highJ = max(highJ, v) }
            }
        }
        a.goldMean = s[0] / n[0]
        a.judgeMean = s[1] / n[1]
        a.goldSD = max(1e-9, (ss[0] / n[0] - a.goldMean * a.goldMean).squareRoot())
        a.judgeSD = max(1e-9, (ss[1] / n[1] - a.judgeMean * a.judgeMean).squareRoot())
        if kind == .quantile {
            var hg = Histogram(low: low, high: high), hj = Histogram(low: lowJ, high: highJ)
            for sh in shards {
                for r in sh.rows { if sh.isGold[r] { hg.add(sh.label[r]) } else { hj.add(sh.label[r]) } }
            }
            a.goldHistogram = hg
            a.judgeHistogram = hj
        }
        return a
    }
}
