import FedRouteGateway
import FedRouteHTTPRunner
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat

/// An OpenAI-compatible chat server with scripted behaviour per model name: a fixed answer (with
/// or without usage), an HTTP failure, or a stream that breaks off. It stands in for real LLM
/// providers in the gateway's end-to-end tests and load benchmark.
public struct FakeUpstream: Sendable {
    /// A fixed answer and the usage reported for it.
    public struct Reply: Sendable {
        public var text: String
        public var promptTokens: Int
        public var completionTokens: Int
        /// False: the upstream omits `usage` (the gateway must estimate tokens).
        public var reportsUsage: Bool

        public init(text: String, promptTokens: Int, completionTokens: Int, reportsUsage: Bool = true) {
            self.text = text
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
            self.reportsUsage = reportsUsage
        }
    }

    public enum Behavior: Sendable {
        case answer(Reply)
        /// Every request fails with this status and an OpenAI-style error body.
        case fail(status: Int)
        /// Streams this many content chunks of the reply, then drops the connection (no [DONE]).
        /// Non-streamed requests get the full reply.
        case breakStream(Reply, afterChunks: Int)
        /// HTTP 200 with this body as `text/html` (a captive portal or a misconfigured proxy), for
        /// streamed and non-streamed requests alike.
        case garbage(String)
    }

    /// One request the fake received.
    public struct Call: Sendable {
        public var model: String
        public var stream: Bool
        public var authorization: String?
        public var body: JSONValue
        /// The body's bytes as received.
        public var raw: Data
    }

    actor Recorder {
        var calls: [Call] = []
        func add(_ c: Call) { calls.append(c) }
    }

    public let behaviors: [String: Behavior]
    /// When set, requests without `Authorization: Bearer <key>` get 401.
    public let apiKey: String?
    let recorder = Recorder()

    public init(behaviors: [String: Behavior], apiKey: String? = nil) {
        self.behaviors = behaviors
        self.apiKey = apiKey
    }

    /// Every request received so far, in order.
    public func calls() async -> [Call] { await recorder.calls }

    /// Runs the fake on 127.0.0.1 (a free port) while `body` runs; `body` gets its `/v1` base URL.
    public func withRunning<T: Sendable>(logger: Logger = Logger(label: "fake-upstream"), _ body: (String) async throws -> T) async throws -> T {
        let router = self.router()
        return try await HTTPRunner.withRunning(logger: logger, { onRunning in
            Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "fake-upstream"),
                        onServerRunning: { await onRunning($0.localAddress?.port ?? 0) }, logger: logger)
        }, body: { port in try await body("http://127.0.0.1:\(port)/v1") })
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let fake = self
        router.post("/v1/chat/completions") { request, _ -> Response in
            let data = try await request.body.collect(upTo: 16 << 20)
            guard let json = try? JSONValue.decode(Data(buffer: data)), let model = json["model"]?.stringValue else {
                return Self.error(400, "bad request body")
            }
            let stream = json["stream"]?.boolValue ?? false
            let auth = request.headers[.authorization]
            await fake.recorder.add(Call(model: model, stream: stream, authorization: auth, body: json, raw: Data(buffer: data)))
            if let key = fake.apiKey, auth != "Bearer \(key)" { return Self.error(401, "invalid API key") }
            guard let behavior = fake.behaviors[model] else { return Self.error(404, "the model '\(model)' does not exist") }
            let includeUsage = json["stream_options"]?["include_usage"]?.boolValue ?? false
            switch behavior {
            case .fail(let status):
                return Self.error(status, "scripted failure of \(model)")
            case .answer(let reply):
                return stream ? Self.streamed(reply, model: model, includeUsage: includeUsage, breakAfter: nil) : Self.completion(reply, model: model)
            case .breakStream(let reply, let n):
                return stream ? Self.streamed(reply, model: model, includeUsage: includeUsage, breakAfter: n) : Self.completion(reply, model: model)
            case .garbage(let text):
                var h = HTTPFields()
                h[.contentType] = "text/html"
                return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            }
        }
        return router
    }

    static func error(_ status: Int, _ message: String) -> Response {
        Gateway.jsonResponse(.object(["error": .object(["message": .string(message), "type": .string("fake_error")])]), status: HTTPResponse.Status(code: status))
    }

    static func usage(_ r: Reply) -> JSONValue {
        .object(["prompt_tokens": .integer(Int64(r.promptTokens)), "completion_tokens": .integer(Int64(r.completionTokens)),
                 "total_tokens": .integer(Int64(r.promptTokens + r.completionTokens))])
    }

    static func completion(_ r: Reply, model: String) -> Response {
        var body: [String: JSONValue] = [
            "id": .string("fake-\(model)"), "object": .string("chat.completion"), "created": .integer(0), "model": .string(model),
            "choices": .array([.object(["index": .integer(0), "message": .object(["role": .string("assistant"), "content": .string(r.text)]),
                                        "finish_reason": .string("stop")])]),
        ]
        if r.reportsUsage { body["usage"] = usage(r) }
        return Gateway.jsonResponse(.object(body))
    }

    /// The reply split into word chunks as `chat.completion.chunk` events.
    static func streamed(_ r: Reply, model: String, includeUsage: Bool, breakAfter: Int?) -> Response {
        var words: [String] = []
        var current = ""
        for ch in r.text {
            if ch == " ", !current.isEmpty { words.append(current); current = "" }
            current.append(ch)
        }
        if !current.isEmpty { words.append(current) }
        let chunks = words
        @Sendable func event(_ v: JSONValue) -> ByteBuffer { ByteBuffer(string: "data: " + String(decoding: v.encoded(), as: UTF8.self) + "\n\n") }
        @Sendable func chunk(_ delta: [String: JSONValue], finish: String?) -> JSONValue {
            .object(["id": .string("fake-\(model)"), "object": .string("chat.completion.chunk"), "created": .integer(0), "model": .string(model),
                     "choices": .array([.object(["index": .integer(0), "delta": .object(delta), "finish_reason": finish.map(JSONValue.string) ?? .null])])])
        }
        var h = HTTPFields()
        h[.contentType] = "text/event-stream"
        return Response(status: .ok, headers: h, body: ResponseBody { writer in
            try await writer.write(event(chunk(["role": .string("assistant"), "content": .string("")], finish: nil)))
            for (i, w) in chunks.enumerated() {
                if let breakAfter, i == breakAfter {
                    // Let what was sent reach the reader before the connection drops, as on a real network.
                    try await Task.sleep(for: .milliseconds(100))
                    throw FakeUpstreamError.brokeOff
                }
                try await writer.write(event(chunk(["content": .string(w)], finish: nil)))
            }
            try await writer.write(event(chunk([:], finish: "stop")))
            if includeUsage, r.reportsUsage {
                try await writer.write(event(.object(["id": .string("fake-\(model)"), "object": .string("chat.completion.chunk"), "created": .integer(0),
                                                      "model": .string(model), "choices": .array([]), "usage": usage(r)])))
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        })
    }
}

enum FakeUpstreamError: Error { case brokeOff }
