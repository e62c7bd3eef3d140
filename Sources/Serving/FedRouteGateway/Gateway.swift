import AsyncHTTPClient
import FedRouteData
import FedRouteFeatures
import FedRouteGatewayStore
import FedRouteHTTPRunner
import FedRouteRouters
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import NIOPosix
import Tracing

/// The router's choice for one request: the models to try, best first.
public struct RoutingDecision: Sendable, Equatable {
    public struct Candidate: Sendable, Equatable {
        public var model: String
        public var predictedScore: Double?
        public var predictedCost: Double?
        /// False where the router has no estimate for this query (tried only after every estimated model).
        public var available: Bool
    }

    /// λ used; nil when the client named a model.
    public var lambda: Double?
    public var candidates: [Candidate]
}

/// The routing gateway: checks who calls, chooses a model for each chat request, calls its upstream
/// with fallback, and records every request with its cost against the caller's key. `GatewayRoutes`
/// puts it behind HTTP.
public struct Gateway: Sendable {
    let slot: RoutingSlot
    public let store: any GatewayStore
    public let access: GatewayAccess
    public let metrics: GatewayMetrics
    let upstream: UpstreamClient
    let logger: Logger
    let limiter = RateLimiter()
    let keyCache = KeyCache()
    /// Builds a fresh routing from the files (nil: built in memory, nothing to reload).
    let loader: (@Sendable () throws -> GatewayRouting)?
    /// Records a span per request (nil: no tracing); see `RequestTrace`.
    let tracer: (any Tracer)?
    /// Writes finished requests behind their responses.
    let requestLog: RequestLogWriter

    /// Largest non-streamed upstream answer read.
    static let maxAnswerBytes = 32 << 20

    /// - Parameters:
    ///   - routing: the router and models.yaml to start with.
    ///   - loader: how `reload()` builds the next routing (re-reading the files); nil when there are none.
    public init(
        routing: GatewayRouting, upstream: UpstreamClient, store: any GatewayStore, access: GatewayAccess = .open,
        metrics: GatewayMetrics = GatewayMetrics(), logger: Logger = Logger(label: "fedroute.gateway"),
        loader: (@Sendable () throws -> GatewayRouting)? = nil, tracer: (any Tracer)? = nil
    ) {
        slot = RoutingSlot(routing)
        self.tracer = tracer
        self.upstream = upstream
        self.store = store
        self.access = access
        self.metrics = metrics
        self.logger = logger
        self.loader = loader
        requestLog = RequestLogWriter(store: store, logger: logger, metrics: metrics)
        metrics.loaded(routing.provenance, previous: nil)
    }

    /// A gateway over an in-memory router and configuration (tests, benchmarks, embedding).
    public init(
        pipeline: RoutingPipeline, configuration: GatewayConfiguration, apiKeys: [String: String] = [:], upstream: UpstreamClient,
        store: any GatewayStore, access: GatewayAccess = .open, metrics: GatewayMetrics = GatewayMetrics(),
        logger: Logger = Logger(label: "fedroute.gateway"), routingPool: NIOThreadPool = .singleton, tracer: (any Tracer)? = nil
    ) throws {
        let routing = try GatewayRouting(pipeline: pipeline, configuration: configuration, apiKeys: apiKeys, routingPool: routingPool, logger: logger)
        self.init(routing: routing, upstream: upstream, store: store, access: access, metrics: metrics, logger: logger, tracer: tracer)
    }

    /// The routing new requests start with.
    public var routing: GatewayRouting { slot.current }
    /// Router models that have an endpoint, in router order (of the current routing).
    public var routableModels: [String] { routing.routableModels }

    // MARK: Routing

    /// Which models to try for `request`, best first, with the caller's policy applied: a key's λ
    /// default and range, and the models it may use.
    /// - Parameter maxCost: the request's cost ceiling (`x-fedroute-max-cost`, USD): models whose
    ///   predicted cost exceeds it are not tried.
    public func decide(_ request: ChatRequest, caller: Caller = .anonymous, maxCost: Double? = nil) async throws -> (decision: RoutingDecision, text: String) {
        try await decide(request, caller: caller, maxCost: maxCost, routing: routing)
    }

