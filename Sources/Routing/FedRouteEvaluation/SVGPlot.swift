import Foundation

/// Renders accuracy–cost frontiers (log-scale cost axis) and plain line charts as standalone SVG.
public enum SVGPlot {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]

    static func esc(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;") }
    static func n(_ v: Double) -> String { String(format: "%.1f", v) }

    /// One line of a chart.
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Drawn black and dashed (references such as an oracle).
        public var reference: Bool

        public init(name: String, points: [(x: Double, y: Double)], reference: Bool = false) {
            self.name = name
            self.points = points
            self.reference = reference
        }
    }

    /// Tick positions on a linear axis: multiples of a round step (1, 2 or 5 × 10^k) inside the range.
    public struct Ticks: Sendable, Equatable {
        public var values: [Double]
        public var step: Double

        /// `v` with as many decimals as the step needs (0.25 → "0.25", 0.1 → "0.1", 50 → "50").
        public func label(_ v: Double) -> String {
            guard step.isFinite, step > 0, v.isFinite else { return String(format: "%g", v) }
            let decimals = max(0, Int((-log10(step) - 1e-9).rounded(.up)))
            let text = String(format: "%.\(decimals)f", v)
            return Double(text) == 0 ? String(format: "%.\(decimals)f", 0.0) : text
        }
    }

    /// About `count` round ticks covering [low, high] (both finite, low < high; otherwise the two ends).
    public static func niceTicks(_ low: Double, _ high: Double, count: Int = 5) -> Ticks {
        guard low.isFinite, high.isFinite, high > low, count >= 1 else {
            let span = abs(high - low)
            return Ticks(values: [low, high], step: span.isFinite ? max(span, 1) : 1)
        }
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        let step = (fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10) * magnitude
        let first = Int((low / step).rounded(.up)), last = Int((high / step + 1e-9).rounded(.down))
        return Ticks(values: first <= last ? (first...last).map { Double($0) * step } : [low, high], step: step)
    }

    /// A line chart with linear axes, a zero line and a legend.
    /// `includeZero` keeps y = 0 in range (gain curves); off, the y axis spans the data only.
    public static func lines(_ series: [Series], title: String, xLabel: String, yLabel: String, width: Double = 900, height: Double = 520,
                             includeZero: Bool = true) -> String {
        // The legend column widens to fit the longest name (about 6.2 px per character at 11 px).
        let longest = Double(series.map(\.name.count).max() ?? 0)
        let left = 80.0, right = max(260.0, 60 + 6.2 * longest), top = 50.0, bottom = 60.0
        let plotW = width - left - right, plotH = height - top - bottom
        // Non-finite points (log10 of a zero cost, say) cannot be drawn and must not stretch the axes.
        let xs: [Double] = series.flatMap { line in line.points.map { $0.x } }.filter(\.isFinite)
        let ys: [Double] = series.flatMap { line in line.points.map { $0.y } }.filter(\.isFinite) + (includeZero ? [0] : [])
        let xLo = xs.min() ?? 0, xHi = max((xs.max() ?? 1), xLo + 1e-12)
        let pad = max(1e-12, ((ys.max() ?? 1) - (ys.min() ?? 0)) * 0.05)
        let yLo = (ys.min() ?? 0) - pad, yHi = (ys.max() ?? 1) + pad
        func x(_ v: Double) -> Double { left + (v - xLo) / (xHi - xLo) * plotW }
        func y(_ v: Double) -> Double { top + (1 - (v - yLo) / (yHi - yLo)) * plotH }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(n(left))\" y=\"28\" font-size=\"16\" font-weight=\"bold\">\(esc(title))</text>\n"
        let xTicks = niceTicks(xLo, xHi), yTicks = niceTicks(yLo, yHi)
        for vx in xTicks.values {
            s += "<line x1=\"\(n(x(vx)))\" y1=\"\(n(top))\" x2=\"\(n(x(vx)))\" y2=\"\(n(top + plotH))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(n(x(vx)))\" y=\"\(n(top + plotH + 18))\" text-anchor=\"middle\" fill=\"#444\">\(xTicks.label(vx))</text>\n"
        }
        for vy in yTicks.values {
            s += "<line x1=\"\(n(left))\" y1=\"\(n(y(vy)))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y(vy)))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(n(left - 8))\" y=\"\(n(y(vy) + 4))\" text-anchor=\"end\" fill=\"#444\">\(yTicks.label(vy))</text>\n"
        }
        if includeZero { s += "<line x1=\"\(n(left))\" y1=\"\(n(y(0)))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y(0)))\" stroke=\"#999\"/>\n" }
        s += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(height - 15))\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        s += "<text transform=\"translate(20 \(n(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        var colorIndex = 0
        for (i, line) in series.enumerated() {
            let color = line.reference ? "#000" : palette[colorIndex % palette.count]
            if !line.reference { colorIndex += 1 }
            let dash = line.reference ? " stroke-dasharray=\"6 4\"" : ""
            let path = line.points.filter { $0.x.isFinite && $0.y.isFinite }.map { "\(n(x($0.x))),\(n(y($0.y)))" }.joined(separator: " ")
            s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            let ly = top + 10 + Double(i) * 20
            s += "<line x1=\"\(n(left + plotW + 15))\" y1=\"\(n(ly))\" x2=\"\(n(left + plotW + 40))\" y2=\"\(n(ly))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(n(left + plotW + 46))\" y=\"\(n(ly + 4))\" font-size=\"11\">\(esc(line.name))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    public static func render(_ report: EvaluationReport, title: String, width: Double = 1100, height: Double = 600) -> String {
        let left = 80.0, right = 400.0, top = 50.0, bottom = 60.0
        let plotW = width - left - right, plotH = height - top - bottom
        var allCosts = report.singleModels.map(\.cost)
        var allQ = report.singleModels.map(\.quality)
        for e in report.entries { allCosts += e.points.map(\.cost); allQ += e.points.map(\.quality) }
        let positive = allCosts.filter { $0 > 0 }
        let lo = log10((positive.min() ?? 1e-6) / 1.3), hi = log10((positive.max() ?? 1) * 1.3)
        let qLo = max(0, floor((allQ.min() ?? 0) * 10) / 10 - 0.05), qHi = min(1.0, ceil((allQ.max() ?? 1) * 10) / 10 + 0.02)
        func x(_ c: Double) -> Double { left + (log10(max(c, pow(10, lo))) - lo) / (hi - lo) * plotW }
        func y(_ q: Double) -> Double { top + (1 - (q - qLo) / (qHi - qLo)) * plotH }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(n(left))\" y=\"28\" font-size=\"16\" font-weight=\"bold\">\(esc(title))</text>\n"
        // Grid and axes.
        for e in Int(floor(lo))...Int(ceil(hi)) {
            for m in [1.0, 2.0, 5.0] {
                let c = m * pow(10, Double(e))
                guard log10(c) >= lo, log10(c) <= hi else { continue }
                s += "<line x1=\"\(n(x(c)))\" y1=\"\(n(top))\" x2=\"\(n(x(c)))\" y2=\"\(n(top + plotH))\" stroke=\"#eee\"/>\n"
                s += "<text x=\"\(n(x(c)))\" y=\"\(n(top + plotH + 18))\" text-anchor=\"middle\" fill=\"#444\">\(String(format: "%g", c))</text>\n"
            }
        }
        var q = (qLo * 20).rounded(.up) / 20
        while q <= qHi + 1e-9 {
            s += "<line x1=\"\(n(left))\" y1=\"\(n(y(q)))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y(q)))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(n(left - 8))\" y=\"\(n(y(q) + 4))\" text-anchor=\"end\" fill=\"#444\">\(String(format: "%.2f", q))</text>\n"
            q += 0.05
        }
        s += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(height - 15))\" text-anchor=\"middle\">mean cost per query (USD, log scale)</text>\n"
        s += "<text transform=\"translate(20 \(n(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">mean quality</text>\n"
        // Curves.
        var legend: [(String, String, String)] = []
        var colorIndex = 0
        for e in report.entries {
            let pts = FrontierMetrics.curve(e.points.map { CostQuality(cost: $0.cost, quality: $0.quality) })
            let color: String
            let dash: String
            switch e.name {
            case "oracle": color = "#000"; dash = "6 4"
            case "zero-router": color = "#888"; dash = "3 3"
            default:
                if e.role == .router { color = palette[colorIndex % palette.count]; colorIndex += 1; dash = "" } else { color = "#555"; dash = "" }
            }
            if pts.count > 1 {
                let path = pts.map { "\(n(x($0.cost))),\(n(y($0.quality)))" }.joined(separator: " ")
                // Secondary routers (e.g. the many client-local baselines of a simulation) are drawn thin and pale.
                let secondary = e.name.hasPrefix("local:")
                s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(secondary ? 1.2 : e.role == .router ? 2 : 1.5)\"\(secondary ? " stroke-opacity=\"0.55\"" : "")\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"")/>\n"
                if e.role == .router && !secondary { for p in pts { s += "<circle cx=\"\(n(x(p.cost)))\" cy=\"\(n(y(p.quality)))\" r=\"2\" fill=\"\(color)\"/>\n" } }
            } else if let p = pts.first {
                s += "<rect x=\"\(n(x(p.cost) - 5))\" y=\"\(n(y(p.quality) - 5))\" width=\"10\" height=\"10\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            }
            legend.append((String(format: "%@  AUC %.3f", e.name, e.auc), color, dash))
        }
        for m in report.singleModels {
            s += "<circle cx=\"\(n(x(m.cost)))\" cy=\"\(n(y(m.quality)))\" r=\"4\" fill=\"#aaa\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(n(x(m.cost) + 6))\" y=\"\(n(y(m.quality) - 6))\" font-size=\"10\" fill=\"#333\">\(esc(m.model.split(separator: "/").last.map(String.init) ?? m.model))</text>\n"
        }
        for (i, (label, color, dash)) in legend.enumerated() {
            let ly = top + 10 + Double(i) * 20
            s += "<line x1=\"\(n(left + plotW + 15))\" y1=\"\(n(ly))\" x2=\"\(n(left + plotW + 40))\" y2=\"\(n(ly))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"")/>\n"
            s += "<text x=\"\(n(left + plotW + 46))\" y=\"\(n(ly + 4))\" font-size=\"11\">\(esc(label))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
