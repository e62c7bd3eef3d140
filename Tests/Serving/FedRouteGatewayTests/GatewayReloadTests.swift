import FedRouteGatewayStore
@testable import FedRouteGateway
import FedRouteRouters
import Foundation
import Synchronization
import Testing

/// Swapping the router under load: no request fails, in-flight ones finish on the router they started
/// with, a broken file is refused and the current router keeps serving.
@Suite struct GatewayReloadTests {
    typealias E2E = GatewayEndToEndTests

    final class Flag: Sendable {
        let value = Mutex(true)
        var isSet: Bool { value.withLock { $0 } }
        func clear() { value.withLock { $0 = false } }
    }

    /// Requests the load has had answered so far.
    final class Counter: Sendable {
        let value = Mutex(0)
        var count: Int { value.withLock { $0 } }
        func increment() { value.withLock { $0 += 1 } }

        /// Waits (polling) until `more` further requests were answered, so that every router phase
        /// serves traffic however slowly a loaded machine schedules the load (at most a minute).
        func waitFor(_ more: Int) async throws {
            let target = count + more
            let deadline = ContinuousClock.now + .seconds(60)
            while count < target, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    @Test func reloadsUnderLoadWithoutAFailedRequest() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("router.safetensors").path
        // Router A prefers strong at λ = 0; router B prefers cheap.
        let a = try E2E.router()
        var meansB = E2E.means
        meansB[2] = (0.99, 0.0002)
        let b = try E2E.router(means: meansB)
        try RouterFile.save(a, to: file)

        let secret = try KeySecret(String(repeating: "r", count: 40))
        try await E2E.withGateway(access: .keys(secret), routerFile: file) { env in
            let (_, user) = try await env.log.createKey(name: "load", policy: .init(), expiresAt: nil, secret: secret)
            let (_, admin) = try await env.log.createKey(name: "ops", policy: .init(admin: true), expiresAt: nil, secret: secret)
            let first = try await E2E.send(env, "/health", method: "GET").json?["router_fingerprint"]?.stringValue

            let running = Flag()
            let answered = Counter()
            let load = Task {
                try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            var seen: [(Int, String)] = []
                            while running.isSet {
                                let r = try await E2E.chat(env, model: "route:0", key: user)
                                seen.append((r.status, r.headers["x-fedroute-model"] ?? r.body))
                                answered.increment()
                            }
                            return seen
                        }
                    }
                    return try await group.reduce(into: [(Int, String)]()) { $0 += $1 }
                }
            }
            func reload() async throws -> E2E.Reply {
                try await answered.waitFor(4)
                return try await E2E.send(env, "/admin/reload", key: admin)
            }
            try RouterFile.save(b, to: file)
            let toB = try await reload()
            try Data("not a router".utf8).write(to: URL(fileURLWithPath: file))
            let broken = try await reload()
            try RouterFile.save(a, to: file)
            let backToA = try await reload()
            try await answered.waitFor(4)
            running.clear()
            let results = try await load.value

            #expect(toB.status == 200 && toB.json?["reloaded"] == .bool(true))
            #expect(broken.status == 422 && broken.json?["error"]?["code"]?.stringValue == "reload_refused")
            #expect(broken.json?["error"]?["message"]?.stringValue?.contains("router.safetensors") == true)
            #expect(backToA.status == 200)
            #expect(results.count >= 8)
            #expect(results.allSatisfy { $0.0 == 200 }, "\(results.filter { $0.0 != 200 }.prefix(3))")
            let models = Set(results.map(\.1))
            #expect(models == ["strong", "cheap"], "\(models)")
            let health = try await E2E.send(env, "/health", method: "GET").json
            #expect(health?["router_fingerprint"]?.stringValue == first && first != toB.json?["router_fingerprint"]?.stringValue)
            let metrics = try await E2E.send(env, "/metrics", method: "GET").body
            #expect(metrics.contains("fedroute_gateway_reload_failures_total 1"))
            #expect(metrics.contains(#"fedroute_gateway_router_loaded_timestamp_seconds{router="\#(first ?? "")""#))
            #expect(!metrics.contains(#"router="\#(toB.json?["router_fingerprint"]?.stringValue ?? "?")""#))
        }
    }
}
