import FedRouteData
import FedRouteEvaluation
import FedRouteFederation
import FedRouteRouters
import FedRouteSimulation
import Foundation

/// Writes a simulated federation as files for real `fedroute coordinator` / `fedroute client`
/// processes: each client's training and test data and key, TLS files, the coordinator's
/// `server.json`, the pooled client test sets as its validation set, the simulation's federated AUC
/// (`expected.json`) and each client's fine-tuning seed (`personalize-seeds.json`), so that the
/// processes can be checked against the simulation.
public enum FederationExport {
    /// Exports `result` (a run with the hashed encoder) to `directory`; the coordinator listens on `port`.
    public static func write(_ result: SimulationResult, to directory: String, port: Int) throws {
        let c = result.configuration
        guard case .hashed(let encoder) = c.encoder else {
            throw FederationError.invalidConfiguration("exporting a federation needs the hashed encoder (MiniLM clients would each need the weights)")
        }
        guard !result.shards.isEmpty else { throw FederationError.invalidConfiguration("the simulation result holds no client data to export") }
        let fm = FileManager.default
        // server.json names the gate's λ grid by its band count (`FederatedSafety.bands`), so the
        // simulation's grid must be the default one of that count for the job to calibrate the same gate.
        guard c.validationFraction == 0 || c.safetyLambdas == SafetyGate.defaultLambdas(bands: c.safetyLambdas.count) else {
            throw FederationError.invalidConfiguration("the simulation's safety λ grid is not the default log-spaced 1e-2 … 1e7 grid of \(c.safetyLambdas.count) bands, which server.json cannot express")
        }
        func path(_ parts: String...) -> String { parts.reduce(directory) { ($0 as NSString).appendingPathComponent($1) } }
        for sub in ["clients", "keys", "tls"] { try fm.createDirectory(atPath: path(sub), withIntermediateDirectories: true) }
        var clients: [CoordinatorConfiguration.Client] = []
        var seeds: [String: UInt64] = [:]
        for (i, shard) in result.shards.enumerated() {
            // A client trains on its rows minus the ones it held out, which go to a file of their own.
            let held = result.heldOut.indices.contains(i) ? result.heldOut[i] : EvaluationTable(models: shard.train.models)
            let heldIDs = Set(held.queries.map(\.id))
            try NativeFormat.write(shard.train.filter { !heldIDs.contains(shard.train.queries[$0].id) }, to: path("clients", "\(shard.id).jsonl"))
            if held.queryCount > 0 { try NativeFormat.write(held, to: path("clients", "\(shard.id)-validation.jsonl")) }
            try NativeFormat.write(shard.test, to: path("clients", "\(shard.id)-test.jsonl"))
            seeds[shard.id] = Simulation.fineTuneSeed(mlpSeed: c.mlp.seed, client: i)
            let identity = ClientIdentity(id: shard.id)
            try identity.write(to: path("keys", "\(shard.id).key"))
            clients.append(.init(id: shard.id, publicKey: identity.publicKeyBase64))
        }
        try NativeFormat.write(try EvaluationTable.concatenate(result.shards.map(\.test)), to: path("validation.jsonl"))
        try FederationCertificates.generate(directory: path("tls"), hosts: ["127.0.0.1", "localhost"])
        let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
        func abs(_ parts: String...) -> String { parts.reduce(absolute) { ($0 as NSString).appendingPathComponent($1) } }
        let coordinator = CoordinatorConfiguration(
            federation: "simulation-seed-\(c.seed)", host: "127.0.0.1", port: port,
            tls: .init(certificate: abs("tls", "server.pem"), key: abs("tls", "server-key.pem")),
            clients: clients, families: c.families.filter(\.isFederated), encoder: encoder, mlp: c.mlp, kmeans: c.kmeans,
            minimumOnline: max(1, c.mlp.minimumClients), roundDeadlineSeconds: 60, joinTimeoutSeconds: 300,
            stateDirectory: abs("state"), outputDirectory: abs("out"), validation: abs("validation.jsonl"), rejoinGraceSeconds: 10,
            mf: c.families.contains(.mf) ? c.mf : nil,
            safety: c.validationFraction > 0 ? FederatedSafety(bands: c.safetyLambdas.count, standardErrors: c.safetyStandardErrors) : nil)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(coordinator).write(to: URL(fileURLWithPath: path("server.json")), options: .atomic)
        var expected: [String: Double] = [:]
        for f in result.families where f.family.isFederated {
            expected[f.family.rawValue] = f.global.entries.first { $0.name == Simulation.Name.federated }?.auc
            // The safe federated router, when the simulation calibrated a gate (the exported job does too).
            if let safe = f.global.entries.first(where: { $0.name == Simulation.Name.federatedSafe })?.auc { expected["\(f.family.rawValue) (safe)"] = safe }
        }
        try e.encode(expected).write(to: URL(fileURLWithPath: path("expected.json")), options: .atomic)
        try e.encode(seeds).write(to: URL(fileURLWithPath: path("personalize-seeds.json")), options: .atomic)
    }
}
