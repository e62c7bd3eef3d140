import Foundation
@testable import FedRouteGateway
import Testing
import FedRouteData

/// `JSONValue` reads every kind of value as the kind it is, whatever order the decoder tries them in.
@Suite struct JSONValueTests {
    @Test func everyKindDecodesAsItself() throws {
        let text = #"""
            {"null": null, "true": true, "false": false, "zero": 0, "int": -42, "big": 9223372036854775807, "huge": 100000000000000000000,
             "half": 0.5, "exp": 1e2, "negzero": -0.0, "string": "é\u00e9\n", "empty": "", "digits": "123", "bool text": "true",
             "array": [1, "1", 1.5, true, null, [], {}], "object": {"nested": {"a": [false]}}}
            """#
        let v = try JSONValue.decode(Data(text.utf8))
        let expected: [String: JSONValue] = [
            "null": .null, "true": .bool(true), "false": .bool(false), "zero": .integer(0), "int": .integer(-42),
            "big": .integer(Int64.max), "huge": .number(1e20), "half": .number(0.5), "exp": .integer(100), "negzero": .integer(0),  // Foundation reads a whole number as an integer
            "string": .string("éé\n"), "empty": .string(""), "digits": .string("123"), "bool text": .string("true"),
            "array": .array([.integer(1), .string("1"), .number(1.5), .bool(true), .null, .array([]), .object([:])]),
            "object": .object(["nested": .object(["a": .array([.bool(false)])])]),
        ]
        #expect(v == .object(expected))
        for (key, value) in expected { #expect(v[key] == value, "\(key)") }
        // Top-level scalars too, and garbage is an error.
        #expect(try JSONValue.decode(Data("3".utf8)) == .integer(3))
        #expect(try JSONValue.decode(Data(#""x""#.utf8)) == .string("x"))
        #expect(throws: (any Error).self) { try JSONValue.decode(Data("{".utf8)) }
        // Round trip through the encoder.
        #expect(try JSONValue.decode(v.encoded()) == v)
    }
}

@Suite struct ChatRequestTests {
    @Test func parsesTextFromStringAndMultipartContent() throws {
        let body = #"""
            {"model": "route:2.5", "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 64,
             "messages": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": [{"type": "text", "text": "What is"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "this?"}]},
                          {"role": "assistant", "content": null, "tool_calls": []},
                          {"role": "user", "content": "And that?"}]}
            """#
        let r = try ChatRequest(json: Data(body.utf8))
        #expect(r.selection == .route(lambda: 2.5) && r.stream && r.includeUsage)
        #expect(r.messages.map(\.text) == ["Be brief.", "What is\nthis?", "", "And that?"])
        #expect(try r.routingText(.lastUser) == "And that?")
        #expect(try r.routingText(.conversation) == "Be brief.\n\nWhat is\nthis?\n\nAnd that?")
        // Upstream body: the upstream's model name, usage requested, other fields untouched.
        let up = try JSONValue.decode(r.upstreamBody(model: "gpt-x"))
        #expect(up["model"] == .string("gpt-x") && up["max_tokens"] == .integer(64) && up["stream_options"]?["include_usage"] == .bool(true))
    }

    @Test func modelSelection() throws {
        #expect(try ModelSelection("auto") == .auto)
        #expect(try ModelSelection("route:0") == .route(lambda: 0))
        #expect(try ModelSelection("route:1e3") == .route(lambda: 1000))
        #expect(try ModelSelection("gpt-4") == .named("gpt-4"))
        for bad in ["route:", "route:x", "route:-0.5", "route:inf", "route:nan", ""] {
            #expect(throws: APIError.self, "\(bad)") { try ModelSelection(bad) }
        }
    }
}

@Suite struct SSEScannerTests {
    static let chunk = #"data: {"choices":[{"index":0,"delta":{"content":"héllo"}}]}"#
    static let usage = #"data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#

    @Test func forwardsEventsSplitAnywhereAndDropsTheUsageChunkTheClientDidNotAsk() {
        let stream = Array((": keep-alive\n\n" + Self.chunk + "\n\n" + Self.chunk + "\r\n\r\n" + Self.usage + "\n\ndata: [DONE]\n\n").utf8)
        for cut in [1, 5, 17, 40, 61, stream.count - 3] {
            var s = SSEScanner(clientWantsUsage: false)
            let out = s.feed(stream[..<cut]) + s.feed(stream[cut...]) + s.finish()
            let text = String(decoding: out, as: UTF8.self)
            #expect(!text.contains("usage") && text.hasSuffix("data: [DONE]\n\n") && text.hasPrefix(": keep-alive\n\n"), "cut at \(cut)")
            #expect(s.sawDone && s.contentBytes == 2 * "héllo".utf8.count)
            #expect(s.tokenUsage(promptBytes: 100) == TokenUsage(promptTokens: 7, completionTokens: 3, estimated: false))
        }
        var keep = SSEScanner(clientWantsUsage: true)
        #expect(String(decoding: keep.feed(Array((Self.usage + "\n\n").utf8)), as: UTF8.self).contains("usage"))
    }

    @Test func estimatesWithoutUsageAndNoticesUpstreamErrors() {
        var s = SSEScanner(clientWantsUsage: false)
        _ = s.feed(Array((Self.chunk + "\n\ndata: {\"error\": {\"message\": \"overloaded\"}}\n\n").utf8))
        #expect(!s.sawDone && s.upstreamError == "overloaded")
        #expect(s.tokenUsage(promptBytes: 41) == TokenUsage(promptTokens: 11, completionTokens: 2, estimated: true))
    }

    @Test func readsUsageOfNonStreamedAnswers() {
        let body = Data(#"{"choices":[{"message":{"content":"abcdefgh"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#.utf8)
        #expect(TokenUsage.of(completion: body, promptBytes: 99) == TokenUsage(promptTokens: 5, completionTokens: 2, estimated: false))
        let bare = Data(#"{"choices":[{"message":{"content":"abcdefgh"}}]}"#.utf8)
        #expect(TokenUsage.of(completion: bare, promptBytes: 8) == TokenUsage(promptTokens: 2, completionTokens: 2, estimated: true))
    }
}

@Suite struct GatewayConfigurationTests {
    @Test func parsesDefaultsAndPrices() throws {
        let c = try GatewayConfiguration.parse(yaml: """
            models:
              - name: a
                base_url: https://api.example.com/v1/
                price: { input_per_million: 2.5, output_per_million: 10 }
            """)
        #expect(c.gateway == .init())
        #expect(c.models[0].chatCompletionsURL == "https://api.example.com/v1/chat/completions")
        #expect(abs(c.models[0].price.cost(inputTokens: 1000, outputTokens: 500) - 0.0075) < 1e-15)
    }

    @Test func namesWhatIsWrong() {
        let cases: [(String, String)] = [
            ("models: []", "empty"),
            ("gateway: { lambda: -1 }\nmodels: [{name: a, base_url: 'http://x', price: {input_per_million: 1, output_per_million: 1}}]", "gateway.lambda"),
            ("models: [{name: a, base_url: 'ftp://x', price: {input_per_million: 1, output_per_million: 1}}]", "base_url"),
            ("models: [{name: a, base_url: 'http://x'}]", "models[0].price is missing"),
            ("models: [{name: a, base_url: 'http://x', price: {input_per_million: abc, output_per_million: 1}}]", "models[0].price.input_per_million"),
            ("models: [{name: auto, base_url: 'http://x', price: {input_per_million: 1, output_per_million: 1}}]", "reserved"),
            ("models:\n  - {name: a, base_url: 'http://x', price: {input_per_million: 1, output_per_million: 1}}\n  - {name: a, base_url: 'http://y', price: {input_per_million: 1, output_per_million: 1}}", "twice"),
            ("models: [{name: a, base_url: 'http://x', price: {input_per_million: -2, output_per_million: 1}}]", "input_per_million"),
            ("gateway: {context: everything}\nmodels: [{name: a, base_url: 'http://x', price: {input_per_million: 1, output_per_million: 1}}]", "gateway.context"),
            ("models: [unclosed", "YAML"),
        ]
        for (yaml, expected) in cases {
            do {
                _ = try GatewayConfiguration.parse(yaml: yaml, source: "m.yaml")
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".contains(expected) && "\(error)".hasPrefix("m.yaml: "), "\(error)")
            }
        }
    }

    @Test func apiKeysComeFromTheEnvironment() throws {
        let c = try GatewayConfiguration.parse(yaml: "models: [{name: a, base_url: 'http://x', api_key_env: KEY_A, price: {input_per_million: 1, output_per_million: 1}}]")
        #expect(try c.apiKeys(environment: ["KEY_A": "s3cret"]) == ["a": "s3cret"])
        #expect(throws: GatewayConfigurationError.self) { try c.apiKeys(environment: [:]) }
    }
}

@Suite struct GatewayLambdaYAMLTests {
    static let models = """
        models:
          - { name: a, base_url: "http://x/v1", price: { input_per_million: 1, output_per_million: 2 } }
        """

    @Test func replacesTheValueAndKeepsEverythingElse() throws {
        let yaml = "# our gateway\ngateway:\n    context: last-user   # routers trained on single queries\n    lambda: 20   # set by calibrate\n    max_attempts: 3\n" + Self.models + "\n"
        let out = try GatewayConfiguration.settingLambda(123.5, inYAML: yaml)
        #expect(out == "# our gateway\ngateway:\n    context: last-user   # routers trained on single queries\n    lambda: 123.5 # set by calibrate\n    max_attempts: 3\n" + Self.models + "\n")
        #expect(try GatewayConfiguration.parse(yaml: out).gateway.lambda == 123.5)
    }

    @Test func addsTheKeyOrTheBlock() throws {
        let noKey = "gateway:\n  max_attempts: 2\n" + Self.models
        let added = try GatewayConfiguration.settingLambda(7, inYAML: noKey)
        #expect(try GatewayConfiguration.parse(yaml: added).gateway.lambda == 7 && added.hasPrefix("gateway:\n  lambda: 7.0\n  max_attempts: 2\n"))
        let noBlock = try GatewayConfiguration.settingLambda(0.5, inYAML: Self.models)
        #expect(try GatewayConfiguration.parse(yaml: noBlock).gateway.lambda == 0.5)
        // A nested `lambda:` elsewhere is not the gateway's.
        let nested = "gateway:\n  timeout_seconds: 9\nmodels:\n  - { name: lambda, base_url: \"http://x/v1\", price: { input_per_million: 1, output_per_million: 2 } }\n"
        #expect(try GatewayConfiguration.parse(yaml: try GatewayConfiguration.settingLambda(3, inYAML: nested)).gateway.lambda == 3)
        #expect(throws: GatewayConfigurationError.self) { try GatewayConfiguration.settingLambda(-1, inYAML: Self.models) }
        #expect(throws: GatewayConfigurationError.self) { try GatewayConfiguration.settingLambda(1, inYAML: "gateway: { lambda: 2 }\n" + Self.models) }
        #expect(throws: GatewayConfigurationError.self) { try GatewayConfiguration.settingLambda(1, inYAML: "gateway:\n  lambda: 2\n") }
    }
}
