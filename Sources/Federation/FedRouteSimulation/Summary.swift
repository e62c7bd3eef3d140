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

/// A router's AUC minus the two baselines it must beat to be worth using, mean ± sd over seeds.
public struct BaselineMargins: Sendable, Codable, Equatable {
    /// AUC − best-single@λ (for each λ the one model best on the training data).
    public var overBestSingle: MeanSD
    /// AUC − zero-router (any mixture of single models: their non-decreasing convex hull).
    public var overZeroRouter: MeanSD

    public var formatted: String {
        String(format: "%+.4f ± %.4f | %+.4f ± %.4f", overBestSingle.mean, overBestSingle.sd, overZeroRouter.mean, overZeroRouter.sd)
    }
}

/// The paper's claims for one router family, measured over several seeds, with the baselines a
/// router must beat (issue 16): best-single@λ and the zero-router, globally and per client.
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
    // Baselines on the global test set, and each router's margins over them.
    public var bestSingle: MeanSD
    public var zeroRouter: MeanSD
    public var oracle: MeanSD
    public var federatedMargins: BaselineMargins
    public var centralizedMargins: BaselineMargins
    public var bestLocalMargins: BaselineMargins
    public var meanLocalMargins: BaselineMargins
    // The same on each client's own test set (per seed: mean over evaluated clients).
    public var ownBestSingle: MeanSD
    public var ownZeroRouter: MeanSD
    public var ownFederatedMargins: BaselineMargins
    public var ownCentralizedMargins: BaselineMargins
    public var ownLocalMargins: BaselineMargins
    /// The safe federated router (behind its gate) on the global test set and its margins (nil
    /// without validation rows).
    public var federatedSafe: MeanSD?
    public var federatedSafeMargins: BaselineMargins?
    /// The client-local rows of the global test set cover only a sample of this many clients
    /// (largest over seeds; nil when every client's local router was scored there).
    public var localsScoredGlobally: Int?
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
            func auc(_ report: EvaluationReport, _ name: String) -> Double? { report.auc(of: name) }
            func margins(_ table: [String: (b: [Double], z: [Double])], _ key: String) -> BaselineMargins {
                BaselineMargins(overBestSingle: MeanSD(table[key]?.b ?? []), overZeroRouter: MeanSD(table[key]?.z ?? []))
            }
            var fed = [Double](), cen = [Double](), best = [Double](), worst = [Double](), meanLocal = [Double](), gap = [Double](), safe = [Double]()
            var beats = 0
            var oF = [Double](), oL = [Double](), oA = [Double](), oT = [Double](), oC = [Double](), win = [Double](), adapt = [Double](), adaptTol = [Double]()
            var bs = [Double](), zr = [Double](), orc = [Double](), oBS = [Double](), oZR = [Double]()
            // Margins over (best-single@λ, zero-router): per router name, per seed.
            var global: [String: (b: [Double], z: [Double])] = [:], own: [String: (b: [Double], z: [Double])] = [:]
            func add(_ into: inout [String: (b: [Double], z: [Double])], _ key: String, _ b: Double, _ z: Double) {
                into[key, default: ([], [])].b.append(b)
                into[key, default: ([], [])].z.append(z)
            }
            for run in runs {
                let b = auc(run.global, EvaluationReport.Reference.bestSingleAtLambda) ?? .nan
                let z = auc(run.global, EvaluationReport.Reference.zeroRouter) ?? .nan
                bs.append(b); zr.append(z); orc.append(auc(run.global, EvaluationReport.Reference.oracle) ?? .nan)
                let f = auc(run.global, Simulation.Name.federated) ?? .nan
                let c = auc(run.global, Simulation.Name.centralized) ?? .nan
                let locals = run.global.entries.filter { $0.name.hasPrefix(Simulation.Name.local + ":") }.map(\.auc)
                fed.append(f); cen.append(c); gap.append(c - f)
                add(&global, Simulation.Name.federated, f - b, f - z)
                add(&global, Simulation.Name.centralized, c - b, c - z)
                if let s = auc(run.global, Simulation.Name.federatedSafe) {
                    safe.append(s)
                    add(&global, Simulation.Name.federatedSafe, s - b, s - z)
                }
                if let top = locals.max(), let w = locals.min() {
                    let m = locals.reduce(0, +) / Double(locals.count)
                    best.append(top); worst.append(w); meanLocal.append(m)
                    if f > top { beats += 1 }
                    add(&global, "best local", top - b, top - z)
                    add(&global, "mean local", m - b, m - z)
                }
                var ownMargins: [String: (b: [Double], z: [Double])] = [:]
                var ownBaselines = (b: [Double](), z: [Double]())
                var perClient = (f: [Double](), l: [Double](), a: [Double](), t: [Double](), c: [Double](), win: 0, adapt: 0, adaptTol: 0, n: 0)
                for e in run.clients {
                    guard let r = e.report, let cf = auc(r, Simulation.Name.federated) else { continue }
                    perClient.f.append(cf)
                    if let cb = auc(r, EvaluationReport.Reference.bestSingleAtLambda), let cz = auc(r, EvaluationReport.Reference.zeroRouter) {
                        ownBaselines.b.append(cb); ownBaselines.z.append(cz)
                    }
                    for name in [Simulation.Name.federated, Simulation.Name.centralized, Simulation.Name.local] {
                        if let m = r.margins(of: name) { add(&ownMargins, name, m.overBestSingle, m.overZeroRouter) }
                    }
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
                oBS.append(mean(ownBaselines.b)); oZR.append(mean(ownBaselines.z))
                for (name, m) in ownMargins { add(&own, name, mean(m.b), mean(m.z)) }
                oF.append(mean(perClient.f)); oL.append(mean(perClient.l)); oA.append(mean(perClient.a))
                oT.append(mean(perClient.t)); oC.append(mean(perClient.c))
                let n = Double(max(1, perClient.n))
                win.append(Double(perClient.win) / n); adapt.append(Double(perClient.adapt) / n); adaptTol.append(Double(perClient.adaptTol) / n)
            }
            var summary = FamilySummary(family: family, seeds: runs.count, federated: MeanSD(fed), centralized: MeanSD(cen), bestLocal: MeanSD(best),
                                 worstLocal: MeanSD(worst), meanLocal: MeanSD(meanLocal), gapToCentralized: MeanSD(gap),
                                 seedsFederatedBeatsEveryLocal: beats, ownFederated: MeanSD(oF), ownLocal: MeanSD(oL), ownAdaptive: MeanSD(oA),
                                 ownFineTuned: MeanSD(oT), ownCentralized: MeanSD(oC), federatedBeatsLocalShare: MeanSD(win),
                                 adaptiveAtLeastBetterShare: MeanSD(adapt), adaptiveWithinHundredthShare: MeanSD(adaptTol),
                                 bestSingle: MeanSD(bs), zeroRouter: MeanSD(zr), oracle: MeanSD(orc),
                                 federatedMargins: margins(global, Simulation.Name.federated), centralizedMargins: margins(global, Simulation.Name.centralized),
                                 bestLocalMargins: margins(global, "best local"), meanLocalMargins: margins(global, "mean local"),
                                 ownBestSingle: MeanSD(oBS), ownZeroRouter: MeanSD(oZR),
                                 ownFederatedMargins: margins(own, Simulation.Name.federated), ownCentralizedMargins: margins(own, Simulation.Name.centralized),
                                 ownLocalMargins: margins(own, Simulation.Name.local))
            summary.localsScoredGlobally = runs.compactMap(\.localsScoredGlobally).max()
            if !safe.isEmpty {
                summary.federatedSafe = MeanSD(safe)
                summary.federatedSafeMargins = margins(global, Simulation.Name.federatedSafe)
            }
            return summary
        }
    }

    /// A plain-text rendering (what `fedroute simulate` prints at the end).
    public var text: String {
        var out = "Summary over \(seeds.count) seed(s) \(seeds.map(String.init).joined(separator: ", ")): normalised AUC, mean ± sd\n"
        for f in families {
            out += "\n[\(f.family.rawValue)] global test set (union of client test sets)\n"
            out += f.federated.mean.isNaN ? "  federated                       — (no federated training)\n" : "  federated                       \(f.federated.formatted)\n"
            if let s = f.federatedSafe { out += "  federated (safe)                \(s.formatted)\n" }
            out += "  centralized                     \(f.centralized.formatted)\n"
            out += "  client-local best / mean / worst \(f.bestLocal.formatted) / \(f.meanLocal.formatted) / \(f.worstLocal.formatted)\n"
            if let n = f.localsScoredGlobally { out += "    (client-local rows: a seeded sample of \(n) clients' local routers; see --local-global-clients)\n" }
            let federates = !f.federated.mean.isNaN
            if federates { out += "  centralized − federated         \(f.gapToCentralized.formatted)\n" }
            if federates { out += "  federated beats every \(f.localsScoredGlobally == nil ? "local  " : "sampled") \(f.seedsFederatedBeatsEveryLocal)/\(f.seeds) seeds\n" }
            out += "  best-single@λ / zero-router / oracle  \(f.bestSingle.formatted) / \(f.zeroRouter.formatted) / \(f.oracle.formatted)\n"
            out += "  minus best-single@λ | minus zero-router:\n"
            if federates { out += "    federated                     \(f.federatedMargins.formatted)\n" }
            if let s = f.federatedSafeMargins { out += "    federated (safe)              \(s.formatted)\n" }
            out += "    centralized                   \(f.centralizedMargins.formatted)\n"
            out += "    best client-local             \(f.bestLocalMargins.formatted)\n"
            out += "    mean client-local             \(f.meanLocalMargins.formatted)\n"
            guard federates else { continue }
            out += "[\(f.family.rawValue)] each client's own test set (mean over clients)\n"
            out += "  federated \(f.ownFederated.formatted) | local \(f.ownLocal.formatted) | adaptive \(f.ownAdaptive.formatted) | fine-tuned \(f.ownFineTuned.formatted) | centralized \(f.ownCentralized.formatted)\n"
            out += "  share of clients with federated > local             \(f.federatedBeatsLocalShare.formatted)\n"
            out += "  share with adaptive ≥ max(federated, local)         \(f.adaptiveAtLeastBetterShare.formatted)\n"
            out += "  share with adaptive ≥ max(federated, local) − 0.01  \(f.adaptiveWithinHundredthShare.formatted)\n"
            out += "  best-single@λ \(f.ownBestSingle.formatted) | zero-router \(f.ownZeroRouter.formatted); minus best-single@λ | minus zero-router:\n"
            out += "    federated                     \(f.ownFederatedMargins.formatted)\n"
            out += "    centralized                   \(f.ownCentralizedMargins.formatted)\n"
            out += "    local                         \(f.ownLocalMargins.formatted)\n"
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
            for e in f.clients where e.curvesOmitted != true {
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