    func decide(
        _ request: ChatRequest, caller: Caller, maxCost: Double?, routing: GatewayRouting, trace: RequestTrace? = nil
    ) async throws -> (decision: RoutingDecision, text: String) {
        let settings = routing.configuration.gateway
        let text = try request.routingText(settings.context, maxCharacters: settings.maxRoutingCharacters)
        let policy = caller.policy
        let lambda: Double
        switch request.selection {
        case .named(let model):
            guard routing.endpoints[model] != nil else {
                throw APIError(status: 404, message: "the model '\(model)' does not exist; use 'auto', 'route:<λ>' or one of GET /v1/models",
                               param: "model", code: "model_not_found")
            }
            if let policy, !policy.allows(model: model) {
                throw APIError(status: 403, message: "this key may not use the model '\(model)'", param: "model", code: "model_not_allowed")
            }
            let decision = RoutingDecision(lambda: nil, candidates: [.init(model: model, predictedScore: nil, predictedCost: nil, available: true)])
            if let maxCost {
                let estimate = Self.estimatedCost(request: request, decision: decision, routing: routing)
                guard estimate <= maxCost else {
                    throw APIError(status: 400, message: "the model '\(model)' is estimated to cost \(estimate) USD for this request, above x-fedroute-max-cost \(maxCost)",
                                   param: GatewayHeader.maxCost.rawName, code: "max_cost_exceeded")
                }
            }
            return (decision, text)
        case .auto:
            lambda = policy.map { $0.clamp(lambda: $0.defaultLambda ?? settings.lambda) } ?? settings.lambda
        case .route(let l):
            if let policy, !policy.allows(lambda: l) {
                throw APIError(status: 403, message: "this key may route with λ in [\(policy.lambdaMin ?? 0), \(policy.lambdaMax ?? .infinity)] only, not \(l)",
                               param: "model", code: "lambda_not_allowed")
            }
            lambda = l
        }
        let started = ContinuousClock.now
        let routeSpan = trace?.child("fedroute.route")
        routeSpan?.set("fedroute.routing_characters", text.count)
        defer { routeSpan?.end() }
        let predictions = try await routing.batcher.predict(text)
        metrics.routing(ContinuousClock.now - started)
        let candidates = predictions.ranked(row: 0, lambda: lambda).compactMap { j -> RoutingDecision.Candidate? in
            let model = predictions.models[j]
            guard routing.endpoints[model] != nil, policy?.allows(model: model) ?? true else { return nil }
            return .init(model: model, predictedScore: predictions.score[j], predictedCost: predictions.cost[j], available: predictions.available[j])
        }
        guard !candidates.isEmpty else {
            throw APIError(status: 403, message: "none of the models this key may use can be routed to", param: "model", code: "model_not_allowed")
        }
        if let maxCost {
            let affordable = candidates.filter { ($0.predictedCost ?? 0) <= maxCost }
            guard !affordable.isEmpty else {
                let cheapest = candidates.compactMap(\.predictedCost).min() ?? 0
                throw APIError(status: 400, message: "no model is predicted to cost at most x-fedroute-max-cost \(maxCost) USD (the cheapest: \(cheapest))",
                               param: GatewayHeader.maxCost.rawName, code: "max_cost_exceeded")
            }
            return (RoutingDecision(lambda: lambda, candidates: affordable), text)
        }
        return (RoutingDecision(lambda: lambda, candidates: candidates), text)
    }

    // MARK: Chat completions

    /// What a request was admitted with, settled when it ends.
    struct Admission: Sendable {
        var keyID: String?
        var policy: VirtualKey.Policy?
        var estimatedTokens: Int
        /// Whether a budget reservation was recorded.
        var reserved: Bool
    }

