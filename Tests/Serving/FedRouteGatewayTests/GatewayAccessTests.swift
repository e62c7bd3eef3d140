import AsyncHTTPClient
import FedRouteFakeUpstream
import FedRouteGatewayStore
@testable import FedRouteGateway
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Virtual keys in front of the gateway of `GatewayEndToEndTests` (same upstreams and router).
@Suite struct GatewayAccessTests {
    typealias E2E = GatewayEndToEndTests
    static let secret = try! KeySecret(String(repeating: "gateway-test-secret-", count: 3))

    static func key(_ env: E2E.Environment, _ name: String, _ policy: VirtualKey.Policy = .init()) async throws -> (VirtualKey, String) {
        try await env.log.createKey(name: name, policy: policy, expiresAt: nil, secret: secret)
    }

    @Test func everyRouteButHealthAndMetricsNeedsAnActiveKey() async throws {
        try await E2E.withGateway(access: .keys(Self.secret)) { env in
            let (_, good) = try await Self.key(env, "team-a")
            let (revokedRecord, revoked) = try await Self.key(env, "gone")
            _ = try await env.log.revoke(keyID: revokedRecord.id, at: Date())
            // An expired key (made directly in the store: `createKey` refuses past expiry).
            let expired = KeySecret.generateKey()
            try await env.log.insert(key: VirtualKey(
                id: "key-expired", name: "old", hash: Self.secret.hash(expired), hint: KeySecret.hint(expired),
                createdAt: Date().addingTimeInterval(-7200), expiresAt: Date().addingTimeInterval(-3600)))

            for (key, fragment) in [(nil, "no API key"), ("sk-fr-made-up", "not valid"), (revoked, "revoked"), (expired, "expired")] as [(String?, String)] {
                let r = try await E2E.chat(env, model: "auto", key: key)
                #expect(r.status == 401, "\(fragment)")
                #expect(r.json?["error"]?["code"]?.stringValue == "invalid_api_key")
                #expect(r.json?["error"]?["message"]?.stringValue?.contains(fragment) == true, "\(r.body)")
                #expect(r.headers["www-authenticate"] == "Bearer")
                #expect(try await E2E.send(env, "/v1/models", method: "GET", key: key).status == 401)
                #expect(try await E2E.send(env, "/v1/feedback", body: #"{"request_id": "x", "score": 1}"#, key: key).status == 401)
            }
            // A header that is not 'Bearer <key>'.
            var basic = try await E2E.send(env, "/v1/models", method: "GET")
            #expect(basic.status == 401)
            basic = try await E2E.send(env, "/admin/reload")
            #expect(basic.status == 401)
            // Nothing unauthenticated reached an upstream or the log.
            let callsA = await env.upstreamA.calls(), callsB = await env.upstreamB.calls()
            #expect(callsA.isEmpty && callsB.isEmpty)
            #expect(try await env.stored().requests().isEmpty)

            #expect(try await E2E.send(env, "/health", method: "GET").json?["authentication"] == .string("keys"))
            #expect(try await E2E.send(env, "/metrics", method: "GET").status == 200)
            let ok = try await E2E.chat(env, model: "route:0", key: good)
            #expect(ok.status == 200 && ok.headers["x-fedroute-model"] == "strong")
            #expect(try await E2E.send(env, "/v1/models", method: "GET", key: good).status == 200)
        }
    }

