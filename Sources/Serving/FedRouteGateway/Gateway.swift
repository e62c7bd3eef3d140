import AsyncHTTPClient
import FedRouteData
import FedRouteFeatures
import FedRouteFeedback
import FedRouteRouters
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import NIOPosix

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

/// The routing gateway: chooses a model for each chat request, calls its upstream with fallback,
/// and records every request. `GatewayRoutes` puts it behind HTTP.
public struct Gateway: Sendable {
    public let pipeline: RoutingPipeline
    public let configuration: GatewayConfiguration
    public let metrics: GatewayMetrics
    public let log: RequestLog
    let endpoints: [String: ModelEndpoint]
    /// Router models that have an endpoint, in router order.
    public let routableModels: [String]
    let upstream: UpstreamClient
    let logger: Logger
    let batcher: RoutingBatcher

    /// Largest request body accepted.
    public static let maxRequestBytes = 4 << 20
    /// Largest non-streamed upstream answer read.
    static let maxAnswerBytes = 32 << 20

    /// - Parameter routingPool: where embedding and prediction run, off the server's event loops
    ///   (concurrent requests are batched, see `RoutingBatcher`).
    public init(
        pipeline: RoutingPipeline, configuration: GatewayConfiguration, upstream: UpstreamClient, log: RequestLog,
        metrics: GatewayMetrics = GatewayMetrics(), logger: Logger = Logger(label: "fedroute.gateway"),
        routingPool: NIOThreadPool = .singleton
    ) throws {
        self.pipeline = pipeline
        self.configuration = configuration
        self.upstream = upstream
        self.log = log
        self.metrics = metrics
        self.logger = logger
        batcher = RoutingBatcher(pipeline: pipeline, pool: routingPool)
        let endpoints = Dictionary(uniqueKeysWithValues: configuration.models.map { ($0.name, $0) })
        self.endpoints = endpoints
        routableModels = pipeline.router.models.filter { endpoints[$0] != nil }
        guard !routableModels.isEmpty else {
            throw GatewayConfigurationError(
                source: "models.yaml",
                message: "none of the router's models (\(pipeline.router.models.joined(separator: ", "))) has an endpoint, so nothing can be routed")
        }
        let missing = pipeline.router.models.filter { endpoints[$0] == nil }
        if !missing.isEmpty {
            logger.warning("router models without an endpoint are never chosen", metadata: ["models": "\(missing.joined(separator: ","))"])
        }
    }

    // MARK: Routing

    /// Which models to try for `request`, best first.
    public func decide(_ request: ChatRequest) async throws -> (decision: RoutingDecision, text: String) {
        let text = try request.routingText(configuration.gateway.context)
        let lambda: Double
        switch request.selection {
        case .named(let model):
            guard endpoints[model] != nil else {
                throw APIError(status: 404, message: "the model '\(model)' does not exist; use 'auto', 'route:<λ>' or one of GET /v1/models",
                               param: "model", code: "model_not_found")
            }
            return (RoutingDecision(lambda: nil, candidates: [.init(model: model, predictedScore: nil, predictedCost: nil, available: true)]), text)
        case .auto: lambda = configuration.gateway.lambda
        case .route(let l): lambda = l
        }
        let started = ContinuousClock.now
        let predictions = try await batcher.predict(text)
        metrics.routing(ContinuousClock.now - started)
        let candidates = predictions.ranked(row: 0, lambda: lambda).compactMap { j -> RoutingDecision.Candidate? in
            guard endpoints[predictions.models[j]] != nil else { return nil }
            return .init(model: predictions.models[j], predictedScore: predictions.score[j], predictedCost: predictions.cost[j], available: predictions.available[j])
        }
        return (RoutingDecision(lambda: lambda, candidates: candidates), text)
    }

    // MARK: Chat completions

