import AsyncHTTPClient
import FedRouteFakeUpstream
import FedRouteGatewayStore
@testable import FedRouteGateway
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// What a hostile or careless client or upstream can send, and what the gateway must do with it.
@Suite struct GatewayHygieneTests {
    typealias E2E = GatewayEndToEndTests

    /// Keeps every log message and its metadata as the standard handler would print them.
    final class CapturedLog: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }

        struct Handler: LogHandler {
            let sink: CapturedLog
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                sink.lines.withLock { $0.append("\(event.level) \(event.message) \(fields)") }
            }
        }

        var logger: Logger { Logger(label: "captured", factory: { _ in Handler(sink: self) }) }
    }

    @Test func everyErrorHasOpenAIsShape() async throws {
        try await E2E.withGateway { env in
            let unknown = try await E2E.send(env, "/v2/nothing", method: "GET")
            #expect(unknown.status == 404 && unknown.json?["error"]?["message"]?.stringValue?.contains("/v1/chat/completions") == true)
            #expect(unknown.headers["content-type"] == "application/json")
            let wrongMethod = try await E2E.send(env, "/v1/chat/completions", method: "GET")
            #expect([404, 405].contains(wrongMethod.status) && wrongMethod.json?["error"]?["type"] != nil)
            // Larger than max_body_bytes (4 MiB by default).
            let huge = #"{"model": "auto", "messages": [{"role": "user", "content": ""# + String(repeating: "a", count: 4 << 20) + #""}]}"#
            let tooLarge = try await E2E.send(env, "/v1/chat/completions", body: huge)
            #expect(tooLarge.status == 413 && tooLarge.json?["error"]?["code"]?.stringValue == "request_too_large")
            // A member given twice could route on one value and forward another.
            let twice = try await E2E.send(env, "/v1/chat/completions", body: #"{"model": "cheap", "messages": [{"role": "user", "content": "hi"}], "model": "strong"}"#)
            #expect(twice.status == 400 && twice.json?["error"]?["message"]?.stringValue?.contains("more than once") == true)
            let escapedTwice = try await E2E.send(env, "/v1/chat/completions", body: #"{"model": "cheap", "messages": [{"role": "user", "content": "hi"}], "mod\u0065l": "strong"}"#)
            #expect(escapedTwice.status == 400)
        }
    }

    /// Fields the gateway does not interpret reach the upstream exactly as the client wrote them:
    /// integers beyond Int64, number spellings, key order, escapes.
    @Test func unknownFieldsAreForwardedByteExact() async throws {
        try await E2E.withGateway { env in
            let fields = #""seed": 100000000000000000000000000000, "temperature": 0.10, "logit_bias": {"50256": -100, "9": 1e2}, "user": "\u00e9\/x""#
            let body = #"{"model": "cheap",  "messages": [{"role": "user", "content": "hi"}], "# + fields + "}"
            let r = try await E2E.send(env, "/v1/chat/completions", body: body)
            #expect(r.status == 200)
            let call = try #require(await env.upstreamB.calls().last)
            let forwarded = String(decoding: call.raw, as: UTF8.self)
            #expect(forwarded == #"{"model": "cheap",  "messages": [{"role": "user", "content": "hi"}], "# + fields + "}", "\(forwarded)")
            #expect(!forwarded.contains("1e+29"))
            // A stream asks for usage: stream_options is added, everything else kept.
            let streamed = #"{"stream": true, "model": "auto", "messages": [{"role": "user", "content": "hi"}], "n": 18446744073709551616}"#
            _ = try await E2E.send(env, "/v1/chat/completions", body: streamed)
            let last = String(decoding: try #require(await env.upstreamA.calls().last).raw, as: UTF8.self)
            #expect(last == #"{"stream": true, "model": "strong-v2", "messages": [{"role": "user", "content": "hi"}], "n": 18446744073709551616,"stream_options":{"include_usage":true}}"#, "\(last)")
        }
    }

    /// An upstream answering 200 with a page that is not a chat completion has failed: the next model answers.
    @Test func aNonJSONAnswerIsAFailureAndFallsBack() async throws {
        let secret = try KeySecret(String(repeating: "k", count: 40))
        try await E2E.withGateway(access: .keys(secret)) { env in
            let (_, key) = try await env.log.createKey(name: "p", policy: .init(models: ["portal", "cheap"]), expiresAt: nil, secret: secret)
            for stream in [false, true] {
                let r = try await E2E.chat(env, model: "route:0", stream: stream, key: key)
                #expect(r.status == 200 && r.headers["x-fedroute-model"] == "cheap" && r.headers["x-fedroute-fallback-from"] == "portal", "\(r.headers)")
            }
            let named = try await E2E.chat(env, model: "portal", key: key)
            #expect(named.status == 502 && named.json?["error"]?["message"]?.stringValue?.contains("not a JSON object") == true)
            let rows = try await env.stored().requests()
            #expect(rows.count == 3 && rows.allSatisfy { $0.attempts.first?.model == "portal" && $0.attempts.first?.error?.contains("unusable answer") == true })
        }
    }

    /// A model name (or any text a client controls) with line breaks cannot forge a log line.
    @Test func callerTextCannotForgeLogLines() async throws {
        let captured = CapturedLog()
        try await E2E.withGateway(logger: captured.logger) { env in
            let forged = "gpt\nINFO routed model=strong cost_usd=0"
            let body = String(decoding: JSONValue.object([
                "model": .string(forged), "messages": .array([.object(["role": .string("user"), "content": .string("hi")])]),
            ]).encoded(), as: UTF8.self)
            let r = try await E2E.send(env, "/v1/chat/completions", body: body)
            #expect(r.status == 404)
        }
        let lines = captured.all
        #expect(lines.contains { $0.contains(#"gpt\nINFO routed"#) }, "\(lines)")
        #expect(lines.allSatisfy { !$0.contains("\n") })
    }

    /// A body that trickles in is cut off at `body_timeout_seconds` after the request's head with a 408 in
    /// OpenAI's shape, and the gateway goes on serving; a body that arrives in time, slowly, is served.
    /// The deadline (3 s) is 30 times the slow body's pause: on a loaded 2-core CI machine a 100 ms sleep
    /// once took over 400 ms, which a 0.4 s deadline turned into a 408 for the in-time body.
    @Test func aBodyThatNeverFinishesGets408() async throws {
        try await E2E.withGateway(settings: "  body_timeout_seconds: 3") { env in
            let clock = ContinuousClock()
            let started = clock.now
            do {
                let response = try await env.http.execute(Self.trickled(env, pause: .seconds(60)), timeout: .seconds(90))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
                #expect(response.status.code == 408)
                #expect((try? JSONValue.decode(Data(text.utf8)))?["error"]?["code"]?.stringValue == "request_timeout", "\(text)")
            } catch {
                // A client may see the closed connection before (or instead of) the 408.
                #expect(!(error is CancellationError), "\(error)")
            }
            #expect(clock.now - started < .seconds(20))
            // In time, though slowly: answered.
            let slow = try await env.http.execute(Self.trickled(env, pause: .milliseconds(100)), timeout: .seconds(30))
            _ = try await slow.body.collect(upTo: 1 << 16)
            #expect(slow.status.code == 200)
            #expect(try await E2E.chat(env, model: "route:100").status == 200)
        }
    }

    /// A caller without a key is answered 401 before its body is read; its trickled body then runs into the
    /// deadline, which closes the connection without a second response, and the gateway goes on serving.
    @Test func anUnauthenticatedTrickledBodyGets401Once() async throws {
        try await E2E.withGateway(access: .keys(GatewayAccessTests.secret), settings: "  body_timeout_seconds: 0.4") { env in
            let clock = ContinuousClock()
            let started = clock.now
            do {
                let response = try await env.http.execute(Self.trickled(env, pause: .seconds(20)), timeout: .seconds(30))
                _ = try? await response.body.collect(upTo: 1 << 16)
                #expect(response.status.code == 401)
            } catch {
                #expect(!(error is CancellationError), "\(error)")
            }
            #expect(clock.now - started < .seconds(10))
            let again = try await E2E.send(env, "/v1/models", method: "GET")
            #expect(again.status == 401)
        }
    }

    /// A chat request whose body arrives as its first 20 bytes, a pause, and the rest.
    static func trickled(_ env: E2E.Environment, pause: Duration) -> HTTPClientRequest {
        let body = Array(#"{"model": "route:100", "messages": [{"role": "user", "content": "what is six times seven?"}]}"#.utf8)
        var r = HTTPClientRequest(url: env.gateway + "/v1/chat/completions")
        r.method = .POST
        r.headers.add(name: "Content-Type", value: "application/json")
        let parts = [ByteBuffer(bytes: body.prefix(20)), ByteBuffer(bytes: body.dropFirst(20))]
        let stream = AsyncStream<ByteBuffer> { continuation in
            Task {
                continuation.yield(parts[0])
                try? await Task.sleep(for: pause)
                continuation.yield(parts[1])
                continuation.finish()
            }
        }
        r.body = .stream(stream, length: .known(Int64(body.count)))
        return r
    }

    /// The router embeds at most `max_routing_characters` (8,000): the end of a 3 MB message.
    @Test func routingLooksAtABoundedSuffix() async throws {
        try await E2E.withGateway { env in
            let text = String(repeating: "filler words ", count: 250_000) + "THE END"
            let r = try await E2E.chat(env, model: "route:100", text: text)
            #expect(r.status == 200)
            let row = try #require(try await env.stored().requests().last)
            #expect(row.query.count == 8000 && row.query.hasSuffix("THE END"))
            // The upstream still got the whole message.
            let call = try #require(await env.upstreamB.calls().last)
            #expect(call.body["messages"]?.arrayValue?.last?["content"]?.stringValue == text)
        }
    }
}