    /// Serves one `POST /v1/chat/completions` body from an authenticated caller.
    /// - Parameters:
    ///   - maxCost: the `x-fedroute-max-cost` header's value, if sent (checked here).
    ///   - headers: the request's headers, to continue a caller's trace (`traceparent`).
    public func chatCompletion(body: ByteBuffer, caller: Caller = .anonymous, maxCost: String? = nil, headers: HTTPFields? = nil) async -> Response {
        let id = "frq-" + UUID().uuidString.lowercased()
        let trace = RequestTrace(tracer: tracer, name: "POST /v1/chat/completions", headers: headers)
        trace.set("fedroute.request_id", id)
        trace.set("fedroute.key_id", caller.keyID)
        let response = await chatCompletion(body: body, caller: caller, maxCost: maxCost, id: id, trace: trace)
        trace.set("http.response.status_code", Int(response.status.code))
        // A stream's span ends with the stream (in `finish`).
        if response.headers[.contentType] != "text/event-stream" { trace.end() }
        return response
    }

    func chatCompletion(body: ByteBuffer, caller: Caller, maxCost: String?, id: String, trace: RequestTrace) async -> Response {
        let received = ContinuousClock.now
        let routing = self.routing
        let request: ChatRequest
        let decision: RoutingDecision
        let text: String
        var admission: Admission
        do {
            let ceiling = try Self.parseMaxCost(maxCost)
            request = try ChatRequest(json: Data(buffer: body))
            admission = try admitRate(request, caller: caller)
            do {
                (decision, text) = try await decide(request, caller: caller, maxCost: ceiling, routing: routing, trace: trace)
                try await reserveBudget(&admission, requestID: id, request: request, decision: decision, routing: routing)
            } catch {
                await release(admission, requestID: id)
                throw error
            }
        } catch let e as APIError {
            trace.fail(e.message)
            trace.set("fedroute.outcome", "rejected")
            metrics.request(model: nil, outcome: "rejected", duration: ContinuousClock.now - received)
            logger.info("rejected request", metadata: [
                "request_id": "\(id)", "status": "\(e.status)", "key": "\(caller.keyID ?? "-")", "reason": "\(LogText.escape(e.message))",
            ])
            return Self.errorResponse(e, requestID: id)
        } catch {
            trace.fail("routing failed: \(error)")
            metrics.request(model: nil, outcome: "failed", duration: ContinuousClock.now - received)
            logger.error("routing failed", metadata: ["request_id": "\(id)", "error": "\(LogText.escape(String(describing: error)))"])
            return Self.errorResponse(APIError(status: 500, message: "routing failed: \(error)", type: "server_error"), requestID: id)
        }

        var entry = RoutedRequest(
            id: id, createdAt: Date(), query: text, requestedModel: request.model, lambda: decision.lambda, chosenModel: nil,
            predictedScore: nil, predictedCost: nil, attempts: [], stream: request.stream, outcome: .failed,
            promptTokens: nil, completionTokens: nil, tokensEstimated: false, costUSD: nil, latencyMilliseconds: 0, keyID: caller.keyID)
        let promptBytes = request.promptBytes
        let settings = routing.configuration.gateway
        trace.set("fedroute.requested_model", request.model)
        trace.set("fedroute.lambda", decision.lambda)
        trace.set("fedroute.candidates", decision.candidates.prefix(settings.maxAttempts).map(\.model).joined(separator: ","))

        for candidate in decision.candidates.prefix(settings.maxAttempts) {
            let endpoint = routing.endpoints[candidate.model]!
            let attempt = trace.child("fedroute.upstream", kind: .client)
            attempt.set("fedroute.model", candidate.model)
            attempt.set("server.address", endpoint.chatCompletionsURL)
            defer { attempt.end() }
            do {
                let response = try await upstream.send(
                    request.upstreamBody(model: endpoint.upstreamModel ?? endpoint.name), to: endpoint, apiKey: routing.apiKeys[endpoint.name],
                    timeoutSeconds: settings.timeoutSeconds, stream: request.stream)
                var answer = ByteBuffer()
                var summary: AnswerSummary?
                if request.stream {
                    let type = response.headers.first(name: "content-type")?.lowercased() ?? ""
                    guard type.contains("text/event-stream") else {
                        throw UpstreamError.invalidAnswer("asked for an event stream, got '\(type.isEmpty ? "no content type" : type)'")
                    }
                } else {
                    do { answer = try await response.body.collect(upTo: Self.maxAnswerBytes) } catch {
                        // Nothing has reached the client yet, so the next model can still answer.
                        throw UpstreamError.transport("the answer broke off: \(error)")
                    }
                    // A 200 that is not a JSON object (an HTML error page, a proxy's text) is a failure, not an answer.
                    summary = try? AnswerSummary.decode(Data(buffer: answer))
                    guard summary != nil else {
                        throw UpstreamError.invalidAnswer("HTTP \(response.status.code) with a body that is not a JSON object (\(answer.readableBytes) bytes)")
                    }
                }
                let headers = responseHeaders(id: id, decision: decision, chosen: candidate, failed: entry.attempts)
                entry.chosenModel = candidate.model
                entry.predictedScore = candidate.predictedScore
                entry.predictedCost = candidate.predictedCost
                entry.attempts.append(UpstreamAttempt(model: candidate.model))
                if entry.attempts.count > 1 { metrics.fallback() }
                trace.set("fedroute.model", candidate.model)
                trace.set("fedroute.predicted_score", candidate.predictedScore)
                trace.set("fedroute.predicted_cost", candidate.predictedCost)
                trace.set("fedroute.fallbacks", entry.attempts.count - 1)
                if entry.attempts.count > 1 { trace.set("fedroute.fallback_from", entry.attempts.dropLast().map(\.model).joined(separator: ",")) }
                if request.stream {
                    return streamingResponse(
                        response, request: request, entry: entry, endpoint: endpoint, admission: admission, headers: headers, received: received, trace: trace)
                }
                let usage = TokenUsage.of(summary: summary, bodyBytes: answer.readableBytes, promptBytes: promptBytes)
                await finish(&entry, endpoint: endpoint, usage: usage, outcome: .answered, admission: admission, received: received, trace: trace)
                var h = headers
                h[.contentType] = "application/json"
                return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: answer))
            } catch {
                let reason = (error as? UpstreamError)?.description ?? String(describing: error)
                entry.attempts.append(UpstreamAttempt(model: candidate.model, error: reason))
                attempt.fail(reason)
                metrics.upstreamFailure(model: candidate.model)
                logger.warning("upstream failed", metadata: ["request_id": "\(id)", "model": "\(candidate.model)", "error": "\(LogText.escape(reason))"])
            }
        }
        entry.latencyMilliseconds = Self.milliseconds(ContinuousClock.now - received)
        await record(entry, admission: admission, costUSD: 0, tokens: 0)
        metrics.request(model: nil, outcome: "failed", duration: ContinuousClock.now - received)
        let tried = entry.attempts.map { "\($0.model) (\($0.error ?? "?"))" }.joined(separator: "; ")
        trace.set("fedroute.outcome", "failed")
        trace.set("fedroute.fallbacks", entry.attempts.count)
        trace.fail("every model tried failed")
        return Self.errorResponse(APIError(status: 502, message: "every model tried failed: \(tried)", type: "upstream_error", code: "upstream_failed"), requestID: id)
    }

    /// The `x-fedroute-max-cost` header as USD, or 400.
    static func parseMaxCost(_ header: String?) throws -> Double? {
        guard let header else { return nil }
        guard let v = Double(header.trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0 else {
            throw APIError(status: 400, message: "x-fedroute-max-cost must be a finite number of USD ≥ 0", param: GatewayHeader.maxCost.rawName, code: "invalid_max_cost")
        }
        return v
    }

    /// RPM and TPM of the caller's key: takes one request and the prompt's estimated tokens, or 429.
    func admitRate(_ request: ChatRequest, caller: Caller) throws -> Admission {
        let estimated = TokenUsage.estimate(bytes: request.promptBytes)
        var admission = Admission(keyID: caller.keyID, policy: caller.policy, estimatedTokens: estimated, reserved: false)
        guard let keyID = caller.keyID, let policy = caller.policy, policy.rpm != nil || policy.tpm != nil else {
            admission.estimatedTokens = 0
            return admission
        }
        do { try limiter.admit(keyID: keyID, rpm: policy.rpm, tpm: policy.tpm, estimatedTokens: estimated) } catch {
            metrics.limited("rate")
            throw APIError(status: 429, message: "this key is over its limit of \(error.limit); retry in \(Int(error.retryAfterSeconds.rounded(.up))) s",
                           type: "rate_limit_error", code: "rate_limit_exceeded", retryAfterSeconds: max(1, Int(error.retryAfterSeconds.rounded(.up))))
        }
        return admission
    }

    /// The caller's budget: reserves the request's predicted cost in the store (shared by every
    /// replica), or 429 when spend and the reservations of requests in flight have reached the budget.
    func reserveBudget(_ admission: inout Admission, requestID: String, request: ChatRequest, decision: RoutingDecision, routing: GatewayRouting) async throws {
        guard let keyID = admission.keyID, let budget = admission.policy?.budgetUSD else { return }
        let settings = routing.configuration.gateway
        let estimate = Self.estimatedCost(request: request, decision: decision, routing: routing)
        // A replica that dies mid-request leaves its reservation behind; it stops counting after the
        // longest the request could have taken.
        let expires = Date().addingTimeInterval(settings.timeoutSeconds * Double(settings.maxAttempts) + 60)
        let admitted: Bool
        do { admitted = try await store.reserve(keyID: keyID, requestID: requestID, usd: estimate, budgetUSD: budget, expiresAt: expires, now: Date()) } catch {
            logger.error("budget reservation failed", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
            throw APIError(status: 503, message: "the key store cannot be written; try again", type: "server_error", code: "key_store_unavailable")
        }
        guard admitted else {
            metrics.limited("budget")
            throw APIError(status: 429, message: "this key has spent its budget of \(budget) USD", type: "insufficient_quota", code: "budget_exceeded")
        }
        admission.reserved = true
    }

    /// The first candidate's predicted cost, or for a named model its price for the prompt and
    /// `max_tokens` (or 256) completion tokens.
    static func estimatedCost(request: ChatRequest, decision: RoutingDecision, routing: GatewayRouting) -> Double {
        if let c = decision.candidates.first?.predictedCost, c.isFinite, c >= 0 { return c }
        guard let model = decision.candidates.first?.model, let endpoint = routing.endpoints[model] else { return 0 }
        let completion = (request.body["max_completion_tokens"] ?? request.body["max_tokens"])?.intValue.map { max(0, min($0, 1 << 20)) } ?? 256
        return endpoint.price.cost(inputTokens: TokenUsage.estimate(bytes: request.promptBytes), outputTokens: completion)
    }

    /// Ends a request rejected after admission (no upstream tried, nothing recorded): drops its
    /// reservation and returns its estimated tokens.
    func release(_ admission: Admission, requestID: String) async {
        guard let keyID = admission.keyID else { return }
        settleRate(admission, keyID: keyID, tokens: 0)
        guard admission.reserved else { return }
        do { try await store.settle(keyID: keyID, requestID: requestID, usd: 0) } catch {
            logger.error("budget reservation not released", metadata: ["request_id": "\(requestID)", "key": "\(keyID)", "error": "\(error)"])
        }
    }

    func settleRate(_ admission: Admission, keyID: String, tokens: Int) {
        if admission.policy?.tpm != nil {
            limiter.settle(keyID: keyID, tpm: admission.policy?.tpm, estimatedTokens: admission.estimatedTokens, actualTokens: tokens)
        }
    }

    /// Forwards an upstream event stream, reading usage as it passes, and records the request at its end.
    func streamingResponse(
        _ response: HTTPClientResponse, request: ChatRequest, entry: RoutedRequest, endpoint: ModelEndpoint, admission: Admission,
        headers: HTTPFields, received: ContinuousClock.Instant, trace: RequestTrace
    ) -> Response {
        var h = headers
        h[.contentType] = "text/event-stream"
        h[.cacheControl] = "no-cache"
        let promptBytes = request.promptBytes
        let body = ResponseBody { writer in
            var scanner = SSEScanner(clientWantsUsage: request.includeUsage)
            var entry = entry
            var outcome = RequestOutcome.answered
            var clientGone = false
            do {
                for try await chunk in response.body {
                    let out = scanner.feed(chunk.readableBytesView)
                    if !out.isEmpty {
                        do { try await writer.write(ByteBuffer(bytes: out)) } catch { clientGone = true; break }
                    }
                }
                let rest = scanner.finish()
                if !clientGone, !rest.isEmpty { try? await writer.write(ByteBuffer(bytes: rest)) }
                if clientGone || !scanner.sawDone || scanner.upstreamError != nil { outcome = .interrupted }
            } catch {
                outcome = .interrupted
                let e = APIError(status: 502, message: "the upstream stream of '\(endpoint.name)' broke off: \(error)", type: "upstream_error")
                try? await writer.write(ByteBuffer(bytes: Array("data: ".utf8) + Array(e.body.encoded()) + Array("\n\n".utf8)))
                entry.attempts[entry.attempts.count - 1].error = "stream broke off: \(error)"
            }
            if outcome == .interrupted, entry.attempts[entry.attempts.count - 1].error == nil {
                entry.attempts[entry.attempts.count - 1].error = clientGone ? "client disconnected" : (scanner.upstreamError.map { "upstream error event: \($0)" } ?? "stream ended without [DONE]")
            }
            await finish(
                &entry, endpoint: endpoint, usage: scanner.tokenUsage(promptBytes: promptBytes), outcome: outcome, admission: admission, received: received, trace: trace)
            trace.end()
            // Ends the response (a no-op for a client that already went away).
            try? await writer.finish(nil)
        }
        return Response(status: .ok, headers: h, body: body)
    }

    /// Prices, records, charges to the caller's key and counts an answered (or interrupted) request.
    func finish(
        _ entry: inout RoutedRequest, endpoint: ModelEndpoint, usage: TokenUsage, outcome: RequestOutcome, admission: Admission, received: ContinuousClock.Instant,
        trace: RequestTrace
    ) async {
        let cost = endpoint.price.cost(inputTokens: usage.promptTokens, outputTokens: usage.completionTokens)
        entry.outcome = outcome
        entry.promptTokens = usage.promptTokens
        entry.completionTokens = usage.completionTokens
        entry.tokensEstimated = usage.estimated
        entry.costUSD = cost
        let elapsed = ContinuousClock.now - received
        entry.latencyMilliseconds = Self.milliseconds(elapsed)
        await record(entry, admission: admission, costUSD: cost, tokens: usage.promptTokens + usage.completionTokens)
        trace.set("fedroute.outcome", outcome.rawValue)
        trace.set("fedroute.cost_usd", cost)
        trace.set("fedroute.prompt_tokens", usage.promptTokens)
        trace.set("fedroute.completion_tokens", usage.completionTokens)
        if outcome != .answered { trace.fail("the stream was \(outcome.rawValue)") }
        metrics.answer(model: endpoint.name, usage: usage, costUSD: cost)
        metrics.request(model: endpoint.name, outcome: outcome.rawValue, duration: elapsed)
        logger.info("routed", metadata: [
            "request_id": "\(entry.id)", "model": "\(endpoint.name)", "outcome": "\(outcome.rawValue)",
            "attempts": "\(entry.attempts.count)", "cost_usd": "\(cost)", "ms": "\(Int(entry.latencyMilliseconds))",
        ])
    }

    /// Records a finished request and charges its key (spend, reservation, tokens) in one store
    /// transaction: behind the response (`RequestLogWriter`), except for a request that holds a budget
    /// reservation, which is settled before its response so that the key's next admission, on any
    /// replica, sees its exact spend.
    func record(_ entry: RoutedRequest, admission: Admission, costUSD: Double, tokens: Int) async {
        let charge = admission.keyID.map { Charge(keyID: $0, usd: costUSD, releasesReservation: admission.reserved) }
        if let keyID = admission.keyID { settleRate(admission, keyID: keyID, tokens: tokens) }
        if admission.reserved {
            await requestLog.recordNow(entry, charging: charge)
        } else {
            await requestLog.enqueue(entry, charging: charge)
        }
    }

    /// Waits until every request finished so far is in the store (their rows are written behind the
    /// responses, milliseconds later).
    public func flushRequestLog() async {
        await requestLog.flush()
    }

    func responseHeaders(id: String, decision: RoutingDecision, chosen: RoutingDecision.Candidate, failed: [UpstreamAttempt]) -> HTTPFields {
        var h = HTTPFields()
        h[GatewayHeader.requestID] = id
        h[GatewayHeader.model] = chosen.model
        if let lambda = decision.lambda { h[GatewayHeader.lambda] = String(lambda) }
        if let s = chosen.predictedScore { h[GatewayHeader.predictedScore] = String(format: "%.6f", s) }
        if let c = chosen.predictedCost { h[GatewayHeader.predictedCost] = String(format: "%.6e", c) }
        if !failed.isEmpty { h[GatewayHeader.fallbackFrom] = failed.map(\.model).joined(separator: ",") }
        return h
    }

    // MARK: Feedback

    /// Serves one `POST /v1/feedback` body: `{"request_id": "frq-…", "score": 0.0…1.0}`. With keys on,
    /// only the key that made the request may rate it.
    public func feedback(body: ByteBuffer, caller: Caller = .anonymous) async -> Response {
        do {
            guard case .object(let o)? = try? JSONValue.decode(Data(buffer: body)) else {
                throw APIError.invalid("the request body must be a JSON object")
            }
            guard let id = o["request_id"]?.stringValue else { throw APIError.invalid("'request_id' (string) is required", param: "request_id") }
            let score: Double
            switch o["score"] {
            case .integer(let i)?: score = Double(i)
            case .number(let d)?: score = d
            default: throw APIError.invalid("'score' (number in [0, 1]) is required", param: "score")
            }
            let row: RoutedRequest
            do { row = try await attachFeedback(requestID: id, keyID: caller.keyID, score: score) } catch let e as FeedbackError {
                switch e {
                case .invalidScore: throw APIError.invalid(e.description, param: "score")
                case .unknownRequest: throw APIError(status: 404, message: e.description, param: "request_id", code: "request_not_found")
                case .notAnswered: throw APIError(status: 409, message: e.description, param: "request_id", code: "request_not_answered")
                }
            }
            metrics.feedback()
            let reply: JSONValue = .object([
                "request_id": .string(row.id), "model": row.chosenModel.map(JSONValue.string) ?? .null, "score": .number(score),
            ])
            return Self.jsonResponse(reply)
        } catch let e as APIError {
            return Self.errorResponse(e, requestID: nil)
        } catch {
            logger.error("feedback not stored", metadata: ["error": "\(error)"])
            return Self.errorResponse(APIError(status: 500, message: "feedback not stored: \(error)", type: "server_error"), requestID: nil)
        }
    }

    /// Attaches feedback once the request's row is in the store: this replica's rows are flushed first;
    /// in a store shared by replicas, a row another replica is still writing (milliseconds behind its
    /// response) is waited for, up to about a second, before the id counts as unknown.
    func attachFeedback(requestID: String, keyID: String?, score: Double) async throws -> RoutedRequest {
        await requestLog.flush()
        var delay = Duration.milliseconds(10)
        var waited = Duration.zero
        while true {
            do { return try await store.attachFeedback(requestID: requestID, keyID: keyID, score: score, at: Date()) } catch FeedbackError.unknownRequest(let id) {
                guard store.sharedBetweenReplicas, waited < .seconds(1) else { throw FeedbackError.unknownRequest(id) }
                try await Task.sleep(for: delay)
                waited += delay
                delay *= 2
            }
        }
    }

    // MARK: Catalogue

    /// `GET /v1/models`: `auto`, then every configured model with whether the router can choose it.
    public func modelList() -> Response {
        let routing = self.routing
        let configuration = routing.configuration
        let routableModels = routing.routableModels
        var data: [JSONValue] = [.object([
            "id": .string("auto"), "object": .string("model"), "created": .integer(0), "owned_by": .string("fedroute"),
            "routing": .object(["lambda": .number(configuration.gateway.lambda), "models": .array(routableModels.map(JSONValue.string))]),
        ])]
        for m in configuration.models {
            data.append(.object([
                "id": .string(m.name), "object": .string("model"), "created": .integer(0), "owned_by": .string("fedroute-upstream"),
                "routable": .bool(routableModels.contains(m.name)),
                "price": .object(["input_per_million": .number(m.price.input), "output_per_million": .number(m.price.output)]),
            ]))
        }
        return Self.jsonResponse(.object(["object": .string("list"), "data": .array(data)]))
    }

    /// `GET /health`: what is loaded (fingerprints and load time of the router and models.yaml).
    public func health() -> Response {
        let routing = self.routing
        let p = routing.provenance
        let authentication: String = if case .keys = access { "keys" } else { "off" }
        return Self.jsonResponse(.object([
            "status": .string("ok"), "router": .string(routing.pipeline.router.family.rawValue), "encoder": .string(routing.pipeline.encoder.kind),
            "routable_models": .integer(Int64(routing.routableModels.count)), "store": .string(store.location),
            "router_fingerprint": .string(p.routerFingerprint), "models_fingerprint": .string(p.modelsFingerprint),
            "loaded_at": .string(ISO8601DateFormatter().string(from: p.loadedAt)), "authentication": .string(authentication),
        ]))
    }

    // MARK: Helpers

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    /// A JSON response (compact, sorted keys); also what the fake upstream answers with.
    public static func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = HTTPFields()) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(data: value.encoded())))
    }

    static func errorResponse(_ e: APIError, requestID: String?) -> Response {
        var h = HTTPFields()
        if let requestID { h[GatewayHeader.requestID] = requestID }
        if let s = e.retryAfterSeconds { h[.retryAfter] = String(s) }
        if e.status == 401 { h[.wwwAuthenticate] = "Bearer" }
        return jsonResponse(e.body, status: HTTPResponse.Status(code: e.status), headers: h)
    }
}

/// Response headers the gateway adds.
public enum GatewayHeader {
    /// The gateway's id of the request, for `POST /v1/feedback`.
    public static let requestID = HTTPField.Name("x-fedroute-request-id")!
    /// The model that answered.
    public static let model = HTTPField.Name("x-fedroute-model")!
    public static let lambda = HTTPField.Name("x-fedroute-lambda")!
    /// The router's predicted score of the answering model.
    public static let predictedScore = HTTPField.Name("x-fedroute-predicted-score")!
    /// The router's predicted cost (USD) of the answering model.
    public static let predictedCost = HTTPField.Name("x-fedroute-predicted-cost")!
    /// Models that failed before the answering one, comma-separated.
    public static let fallbackFrom = HTTPField.Name("x-fedroute-fallback-from")!
    /// Request header: the most this request may cost (USD); models predicted to cost more are not tried.
    public static let maxCost = HTTPField.Name("x-fedroute-max-cost")!
}
