import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Why one upstream call failed (the gateway then tries the next-best model).
public enum UpstreamError: Error, CustomStringConvertible, Sendable {
    /// The upstream answered with a non-2xx status.
    case status(Int, body: String)
    /// No answer: connection refused, reset, TLS failure, timeout.
    case transport(String)
    /// A 2xx status with a body that is not what was asked for (not a JSON object, not an event stream).
    case invalidAnswer(String)

    public var description: String {
        switch self {
        case .status(let code, let body): "HTTP \(code)" + (body.isEmpty ? "" : ": \(body.prefix(300))")
        case .transport(let why): "unreachable: \(why)"
        case .invalidAnswer(let why): "unusable answer: \(why)"
        }
    }
}

/// Sends chat-completion requests to models' OpenAI-compatible upstreams (async-http-client).
public struct UpstreamClient: Sendable {
    let http: HTTPClient

    /// - Parameter http: the client to send with; its owner shuts it down.
    public init(http: HTTPClient) {
        self.http = http
    }

    /// An HTTP client set up for upstreams: many connections per host (a gateway funnels many
    /// clients onto few providers) and the configured connect timeout, after which an unreachable
    /// upstream counts as failed and the next model is tried.
    public static func httpConfiguration(_ settings: GatewayConfiguration.Settings) -> HTTPClient.Configuration {
        var c = HTTPClient.Configuration()
        c.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        c.timeout.connect = .nanoseconds(Int64(settings.connectTimeoutSeconds * 1e9))
        return c
    }

    /// Posts `body` to the endpoint's `/chat/completions`. Returns once the status and headers are in
    /// with a 2xx status; the body may still be streaming. Non-2xx and transport failures throw.
    /// `apiKey` is sent as `Authorization: Bearer`.
    func send(_ body: Data, to endpoint: ModelEndpoint, apiKey: String?, timeoutSeconds: Double, stream: Bool) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: endpoint.chatCompletionsURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: stream ? "text/event-stream" : "application/json")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do { response = try await http.execute(request, timeout: .nanoseconds(Int64(timeoutSeconds * 1e9))) } catch {
            throw UpstreamError.transport(String(describing: error))
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            let text = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
            throw UpstreamError.status(Int(response.status.code), body: Self.errorMessage(text))
        }
        return response
    }

    /// The `error.message` of an OpenAI-style error body, else the body itself.
    static func errorMessage(_ text: String) -> String {
        (try? JSONValue.decode(Data(text.utf8)))?["error"]?["message"]?.stringValue ?? text
    }
}
