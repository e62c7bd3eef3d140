import FedRouteData
import FedRouteGatewayStore
import FedRouteRouters
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The `fedroute` commands end to end on small synthetic data: what they print, the files they
/// write, and how they fail (exit status and the message).
@Suite(.serialized) final class CommandTests {
    let cli: FedRouteCLI
    let dir: String
    let data: String

    init() throws {
        cli = try FedRouteCLI()
        dir = try FedRouteCLI.temporaryDirectory()
        data = try FedRouteCLI.syntheticData(in: dir)
    }

    /// Each test's folder goes when the test does (Swift Testing makes one suite instance per test).
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @Test func dataInspectSummarisesTheTable() throws {
        let r = try cli.run(["data", "inspect", data])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("queries: 240   models: 4   fully labelled queries: 240"))
        #expect(r.stdout.contains("specialist-0") && r.stdout.contains("generalist"))
        let json = try cli.run(["data", "inspect", data, "--json"])
        let summary = try JSONDecoder().decode(DatasetSummary.self, from: Data(json.stdout.utf8))
        #expect(summary.queries == 240 && summary.models == 4)
    }

    @Test func trainEvalAndRouteWorkTogether() throws {
        let router = dir + "/kmeans.safetensors"
        let train = try cli.run(["train", "--router", "kmeans", "--data", data, "--test-fraction", "0.25", "--clusters", "3", "--no-cache", "--out", router])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("saved kmeans router to \(router)"))
        #expect(try RouterFile.load(path: router).router.family == .kmeans)
        // Several cluster counts are averaged without --safe; selecting one needs the held-out rows.
        let averaged = dir + "/kmeans-averaged.safetensors"
        let trainAveraged = try cli.run(["train", "--router", "kmeans", "--data", data, "--test-fraction", "0.25", "--cluster-candidates", "2", "3",
                                         "--no-cache", "--out", averaged])
        #expect(trainAveraged.status == 0, "\(trainAveraged.stderr)")
        #expect(try RouterFile.load(path: averaged).router.as(KMeansRouter.self)?.clusterCounts == [2, 3])
        let selectWithoutSafe = try cli.run(["train", "--router", "kmeans", "--data", data, "--cluster-candidates", "2", "3", "--cluster-policy", "select",
                                             "--no-cache", "--out", averaged])
        #expect(selectWithoutSafe.status == 64 && selectWithoutSafe.stderr.contains("add --safe"), "\(selectWithoutSafe.stderr)")

        let mlp = dir + "/mlp.safetensors"
        let trainMLP = try cli.run(["train", "--router", "mlp", "--data", data, "--test-fraction", "0.25", "--epochs", "2", "--hidden", "16",
                                    "--dimension", "64", "--no-cache", "--out", mlp])
        #expect(trainMLP.status == 0, "\(trainMLP.stderr)")

        let report = dir + "/report"
        let eval = try cli.run(["eval", "--router", router, mlp, "--data", data, "--test-fraction", "0.25", "--no-cache", "--out", report])
        #expect(eval.status == 0, "\(eval.stderr)")
        // Every comparison carries the honest references.
        for name in ["kmeans", "mlp", "oracle", "best-single@λ", "zero-router", "random"] { #expect(eval.stdout.contains(name), "\(name) missing") }
        for file in ["report.json", "frontier.csv", "frontier.svg", "summary.txt"] {
            #expect(FileManager.default.fileExists(atPath: report + "/" + file), "\(file) missing")
        }

        // Calibrate the MLP's λ to a quality target and write it into a models.yaml (its comment kept).
        let yaml = dir + "/models.yaml"
        let names = try RouterFile.load(path: mlp).router.models
        try ("gateway:\n  lambda: 1   # calibrated\nmodels:\n" + names.map { "  - { name: \($0), base_url: \"http://127.0.0.1:9/v1\", price: { input_per_million: 1, output_per_million: 1 } }\n" }.joined())
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        let calibrate = try cli.run(["calibrate", "--router", mlp, "--data", data, "--test-fraction", "0.25", "--no-cache", "--target-cost", "1e9", "--models", yaml])
        #expect(calibrate.status == 0, "\(calibrate.stderr)")
        #expect(calibrate.stdout.contains("met on ") && calibrate.stdout.contains("check, ") && calibrate.stdout.contains("λ = 0 →"), "\(calibrate.stdout)")
        #expect(try String(contentsOfFile: yaml, encoding: .utf8).hasPrefix("gateway:\n  lambda: 0.0 # calibrated\n"))
        let noTarget = try cli.run(["calibrate", "--router", mlp, "--data", data])
        #expect(noTarget.status != 0 && noTarget.stderr.contains("exactly one of --target-cost"))
        let badShare = try cli.run(["calibrate", "--router", mlp, "--data", data, "--target-share", "nobody=0.5", "--no-cache"])
        #expect(badShare.status != 0 && badShare.stderr.contains("the router has no model 'nobody'"), "\(badShare.stderr)")

        let route = try cli.run(["route", "--router", router, "--lambda", "0", "topic1 t1w3 t1w7 please answer"])
        #expect(route.status == 0, "\(route.stderr)")
        let lines = route.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("chosen: ") == true)
        // The chosen model is the first, starred row of the ranking.
        let chosen = String(lines[0].dropFirst("chosen: ".count))
        #expect(lines.count == 2 + 4 && lines[2].hasPrefix("* \(chosen)"))
    }

    @Test func simulateOneSeedWritesReportsAndASummary() throws {
        let out = dir + "/simulation"
        let r = try cli.run(["simulate", "--data", data, "--seeds", "0", "--clients", "3", "--rounds", "1", "--hidden", "16", "--layers", "1",
                             "--dimension", "64", "--local-clusters", "3", "--global-clusters", "3", "--no-cache", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("seed 0 [mlp] global AUC: federated"))
        #expect(r.stdout.contains("seed 0 [kmeans] global AUC: federated"))
        for file in ["summary.json", "summary.txt", "seed-0/result.json", "seed-0/mlp/global/report.json", "seed-0/kmeans/federated-router.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file) missing")
        }
    }

    @Test func badInputFailsWithAMessageThatNamesIt() throws {
        let missing = try cli.run(["data", "inspect", dir + "/nope.jsonl"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nope.jsonl"))

        let lambda = try cli.run(["route", "--router", dir + "/x.safetensors", "--lambda=-1", "hello"])
        #expect(lambda.status == 64, "a usage error exits 64 (EX_USAGE)")
        #expect(lambda.stderr.contains("--lambda") && lambda.stderr.contains("-1"))

        let family = try cli.run(["train", "--router", "forest", "--data", data, "--out", dir + "/r.safetensors"])
        #expect(family.status == 64)
        #expect(family.stderr.contains("forest") && family.stderr.contains("kmeans"), "the message lists the families: \(family.stderr)")

        let notFederated = try cli.run(["simulate", "--data", data, "--families", "knn", "--seeds", "0"])
        #expect(notFederated.status == 64)
        #expect(notFederated.stderr.contains("at least one of mlp, kmeans, mf (kNN runs as centralized and local baselines only)"))

        let server = try cli.run(["simulate", "--data", data, "--server", "fedsgd"])
        #expect(server.status == 64 && server.stderr.contains("fedavg") && server.stderr.contains("fedadam"))

        let notARouter = dir + "/not-a-router.safetensors"
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: notARouter))
        let garbage = try cli.run(["route", "--router", notARouter, "--lambda", "1", "hello"])
        #expect(garbage.status != 0)
        #expect(garbage.stderr.contains(notARouter))

        let unwritable = try cli.run(["eval", "--router", notARouter, "--data", data, "--out", "/proc/fedroute-report"])
        #expect(unwritable.status != 0)
        #expect(unwritable.stderr.contains("/proc/fedroute-report"), "an unwritable --out is refused before any work: \(unwritable.stderr)")
        // Under a file: the reason in words, not an NSError dump.
        let underFile = try cli.run(["simulate", "--data", data, "--seeds", "0", "--out", notARouter + "/report"])
        #expect(underFile.status != 0 && underFile.stderr.contains("\(notARouter) is a file, not a folder"), "\(underFile.stderr)")
        #expect(!underFile.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func keysAreMadeListedAndRevokedWithoutStoringTheKey() throws {
        let db = dir + "/keys.sqlite"
        let noSecret = try cli.run(["keys", "create", "--db", db, "--name", "team-a"], environment: ["FEDROUTE_KEY_SECRET": ""])
        #expect(noSecret.status != 0 && noSecret.stderr.contains("FEDROUTE_KEY_SECRET"), "\(noSecret.stderr)")
        let secretFile = dir + "/secret"
        try String(repeating: "0123456789abcdef", count: 4).write(toFile: secretFile, atomically: true, encoding: .utf8)
        let made = try cli.run(["keys", "create", "--db", db, "--name", "team-a", "--budget-usd", "50", "--rpm", "600", "--models", "a,b",
                                "--expires", "90d", "--key-secret-file", secretFile])
        #expect(made.status == 0, "\(made.stderr)")
        let key = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("sk-fr-") && !key.contains("\n"))
        #expect(made.stderr.contains("cannot be shown again") && made.stderr.contains("budget=50.0 rpm=600 models=a,b"))
        let list = try cli.run(["keys", "list", "--db", db])
        #expect(list.status == 0 && list.stdout.contains("name=team-a status=active") && !list.stdout.contains(key))
        let revoked = try cli.run(["keys", "revoke", "--db", db, "team-a"])
        #expect(revoked.status == 0 && revoked.stdout.contains("status=revoked"))
        #expect(try cli.run(["keys", "show", "--db", db, "team-a"]).stdout.contains("status=revoked"))
        let unknown = try cli.run(["keys", "show", "--db", db, "nobody"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no key has id or name 'nobody'"))
        let badExpiry = try cli.run(["keys", "create", "--db", db, "--name", "x", "--expires", "soon", "--key-secret-file", secretFile])
        #expect(badExpiry.status != 0 && badExpiry.stderr.contains("--expires 'soon'"))
        let badPolicy = try cli.run(["keys", "create", "--db", db, "--name", "x", "--rpm", "0", "--key-secret-file", secretFile])
        #expect(badPolicy.status != 0 && badPolicy.stderr.contains("--rpm must be at least 1"))
        let otherSecret = try cli.run(["keys", "create", "--db", db, "--name", "y"], environment: ["FEDROUTE_KEY_SECRET": String(repeating: "z", count: 40)])
        #expect(otherSecret.status != 0 && otherSecret.stderr.contains("different key secret"))
        #expect(try cli.run(["keys", "list", "--db", dir + "/missing.sqlite"]).status != 0)
    }

    /// `fedroute gateway` as a process: refuses to start without a key secret, serves /health, and on
    /// SIGHUP swaps in a new router file (a broken one is refused and the current one keeps serving); on
    /// SIGTERM it exits 0 with every request it served in its database.
    @Test func gatewayReloadsItsRouterOnSIGHUP() async throws {
        let a = dir + "/a.safetensors", b = dir + "/b.safetensors", live = dir + "/live.safetensors"
        for (out, clusters) in [(a, "2"), (b, "3")] {
            let r = try cli.run(["train", "--router", "kmeans", "--data", data, "--clusters", clusters, "--no-cache", "--out", out])
            #expect(r.status == 0, "\(r.stderr)")
        }
        try FileManager.default.copyItem(atPath: a, toPath: live)
        let yaml = dir + "/gateway-models.yaml"
        let names = try RouterFile.load(path: a).router.models
        // Unreachable upstreams, given up quickly (AsyncHTTPClient retries a refused connection until the connect timeout).
        try ("gateway:\n  connect_timeout_seconds: 0.05\nmodels:\n"
            + names.map { "  - { name: \($0), base_url: \"http://127.0.0.1:9/v1\", price: { input_per_million: 1, output_per_million: 1 } }\n" }.joined())
            .write(toFile: yaml, atomically: true, encoding: .utf8)

        let noSecret = try cli.run(["gateway", "--router", live, "--models", yaml, "--port", "0", "--db", dir + "/g.sqlite"], environment: ["FEDROUTE_KEY_SECRET": ""])
        #expect(noSecret.status != 0 && noSecret.stderr.contains("FEDROUTE_KEY_SECRET") && noSecret.stderr.contains("--no-auth"), "\(noSecret.stderr)")

        let gateway = try cli.start(["gateway", "--router", live, "--models", yaml, "--port", "0", "--db", dir + "/g.sqlite", "--no-auth"], errorFile: dir + "/gateway.err")
        defer { gateway.stop() }
        let port = try await gateway.waitForPort()
        #expect(gateway.stderr.contains("WARNING: --no-auth"))
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        func fingerprint() async throws -> String? {
            let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
            return json?["router_fingerprint"] as? String
        }
        do {
            let first = try #require(try await fingerprint())
            try FileManager.default.removeItem(atPath: live)
            try FileManager.default.copyItem(atPath: b, toPath: live)
            kill(gateway.process.processIdentifier, SIGHUP)
            var second = first
            for _ in 0..<100 where second == first {
                try await Task.sleep(for: .milliseconds(100))
                second = try await fingerprint() ?? first
            }
            #expect(second != first)
            try Data("broken".utf8).write(to: URL(fileURLWithPath: live))
            kill(gateway.process.processIdentifier, SIGHUP)
            for _ in 0..<100 where !gateway.stderr.contains("reload refused") { try await Task.sleep(for: .milliseconds(100)) }
            #expect(gateway.stderr.contains("reload refused"))
            #expect(try await fingerprint() == second)
            // Requests (every upstream here is unreachable: 502s, logged as failed) right before
            // SIGTERM: their rows, written behind the responses, are all in the database afterwards.
            for i in 0..<20 {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"model": "auto", "messages": [{"role": "user", "content": "question \#(i)"}]}"#))
                #expect(try await http.execute(request, timeout: .seconds(30)).status.code == 502)
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        #expect(gateway.terminate() == 0, "\(gateway.stderr)")
        let rows = try await SQLiteGatewayStore(path: dir + "/g.sqlite", create: false).requests()
        #expect(rows.count == 20 && rows.allSatisfy { $0.outcome == .failed }, "\(rows.count) rows")
    }
}
