import FedRouteEvaluation
import FedRouteRouters
import Foundation

/// Mean and sample standard deviation of a metric over runs.
public struct MeanSD: Sendable, Codable, Equatable {
    public var mean: Double
    public var sd: Double
    public var values: [Double]

    public init(_ values: [Double]) {
        self.values = values
        let n = Double(values.count)
        mean = values.isEmpty ? .nan : values.reduce(0, +) / n
        let m = mean
        sd = values.count < 2 ? 0 : (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)).squareRoot()
    }

    public var formatted: String { String(format: "%.4f ± %.4f", mean, sd) }
}

/// The paper's claims for one router family, measured over several seeds.
public struct FamilySummary: Sendable, Codable, Equatable {
    public var family: RouterFamily
    public var seeds: Int
    // Global test set.
    public var federated: MeanSD
    public var centralized: MeanSD
    public var bestLocal: MeanSD
    public var worstLocal: MeanSD
    public var meanLocal: MeanSD
    /// Centralized − federated AUC.
    public var gapToCentralized: MeanSD
    /// Seeds in which federated beat every client-local router on the global test set.
    public var seedsFederatedBeatsEveryLocal: Int
    // Each client's own test set (per seed: mean over evaluated clients).
    public var ownFederated: MeanSD
    public var ownLocal: MeanSD
    public var ownAdaptive: MeanSD
    public var ownFineTuned: MeanSD
    public var ownCentralized: MeanSD
    /// Share of evaluated clients whose own-test AUC is higher with federated than with local.
    public var federatedBeatsLocalShare: MeanSD
    /// Share of evaluated clients where adaptive ≥ max(federated, local) on their own test set.
    public var adaptiveAtLeastBetterShare: MeanSD
    /// Share where adaptive ≥ max(federated, local) − 0.01 AUC.
    public var adaptiveWithinHundredthShare: MeanSD
}

/// Summary of a multi-seed simulation.
public struct SimulationSummary: Sendable, Codable, Equatable {
    public var seeds: [UInt64]
    public var families: [FamilySummary]

    public init(_ results: [SimulationResult]) {
        seeds = results.map(\.configuration.seed)
        let familyList = results.first?.families.map(\.family) ?? []
        families = familyList.map { family in
            let runs = results.compactMap { r in r.families.first { $0.family == family } }
            func auc(_ report: EvaluationReport, _ name: String) -> Double? { report.entries.first { $0.name == name }?.auc }
            var fed = [Double](), cen = [Double](), best = [Double](), worst = [Double](), meanLocal = [Double](), gap = [Double]()
            var beats = 0
            var oF = [Double](), oL = [Double](), oA = [Double](), oT = [Double](), oC = [Double](), win = [Double](), adapt = [Double](), adaptTol = [Double]()
            for run in runs {
                let f = auc(run.global, Simulation.Name.federated) ?? .nan
                let c = auc(run.global, Simulation.Name.centralized) ?? .nan
                let locals = run.global.entries.filter { $0.name.hasPrefix(Simulation.Name.local + ":") }.map(\.auc)
                fed.append(f); cen.append(c); gap.append(c - f)
                if let b = locals.max(), let w = locals.min() {
                    best.append(b); worst.append(w); meanLocal.append(locals.reduce(0, +) / Double(locals.count))
                    if f > b { beats += 1 }
                }
                var perClient = (f: [Double](), l: [Double](), a: [Double](), t: [Double](), c: [Double](), win: 0, adapt: 0, adaptTol: 0, n: 0)
                for e in run.clients {
                    guard let r = e.report, let cf = auc(r, Simulation.Name.federated) else { continue }
                    perClient.f.append(cf)
                    if let cc = auc(r, Simulation.Name.centralized) { perClient.c.append(cc) }
                    if let ct = auc(r, Simulation.Name.fineTuned) { perClient.t.append(ct) }
                    guard let cl = auc(r, Simulation.Name.local), let ca = auc(r, Simulation.Name.adaptive) else { continue }
                    perClient.n += 1
                    perClient.l.append(cl); perClient.a.append(ca)
                    if cf > cl { perClient.win += 1 }
                    if ca >= max(cf, cl) { perClient.adapt += 1 }
                    if ca >= max(cf, cl) - 0.01 { perClient.adaptTol += 1 }
                }
                func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }
                oF.append(mean(perClient.f)); oL.append(mean(perClient.l)); oA.append(mean(perClient.a))
                oT.append(mean(perClient.t)); oC.append(mean(perClient.c))
                let n = Double(max(1, perClient.n))
                win.append(Double(perClient.win) / n); adapt.append(Double(perClient.adapt) / n); adaptTol.append(Double(perClient.adaptTol) / n)
            }
            return FamilySummary(family: family, seeds: runs.count, federated: MeanSD(fed), centralized: MeanSD(cen), bestLocal: MeanSD(best),
                                 worstLocal: MeanSD(worst), meanLocal: MeanSD(meanLocal), gapToCentralized: MeanSD(gap),
                                 seedsFederatedBeatsEveryLocal: beats, ownFederated: MeanSD(oF), ownLocal: MeanSD(oL), ownAdaptive: MeanSD(oA),
                                 ownFineTuned: MeanSD(oT), ownCentralized: MeanSD(oC), federatedBeatsLocalShare: MeanSD(win),
                                 adaptiveAtLeastBetterShare: MeanSD(adapt), adaptiveWithinHundredthShare: MeanSD(adaptTol))
        }
    }

    /// A plain-text rendering (what `fedroute simulate` prints at the end).
    public var text: String {
        var out = "Summary over \(seeds.count) seed(s) \(seeds.map(String.init).joined(separator: ", ")): normalised AUC, mean ± sd\n"
        for f in families {
            out += "\n[\(f.family.rawValue)] global test set (union of client test sets)\n"
            out += "  federated                       \(f.federated.formatted)\n"
            out += "  centralized                     \(f.centralized.formatted)\n"
            out += "  client-local best / mean / worst \(f.bestLocal.formatted) / \(f.meanLocal.formatted) / \(f.worstLocal.formatted)\n"
            out += "  centralized − federated         \(f.gapToCentralized.formatted)\n"
            out += "  federated beats every local     \(f.seedsFederatedBeatsEveryLocal)/\(f.seeds) seeds\n"
            out += "[\(f.family.rawValue)] each client's own test set (mean over clients)\n"
            out += "  federated \(f.ownFederated.formatted) | local \(f.ownLocal.formatted) | adaptive \(f.ownAdaptive.formatted) | fine-tuned \(f.ownFineTuned.formatted) | centralized \(f.ownCentralized.formatted)\n"
            out += "  share of clients with federated > local             \(f.federatedBeatsLocalShare.formatted)\n"
            out += "  share with adaptive ≥ max(federated, local)         \(f.adaptiveAtLeastBetterShare.formatted)\n"
            out += "  share with adaptive ≥ max(federated, local) − 0.01  \(f.adaptiveWithinHundredthShare.formatted)\n"
        }
        return out
    }
}

