import FedRouteHTTPRunner
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import NIOSSL
import Logging
import NIOCore

/// The gateway's HTTP surface (Hummingbird):
///
/// | route | caller | |
/// |---|---|---|
/// | `POST /v1/chat/completions` | key | OpenAI chat completions, streamed (SSE) or not; `model` is `auto`, `route:<λ>` or a model name |
/// | `GET /v1/models` | key | `auto` and every configured model |
/// | `POST /v1/feedback` | key | `{"request_id", "score"}`: rate a request this key made |
/// | `POST /admin/reload` | admin key | re-read the router file and models.yaml |
/// | `GET /health` | anyone | liveness and what is loaded |
/// | `GET /metrics` | anyone | Prometheus text exposition |
///
/// The caller's key is checked before a body is read. Every error, including unknown routes and
/// oversized bodies, has OpenAI's JSON error shape.
public enum GatewayRoutes {
    /// The routes, bound to `gateway`.
    public static func router(for gateway: Gateway) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: OpenAIErrorMiddleware())
        // A failed key check throws its APIError; `OpenAIErrorMiddleware` answers it.
        router.post("/v1/chat/completions") { request, _ -> Response in
            let caller = try await gateway.authenticate(authorization: request.headers[.authorization])
            let body = try await collect(request, gateway: gateway)
            return await gateway.chatCompletion(body: body, caller: caller, maxCost: request.headers[GatewayHeader.maxCost], headers: request.headers)
        }
        router.post("/v1/feedback") { request, _ -> Response in
            let caller = try await gateway.authenticate(authorization: request.headers[.authorization])
            let body = try await collect(request, gateway: gateway)
            return await gateway.feedback(body: body, caller: caller)
        }
        router.get("/v1/models") { request, _ -> Response in
            _ = try await gateway.authenticate(authorization: request.headers[.authorization])
            return gateway.modelList()
        }
        router.post("/admin/reload") { request, _ -> Response in
            _ = try await gateway.authenticateAdmin(authorization: request.headers[.authorization])
            let p = try await gateway.reload()
            return Gateway.jsonResponse(.object([
                "reloaded": .bool(true), "router_fingerprint": .string(p.routerFingerprint), "models_fingerprint": .string(p.modelsFingerprint),
            ]))
        }
        router.get("/health") { _, _ in gateway.health() }
        router.get("/metrics") { _, _ -> Response in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: gateway.metrics.exposition())))
        }
        return router
    }

    /// An application serving `gateway` on `host:port` (port 0 picks a free one; `onServerRunning`
    /// receives the bound port), closing idle connections after the configured idle timeout: HTTP/2
    /// and HTTP/1.1 (ALPN) over TLS when `tls` is given, plaintext HTTP/1.1 otherwise.
    public static func application(
        gateway: Gateway, host: String, port: Int, tls: TLSConfiguration? = nil, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let idle = gateway.routing.configuration.gateway.idleTimeoutSeconds
        let bodyTimeout = TimeAmount.nanoseconds(Int64(gateway.routing.configuration.gateway.bodyTimeoutSeconds * 1e9))
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestBodyDeadline(timeout: bodyTimeout)], idleTimeout: .nanoseconds(Int64(idle * 1e9)))
        // Each connection is handled on its own event loop (`EventLoopPinnedChannel`): the handler awaits
        // its body, the upstream's answer (AsyncHTTPClient prefers the caller's loop) and the request log
        // without waking a thread of the cooperative pool each time. MiniLM routing runs on the routing
        // thread pool; a hashed pipeline routes inline, on the loop (0.1–0.5 ms a query on the bundled
        // data's routers), which is the longest a request holds its loop between suspensions.
        let server: HTTPServerBuilder
        if let tls {
            let configuration = HTTP2UpgradeChannel.Configuration(idleTimeout: .nanoseconds(Int64(idle * 1e9)), streamConfiguration: http1)
            server = HTTPServerBuilder { responder in
                EventLoopPinnedChannel(try HTTP2UpgradeChannel(tlsConfiguration: tls, configuration: configuration, responder: responder))
            }
        } else {
            server = HTTPServerBuilder { responder in EventLoopPinnedChannel(HTTP1Channel(responder: responder, configuration: http1)) }
        }
        return Application(
            router: router(for: gateway),
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "fedroute-gateway"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// The request's body, at most `max_body_bytes` (413 beyond). Its deadline (`body_timeout_seconds`, 408)
    /// is kept by `RequestBodyDeadline` in the connection's pipeline.
    static func collect(_ request: Request, gateway: Gateway) async throws -> ByteBuffer {
        let limit = gateway.routing.configuration.gateway.maxBodyBytes
        do {
            return try await request.body.collect(upTo: limit)
        } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
            throw APIError(status: 413, message: "the request body is larger than \(limit) bytes", code: "request_too_large")
        }
    }
}

/// Turns every error a route or Hummingbird throws (unknown route, wrong method, oversized body) into a
/// response with OpenAI's error body.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do { return try await next(request, context) } catch let e as APIError {
            return Gateway.errorResponse(e, requestID: nil)
        } catch let e as any HTTPResponseError {
            let status = e.status
            let message: String = switch status {
            case .notFound: "no route \(request.method.rawValue) \(LogText.escape(request.uri.path)); the gateway serves /v1/chat/completions, /v1/models, /v1/feedback, /admin/reload, /health and /metrics"
            case .methodNotAllowed: "\(request.method.rawValue) is not allowed on \(LogText.escape(request.uri.path))"
            case .contentTooLarge: "the request body is too large"
            default: (e as? HTTPError)?.body ?? status.reasonPhrase
            }
            let type = status.code >= 500 ? "server_error" : "invalid_request_error"
            return Gateway.errorResponse(APIError(status: status.code, message: message, type: type, code: status.code == 404 ? "not_found" : nil), requestID: nil)
        }
    }
}
