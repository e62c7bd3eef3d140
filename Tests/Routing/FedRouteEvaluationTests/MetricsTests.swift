import FedRouteData
@testable import FedRouteEvaluation
import FedRouteRouters
import Testing

@Suite struct FrontierMetricTests {
    func cq(_ p: [(Double, Double)]) -> [CostQuality] { p.map { CostQuality(cost: $0.0, quality: $0.1) } }

    @Test func areaOfHandMadeCurves() {
        // Straight line from (0, 0) to (1, 1): mean height 0.5.
        #expect(abs(FrontierMetrics.normalizedArea(cq([(0, 0), (1, 1)]), low: 0, high: 1) - 0.5) < 1e-12)
        // Step up then flat: (0,0.2)-(1,0.6), held at 0.6 until 3 → (0.4·1 + 0.6·2)/3.
        #expect(abs(FrontierMetrics.normalizedArea(cq([(1, 0.6), (0, 0.2)]), low: 0, high: 3) - (0.4 + 1.2) / 3) < 1e-12)
        // Unattainable below the cheapest point: a single point at cost 2 in window [0, 4] → 0.5·q.
        #expect(abs(FrontierMetrics.normalizedArea(cq([(2, 0.8)]), low: 0, high: 4) - 0.4) < 1e-12)
        // Duplicate costs keep the best quality.
        #expect(FrontierMetrics.curve(cq([(1, 0.2), (1, 0.7), (0, 0.1)])) == cq([(0, 0.1), (1, 0.7)]))
        let g = FrontierMetrics.geomspace(1e-2, 1e7, count: 100)
        #expect(g.count == 100 && g.first == 1e-2 && g.last == 1e7 && abs(g[1] / g[0] - pow(1e9, 1.0 / 99)) < 1e-9)
    }

    @Test func nonDecreasingConvexHull() {
        let points = cq([(0, 0.2), (1, 0.5), (2, 0.55), (3, 0.9), (4, 0.8), (1.5, 0.3), (5, 0.9)])
        // (1, 0.5) lies above the chord (0,0.2)→(3,0.9) and stays; (1.5, 0.3) and (2, 0.55) lie below
        // the chord (1,0.5)→(3,0.9) and go; points past the peak are dropped.
        #expect(FrontierMetrics.nonDecreasingConvexHull(points) == cq([(0, 0.2), (1, 0.5), (3, 0.9)]))
        let concave = cq([(0, 0), (1, 0.8), (2, 0.9), (3, 0.95)])
        #expect(FrontierMetrics.nonDecreasingConvexHull(concave) == concave)
        // AIQ of the hull ≥ AUC of the points.
        #expect(FrontierMetrics.normalizedArea(FrontierMetrics.nonDecreasingConvexHull(points), low: 0, high: 5)
                >= FrontierMetrics.normalizedArea(points, low: 0, high: 5))
        #expect(abs(FrontierMetrics.cost(toReach: 0.55, on: cq([(0, 0.2), (3, 0.9)]))! - 1.5) < 1e-12)
        #expect(FrontierMetrics.cost(toReach: 0.1, on: cq([(1, 0.2), (3, 0.9)])) == 1)
        #expect(FrontierMetrics.cost(toReach: 0.95, on: cq([(0, 0.2), (3, 0.9)])) == nil)
    }
}

@Suite struct EvaluatorTests {
    /// Two models: "cheap" right on even queries, "dear" always right.
    func tables() throws -> (EvaluationTable, EvaluationTable) {
        var train = EvaluationTable(models: ["cheap", "dear"]), test = train
        for i in 0..<10 {
            try train.append(Query(id: "t\(i)", text: "", task: "x"), cells: [0: (i % 2 == 0 ? 1 : 0, 1), 1: (1, 10)])
            try test.append(Query(id: "s\(i)", text: "", task: "x"), cells: [0: (i % 2 == 0 ? 1 : 0, 1), 1: (1, 10)])
        }
        try test.append(Query(id: "partial", text: "", task: "x"), cells: [0: (1, 1)])
        return (train, test)
    }

