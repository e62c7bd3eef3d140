import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The gateway's HTTP surface (Hummingbird):
///
/// | route | |
/// |---|---|
/// | `POST /v1/chat/completions` | OpenAI chat completions, streamed (SSE) or not; `model` is `auto`, `route:<λ>` or a model name |
/// | `GET /v1/models` | `auto` and every configured model |
/// | `POST /v1/feedback` | `{"request_id", "score"}`: attach a quality score to a routed request |
/// | `GET /health` | liveness and what is loaded |
/// | `GET /metrics` | Prometheus text exposition |
public enum GatewayRoutes {
    /// The routes, bound to `gateway`.
    public static func router(for gateway: Gateway) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post("/v1/chat/completions") { request, _ -> Response in
            guard let body = try await collect(request) else { return tooLarge() }
            return await gateway.chatCompletion(body: body)
        }
        router.post("/v1/feedback") { request, _ -> Response in
            guard let body = try await collect(request) else { return tooLarge() }
            return await gateway.feedback(body: body)
        }
        router.get("/v1/models") { _, _ in gateway.modelList() }
        router.get("/health") { _, _ in gateway.health() }
        router.get("/metrics") { _, _ -> Response in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: gateway.metrics.exposition())))
        }
        return router
    }

    /// An application serving `gateway` on `host:port` (port 0 picks a free one; `onServerRunning`
    /// receives the bound port).
    public static func application(
        gateway: Gateway, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(for: gateway),
            configuration: .init(address: .hostname(host, port: port), serverName: "fedroute-gateway"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// The body, or nil when it exceeds `Gateway.maxRequestBytes`.
    static func collect(_ request: Request) async throws -> ByteBuffer? {
        do { return try await request.body.collect(upTo: Gateway.maxRequestBytes) } catch let e as HTTPError where e.status == .contentTooLarge {
            return nil
        }
    }

    static func tooLarge() -> Response {
        Gateway.errorResponse(APIError(status: 413, message: "the request body is larger than \(Gateway.maxRequestBytes) bytes"), requestID: nil)
    }
}