    /// Serves one `POST /v1/chat/completions` body.
    public func chatCompletion(body: ByteBuffer) async -> Response {
        let received = ContinuousClock.now
        let id = "frq-" + UUID().uuidString.lowercased()
        let request: ChatRequest
        let decision: RoutingDecision
        let text: String
        do {
            request = try ChatRequest(json: Data(buffer: body))
            (decision, text) = try await decide(request)
        } catch let e as APIError {
            metrics.request(model: nil, outcome: "rejected", duration: ContinuousClock.now - received)
            logger.info("rejected request", metadata: ["request_id": "\(id)", "status": "\(e.status)", "reason": "\(e.message)"])
            return Self.errorResponse(e, requestID: id)
        } catch {
            metrics.request(model: nil, outcome: "failed", duration: ContinuousClock.now - received)
            logger.error("routing failed", metadata: ["request_id": "\(id)", "error": "\(error)"])
            return Self.errorResponse(APIError(status: 500, message: "routing failed: \(error)", type: "server_error"), requestID: id)
        }

        var entry = RoutedRequest(
            id: id, createdAt: Date(), query: text, requestedModel: request.model, lambda: decision.lambda, chosenModel: nil,
            predictedScore: nil, predictedCost: nil, attempts: [], stream: request.stream, outcome: .failed,
            promptTokens: nil, completionTokens: nil, tokensEstimated: false, costUSD: nil, latencyMilliseconds: 0)
        let promptBytes = request.promptBytes

        for candidate in decision.candidates.prefix(configuration.gateway.maxAttempts) {
            let endpoint = endpoints[candidate.model]!
            do {
                let response = try await upstream.send(request.upstreamBody(model: endpoint.upstreamModel ?? endpoint.name), to: endpoint, stream: request.stream)
                var answer = ByteBuffer()
                if !request.stream {
                    do { answer = try await response.body.collect(upTo: Self.maxAnswerBytes) } catch {
                        // Nothing has reached the client yet, so the next model can still answer.
                        throw UpstreamError.transport("the answer broke off: \(error)")
                    }
                }
                let headers = responseHeaders(id: id, decision: decision, chosen: candidate, failed: entry.attempts)
                entry.chosenModel = candidate.model
                entry.predictedScore = candidate.predictedScore
                entry.predictedCost = candidate.predictedCost
                entry.attempts.append(UpstreamAttempt(model: candidate.model))
                if entry.attempts.count > 1 { metrics.fallback() }
                if request.stream {
                    return streamingResponse(response, request: request, entry: entry, endpoint: endpoint, headers: headers, received: received)
                }
                let usage = TokenUsage.of(completion: Data(buffer: answer), promptBytes: promptBytes)
                await finish(&entry, endpoint: endpoint, usage: usage, outcome: .answered, received: received)
                var h = headers
                h[.contentType] = "application/json"
                return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: answer))
            } catch {
                let reason = (error as? UpstreamError)?.description ?? String(describing: error)
                entry.attempts.append(UpstreamAttempt(model: candidate.model, error: reason))
                metrics.upstreamFailure(model: candidate.model)
                logger.warning("upstream failed", metadata: ["request_id": "\(id)", "model": "\(candidate.model)", "error": "\(reason)"])
            }
        }
        entry.latencyMilliseconds = Self.milliseconds(ContinuousClock.now - received)
        await record(entry)
        metrics.request(model: nil, outcome: "failed", duration: ContinuousClock.now - received)
        let tried = entry.attempts.map { "\($0.model) (\($0.error ?? "?"))" }.joined(separator: "; ")
        return Self.errorResponse(APIError(status: 502, message: "every model tried failed: \(tried)", type: "upstream_error", code: "upstream_failed"), requestID: id)
    }

    /// Forwards an upstream event stream, reading usage as it passes, and records the request at its end.
    func streamingResponse(
        _ response: HTTPClientResponse, request: ChatRequest, entry: RoutedRequest, endpoint: ModelEndpoint,
        headers: HTTPFields, received: ContinuousClock.Instant
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
            await finish(&entry, endpoint: endpoint, usage: scanner.tokenUsage(promptBytes: promptBytes), outcome: outcome, received: received)
            // Ends the response (a no-op for a client that already went away).
            try? await writer.finish(nil)
        }
        return Response(status: .ok, headers: h, body: body)
    }

    /// Prices, records and counts an answered (or interrupted) request.
    func finish(_ entry: inout RoutedRequest, endpoint: ModelEndpoint, usage: TokenUsage, outcome: RequestOutcome, received: ContinuousClock.Instant) async {
        let cost = endpoint.price.cost(inputTokens: usage.promptTokens, outputTokens: usage.completionTokens)
        entry.outcome = outcome
        entry.promptTokens = usage.promptTokens
        entry.completionTokens = usage.completionTokens
        entry.tokensEstimated = usage.estimated
        entry.costUSD = cost
        let elapsed = ContinuousClock.now - received
        entry.latencyMilliseconds = Self.milliseconds(elapsed)
        await record(entry)
        metrics.answer(model: endpoint.name, usage: usage, costUSD: cost)
        metrics.request(model: endpoint.name, outcome: outcome.rawValue, duration: elapsed)
        logger.info("routed", metadata: [
            "request_id": "\(entry.id)", "model": "\(endpoint.name)", "outcome": "\(outcome.rawValue)",
            "attempts": "\(entry.attempts.count)", "cost_usd": "\(cost)", "ms": "\(Int(entry.latencyMilliseconds))",
        ])
    }

    func record(_ entry: RoutedRequest) async {
        do { try await log.record(entry) } catch {
            // The client still gets its answer; losing the row is logged loudly rather than hidden.
            logger.error("request not recorded", metadata: ["request_id": "\(entry.id)", "error": "\(error)"])
        }
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

    /// Serves one `POST /v1/feedback` body: `{"request_id": "frq-…", "score": 0.0…1.0}`.
    public func feedback(body: ByteBuffer) async -> Response {
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
            do { row = try await log.attachFeedback(requestID: id, score: score) } catch let e as FeedbackError {
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

    // MARK: Catalogue

    /// `GET /v1/models`: `auto`, then every configured model with whether the router can choose it.
    public func modelList() -> Response {
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

    /// `GET /health`.
    public func health() -> Response {
        Self.jsonResponse(.object([
            "status": .string("ok"), "router": .string(pipeline.router.family.rawValue), "encoder": .string(pipeline.encoder.kind),
            "routable_models": .integer(Int64(routableModels.count)), "request_log": .string(log.path),
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
}