/// Writes simulation results: JSON, per-report CSV/SVG/text, and readable summaries.
public enum SimulationWriter {
    /// Per-client own-test AUC table of one family in one run.
    public static func clientTable(_ family: FamilyResult) -> String {
        let names = [Simulation.Name.federated, Simulation.Name.centralized, Simulation.Name.local, Simulation.Name.adaptive, Simulation.Name.fineTuned]
        var out = "client      test  " + names.map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined() + "\n"
        for e in family.clients {
            out += e.client.padding(toLength: 10, withPad: " ", startingAt: 0)
            guard let r = e.report else { out += "  skipped: \(e.skipped ?? "")\n"; continue }
            out += String(format: "%6d  ", r.testQueries)
            for n in names {
                let v = r.entries.first { $0.name == n }?.auc
                out += (v.map { String(format: "%.4f", $0) } ?? "—").padding(toLength: 12, withPad: " ", startingAt: 0)
            }
            out += "\n"
        }
        return out
    }

    /// Writes one run under `directory`; returns the files written.
    @discardableResult
    public static func write(_ result: SimulationResult, to directory: String) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        func path(_ parts: String...) -> String { parts.reduce(directory) { ($0 as NSString).appendingPathComponent($1) } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try encoder.encode(result).write(to: URL(fileURLWithPath: path("result.json")), options: .atomic)
        written.append(path("result.json"))
        var text = "seed \(result.configuration.seed): \(result.clients.count) clients, \(result.globalTestQueries) global test queries, \(result.centralizedTrainCells) observed train cells\n"
        for c in result.clients {
            text += "  \(c.id): train \(c.trainQueries) (\(c.observedTrainCells) cells), test \(c.testQueries) (\(c.evaluatedTestQueries) fully labelled), tasks \(c.tasks.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))\n"
        }
        for f in result.families {
            let title = "\(f.family.rawValue) — global test set, seed \(result.configuration.seed)"
            written += try ReportWriter.write(f.global, to: path(f.family.rawValue, "global"), title: title)
            if let pipeline = f.federatedPipeline {
                let file = path(f.family.rawValue, "federated-router.safetensors")
                try RouterFile.save(pipeline, to: file, extraMetadata: ["trained_by": "fedroute simulate (federated)", "seed": String(result.configuration.seed)])
                written.append(file)
            }
            for e in f.clients {
                guard let r = e.report else { continue }
                written += try ReportWriter.write(r, to: path(f.family.rawValue, e.client), title: "\(f.family.rawValue) — \(e.client)'s own test set, seed \(result.configuration.seed)")
            }
            text += "\n== \(f.family.rawValue): global test set ==\n" + ReportWriter.table(f.global)
            text += "\n== \(f.family.rawValue): each client's own test set (AUC) ==\n" + clientTable(f)
            if !f.missingLocal.isEmpty { text += "no local router: \(f.missingLocal.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", "))\n" }
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path("summary.txt")), options: .atomic)
        written.append(path("summary.txt"))
        return written
    }

    /// Writes the multi-seed summary (`summary.json`, `summary.txt`) under `directory`.
    @discardableResult
    public static func write(_ summary: SimulationSummary, to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let json = (directory as NSString).appendingPathComponent("summary.json")
        let txt = (directory as NSString).appendingPathComponent("summary.txt")
        try encoder.encode(summary).write(to: URL(fileURLWithPath: json), options: .atomic)
        try Data(summary.text.utf8).write(to: URL(fileURLWithPath: txt), options: .atomic)
        return [json, txt]
    }
}