    @Test func keysAreHeldToTheirModelsLambdaRangeAndOwnRequests() async throws {
        try await E2E.withGateway(access: .keys(Self.secret)) { env in
            let (restrictedRecord, restricted) = try await Self.key(
                env, "cheap-only", .init(models: ["cheap", "portal"], lambdaMin: 50, lambdaMax: 2000, defaultLambda: 100))
            let (_, other) = try await Self.key(env, "other")
            let (_, admin) = try await Self.key(env, "ops", .init(admin: true))

            let named = try await E2E.chat(env, model: "strong", key: restricted)
            #expect(named.status == 403 && named.json?["error"]?["code"]?.stringValue == "model_not_allowed")
            let low = try await E2E.chat(env, model: "route:0", key: restricted)
            #expect(low.status == 403 && low.json?["error"]?["code"]?.stringValue == "lambda_not_allowed")
            // auto takes the key's λ (100): strong is not allowed, broken is not allowed, cheap answers.
            let auto = try await E2E.chat(env, model: "auto", key: restricted)
            #expect(auto.status == 200 && auto.headers["x-fedroute-model"] == "cheap" && auto.headers["x-fedroute-lambda"] == "100.0")
            #expect(auto.headers["x-fedroute-fallback-from"] == nil)
            let id = try #require(auto.headers["x-fedroute-request-id"])

            // The request is recorded with its key, and its cost is the key's spend.
            let row = try #require(try await env.stored().request(id: id))
            #expect(row.keyID == restrictedRecord.id)
            let spent = try #require(try await env.stored().key(hash: restrictedRecord.hash)?.spendUSD)
            #expect(abs(spent - (row.costUSD ?? -1)) < 1e-15 && spent > 0)

            // Only the key that made a request may rate it.
            let stranger = try await E2E.send(env, "/v1/feedback", body: #"{"request_id": "\#(id)", "score": 1}"#, key: other)
            #expect(stranger.status == 404)
            let owner = try await E2E.send(env, "/v1/feedback", body: #"{"request_id": "\#(id)", "score": 1}"#, key: restricted)
            #expect(owner.status == 200)

            // Admin routes need an admin key (this gateway was built in memory, so there is nothing to reload).
            #expect(try await E2E.send(env, "/admin/reload", key: restricted).status == 403)
            let reload = try await E2E.send(env, "/admin/reload", key: admin)
            #expect(reload.status == 409 && reload.json?["error"]?["code"]?.stringValue == "reload_unavailable")
        }
    }

    /// A key whose budget (0.0001 USD) is below one routed request's predicted cost (cheap: 0.0002):
    /// the reservation of an admitted request holds every concurrent one back, so one request at a
    /// time runs, and they stop once spend reaches the budget. cheap's answer costs 20 × 1 + 5 × 2 =
    /// 30 micro-USD, so exactly 4 are answered (at spend 0, 30, 60 and 90), however the 10 concurrent
    /// and the later ones interleave.
    @Test func budgetsHoldAgainstConcurrentRequests() async throws {
        try await E2E.withGateway(access: .keys(Self.secret)) { env in
            let (record, key) = try await Self.key(env, "tight", .init(budgetUSD: 0.0001, models: ["cheap"]))
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 { group.addTask { try await E2E.chat(env, model: "route:100", key: key).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 } && statuses.contains(200) && statuses.contains(429), "\(statuses)")
            var answered = statuses.filter { $0 == 200 }.count
            while true {
                let r = try await E2E.chat(env, model: "route:100", key: key)
                guard r.status == 200 else {
                    #expect(r.status == 429 && r.json?["error"]?["code"]?.stringValue == "budget_exceeded")
                    #expect(r.json?["error"]?["type"]?.stringValue == "insufficient_quota")
                    break
                }
                answered += 1
                #expect(answered <= 4)
            }
            #expect(answered == 4)
            let spend = try #require(try await env.stored().key(hash: record.hash)?.spendUSD)
            // Overspend is at most the last admitted request's cost.
            #expect(spend >= 0.0001 && spend < 0.0001 + 0.00003 + 1e-12, "\(spend)")
        }
    }

    @Test func requestAndTokenRatesAreLimitedPerKey() async throws {
        try await E2E.withGateway(access: .keys(Self.secret)) { env in
            let (_, slow) = try await Self.key(env, "rpm", .init(rpm: 3))
            for _ in 0..<3 { #expect(try await E2E.chat(env, model: "route:100", key: slow).status == 200) }
            let limited = try await E2E.chat(env, model: "route:100", key: slow)
            #expect(limited.status == 429 && limited.json?["error"]?["code"]?.stringValue == "rate_limit_exceeded")
            #expect(limited.headers["retry-after"].flatMap(Int.init).map { (1...20).contains($0) } == true)

            // 30 tokens per minute; cheap reports 25 per answer: two answers fit, the third waits.
            let (_, tokens) = try await Self.key(env, "tpm", .init(tpm: 30))
            #expect(try await E2E.chat(env, model: "route:100", key: tokens).status == 200)
            #expect(try await E2E.chat(env, model: "route:100", key: tokens).status == 200)
            let third = try await E2E.chat(env, model: "route:100", key: tokens)
            #expect(third.status == 429 && third.json?["error"]?["message"]?.stringValue?.contains("tokens per minute") == true)
            // Another key is not affected.
            let (_, free) = try await Self.key(env, "free")
            #expect(try await E2E.chat(env, model: "route:100", key: free).status == 200)
            let metrics = try await E2E.send(env, "/metrics", method: "GET")
            #expect(metrics.body.contains(#"fedroute_gateway_limited_total{limit="rate"} 2"#))
        }
    }
}

/// `x-fedroute-max-cost`: models predicted to cost more than the request allows are not tried.
@Suite struct GatewayMaxCostTests {
    typealias E2E = GatewayEndToEndTests

    static func chat(_ env: E2E.Environment, model: String, maxCost: String, key: String) async throws -> E2E.Reply {
        var request = HTTPClientRequest(url: env.gateway + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "x-fedroute-max-cost", value: maxCost)
        request.body = .bytes(ByteBuffer(string: #"{"model": "\#(model)", "messages": [{"role": "user", "content": "hi"}]}"#))
        let response = try await env.http.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        var headers: [String: String] = [:]
        for h in response.headers { headers[h.name.lowercased()] = h.value }
        return E2E.Reply(status: Int(response.status.code), headers: headers, body: body)
    }

    @Test func aCostCeilingRemovesDearModels() async throws {
        let secret = try KeySecret(String(repeating: "m", count: 40))
        try await E2E.withGateway(access: .keys(secret)) { env in
            let (_, all) = try await env.log.createKey(name: "all", policy: .init(), expiresAt: nil, secret: secret)
            let (_, two) = try await env.log.createKey(name: "two", policy: .init(models: ["strong", "cheap"]), expiresAt: nil, secret: secret)
            // λ = 0 ranks strong (0.01 USD), portal (0.009), broken (0.001), cheap (0.0002), offline (0); under a
            // 0.005 ceiling strong and portal are out, broken fails and cheap answers.
            let r = try await Self.chat(env, model: "route:0", maxCost: "0.005", key: all)
            #expect(r.status == 200 && r.headers["x-fedroute-model"] == "cheap" && r.headers["x-fedroute-fallback-from"] == "broken", "\(r.headers)")
            // A ceiling of 0 leaves only offline (predicted free), which is unreachable.
            let onlyFree = try await Self.chat(env, model: "route:0", maxCost: "0", key: all)
            #expect(onlyFree.status == 502 && onlyFree.json?["error"]?["message"]?.stringValue?.contains("offline") == true)
            // No model this key may use is that cheap.
            let tooLow = try await Self.chat(env, model: "route:0", maxCost: "0.00000001", key: two)
            #expect(tooLow.status == 400 && tooLow.json?["error"]?["code"]?.stringValue == "max_cost_exceeded")
            // A named model is checked against its price for the prompt and max_tokens (256 by default):
            // strong costs 10 + 30 USD per million tokens, so 256 completion tokens alone exceed 0.001.
            let named = try await Self.chat(env, model: "strong", maxCost: "0.001", key: all)
            #expect(named.status == 400 && named.json?["error"]?["code"]?.stringValue == "max_cost_exceeded")
            #expect(try await Self.chat(env, model: "strong", maxCost: "0.1", key: all).status == 200)
            for bad in ["abc", "-1", "inf", "nan"] {
                let r = try await Self.chat(env, model: "auto", maxCost: bad, key: all)
                #expect(r.status == 400 && r.json?["error"]?["code"]?.stringValue == "invalid_max_cost", "\(bad)")
            }
        }
    }
}