    @Test func oracleReferencesAndExclusions() throws {
        let (train, test) = try tables()
        let e = try Evaluator(train: train, test: test, lambdas: [0.001, 1])
        #expect(e.test.queryCount == 10 && e.excludedTestQueries == 1)
        let report = try e.evaluate([])
        let oracle = report.entries.first { $0.name == "oracle" }!
        // λ small: cheap where it is right (5×1), dear elsewhere (5×10) → cost 5.5, quality 1.
        #expect(oracle.points[0].cost == 5.5 && oracle.points[0].quality == 1)
        // λ = 1: cheap everywhere (1 − 1 > 1 − 10 on odd queries too) → cost 1, quality 0.5.
        #expect(oracle.points[1].cost == 1 && oracle.points[1].quality == 0.5)
        #expect(report.window.low == 1 && report.window.high == 10 && report.bestSingleModel == "dear")
        let random = report.entries.first { $0.name == "random" }!
        #expect(random.points[0].cost == 5.5 && random.points[0].quality == 0.75)
        // Oracle AUC over [1, 10]: 0.5→1 linearly on [1, 5.5], then 1 → (0.75·4.5 + 4.5)/9.
        #expect(abs(oracle.auc - (0.75 * 4.5 + 4.5) / 9) < 1e-12)
        #expect(oracle.costToReach["100%"]! == 5.5)
        #expect(throws: RouterError.self) {
            try e.frontier(RouterPredictions(models: ["cheap", "dear"], rows: 3, score: Array(repeating: 0, count: 6), cost: Array(repeating: 0, count: 6), available: Array(repeating: true, count: 6)))
        }
    }
}

extension EvaluatorTests {
    /// Routers added one at a time land after the other routers and before the references, with the
    /// numbers evaluating them all together gives.
    @Test func routersAddedOneAtATimeEqualEvaluatingThemTogether() throws {
        let (train, test) = try tables()
        let e = try Evaluator(train: train, test: test, lambdas: [0.001, 0.1, 1])
        func router(_ score: [Double]) -> RouterPredictions {
            RouterPredictions(models: ["cheap", "dear"], rows: 10, score: (0..<10).flatMap { _ in score }, cost: (0..<10).flatMap { _ in [1, 10] },
                              available: Array(repeating: true, count: 20))
        }
        let routers = [("a", router([0.9, 0.8])), ("b", router([0.4, 0.9])), ("c", router([0.6, 0.7]))]
        let together = try e.evaluate(routers)
        var oneByOne = try e.evaluate([routers[0]])
        for r in routers.dropFirst() { try e.addRouter(name: r.0, predictions: r.1, to: &oneByOne) }
        #expect(oneByOne.entries.map(\.name) == together.entries.map(\.name))
        #expect(oneByOne.entries.map(\.auc) == together.entries.map(\.auc))
        #expect(oneByOne.entries.map(\.costToReach) == together.entries.map(\.costToReach))
        #expect(Array(oneByOne.entries.map(\.name).prefix(4)) == ["a", "b", "c", "oracle"])
    }
}

@Suite struct SVGPlotTests {
    @Test func ticksAreRoundAndInsideTheRange() {
        let y = SVGPlot.niceTicks(0.5734, 0.9948)
        #expect(abs(y.step - 0.1) < 1e-12 && y.values.count == 4)
        #expect(y.values.map(y.label) == ["0.6", "0.7", "0.8", "0.9"])
        let x = SVGPlot.niceTicks(-4.1, -2.2)
        #expect(abs(x.step - 0.5) < 1e-12 && x.values.map(x.label) == ["-4.0", "-3.5", "-3.0", "-2.5"])
        let gain = SVGPlot.niceTicks(-0.004, 0.013)
        #expect(gain.values.map(gain.label) == ["0.000", "0.005", "0.010"])
        let signed = SVGPlot.niceTicks(-0.021, 0.013)
        #expect(signed.values.map(signed.label) == ["-0.020", "-0.015", "-0.010", "-0.005", "0.000", "0.005", "0.010"])
        let wide = SVGPlot.niceTicks(0, 240)
        #expect(wide.values.map(wide.label) == ["0", "50", "100", "150", "200"])
        // Degenerate ranges fall back to the two ends instead of looping or dividing by zero.
        #expect(SVGPlot.niceTicks(1, 1).values == [1, 1])
        #expect(SVGPlot.niceTicks(.nan, 1).values.count == 2)
        // A non-finite end still labels (it used to trap converting an infinite step to Int).
        let infinite = SVGPlot.niceTicks(-.infinity, 1)
        #expect(infinite.step == 1 && infinite.values.map(infinite.label) == ["-inf", "1"])
    }

    @Test func lineChartLabelsTicksAndLegend() {
        let svg = SVGPlot.lines([SVGPlot.Series(name: "a & b", points: [(x: 0, y: 0.61), (x: 1, y: 0.93)])],
                                title: "t", xLabel: "x", yLabel: "y", includeZero: false)
        #expect(svg.contains(">0.7</text>") && svg.contains(">0.9</text>") && !svg.contains(">0.5</text>"))
        #expect(svg.contains("a &amp; b") && svg.hasPrefix("<svg"))
    }
}

import Foundation
