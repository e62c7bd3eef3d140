import Foundation
@testable import FedRouteGateway
import Testing
import FedRouteData
import FedRouteNumerics

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

    /// The request as the gateway read it before `ChatRequestMembers`: the whole body as a `JSONValue` tree,
    /// its interpreted members validated the same way.
    static func treeRequest(_ data: Data) throws -> ChatRequest {
        let value: JSONValue
        do { value = try JSONValue.decode(data) } catch { throw APIError.invalid("the request body is not valid JSON") }
        guard case .object(let whole) = value else { throw APIError.invalid("the request body must be a JSON object") }
        return try ChatRequest(interpreted: whole.filter { ChatRequestMembers.names.contains($0.key) }, json: data)
    }

    /// Reading only the interpreted members gives the request (or the 400) that reading the whole tree gave:
    /// messages of every shape and kind of content, null and odd-typed members, escapes, and bodies that are
    /// not objects or not JSON.
    @Test func theInterpretedMembersReadAsTheWholeTreeDid() {
        let user = #"{"role": "user", "content": "hi"}"#
        var bodies = [
            #"{"model": "auto", "messages": [\#(user)], "temperature": 0.2, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"a": [1, 2.5, null, true]}}}]}"#,
            #"{"model": "route:0.5", "stream": true, "stream_options": {"include_usage": false, "x": 1}, "messages": [{"role": "system", "content": "s"}, \#(user)]}"#,
            #"{"model": "auto", "stream": null, "stream_options": null, "max_tokens": null, "max_completion_tokens": 12.0, "messages": [\#(user)]}"#,
            #"{"model": "auto", "max_completion_tokens": null, "max_tokens": 40, "messages": [\#(user)]}"#,
            #"{"model": "auto", "max_tokens": "40", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}}, {"type": "text", "text": "b\u00e9\ud83d\ude00"}]}]}"#,
            #"{"model": "gpt", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]}, {"role": "tool", "content": "r"}, \#(user)]}"#,
            #"{"model": "auto", "messages": [\#(user), 3]}"#, #"{"model": "auto", "messages": [null]}"#, #"{"model": "auto", "messages": [[\#(user)]]}"#,
            #"{"model": "auto", "messages": ["hi"]}"#, #"{"model": "auto", "messages": []}"#, #"{"model": "auto", "messages": {}}"#,
            #"{"model": "auto", "messages": "hi"}"#, #"{"model": "auto", "messages": null}"#, #"{"model": "auto"}"#, #"{"messages": [\#(user)]}"#,
            #"{"model": 7, "messages": [\#(user)]}"#, #"{"model": null, "messages": [\#(user)]}"#, #"{"model": "route:x", "messages": [\#(user)]}"#,
            #"{"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}"#, #"{"model": "auto", "messages": [{"role": 1, "content": "x"}]}"#,
            #"{"model": "auto", "messages": [{"role": "user"}]}"#, #"{"model": "auto", "messages": [{"role": "user", "content": 5}]}"#,
            #"{"model": "auto", "messages": [{"role": "user", "content": [{"type": "text"}]}]}"#, #"{"model": "auto", "messages": [{"role": "user", "content": [7]}]}"#,
            #"{"model": "auto", "stream": "yes", "messages": [\#(user)]}"#, #"{"model": "auto", "stream_options": [], "messages": [\#(user)]}"#,
            #"{"model": "auto", "stream_options": {"include_usage": 1}, "messages": [\#(user)]}"#,
            #"{"model": "auto", "messages": [{"role": "user", "content": "x", "name": {"deep": [[[{}]]]}}], "n": 18446744073709551616}"#,
            #"[{"model": "auto"}]"#, #""text""#, "42", "null", "", "{", #"{"model": "auto", "messages": [\#(user)]"#, #"{"model": "auto",}"#,
            #"{"model": "auto", "messages": [\#(user)]} trailing"#, "<html></html>", #"{"model": "a\"b\\c\/d\u0041", "messages": [\#(user)]}"#,
        ]
        // Every prefix of a valid body: truncated requests.
        let valid = bodies[1]
        for cut in stride(from: 1, to: valid.utf8.count, by: 7) { bodies.append(String(decoding: Array(valid.utf8.prefix(cut)), as: UTF8.self)) }
        for text in bodies {
            let data = Data(text.utf8)
            #expect(Outcome { try ChatRequest(json: data) } == Outcome { try Self.treeRequest(data) }, "\(text)")
        }
    }

    /// Where the two readings differ: a member the gateway does not interpret is only checked as JSON text,
    /// so a number no `JSONValue` holds (beyond Double) reaches the upstream as the client wrote it, where
    /// the whole-tree reading refused the request.
    @Test func anUninterpretedNumberBeyondDoubleIsForwardedAsWritten() throws {
        let data = Data(#"{"model": "auto", "logit_bias": {"50256": 1e400}, "messages": [{"role": "user", "content": "hi"}]}"#.utf8)
        #expect(throws: APIError.invalid("the request body is not valid JSON")) { try Self.treeRequest(data) }
        let request = try ChatRequest(json: data)
        #expect(String(decoding: request.upstreamBody(model: "m"), as: UTF8.self).contains(#""logit_bias": {"50256": 1e400}"#))
    }

    /// A parsed request or the error its parsing threw.
    enum Outcome: Equatable {
        case request(ChatRequest)
        case rejected(APIError)
        case failed(String)

        init(_ parse: () throws -> ChatRequest) {
            do { self = .request(try parse()) } catch let e as APIError { self = .rejected(e) } catch { self = .failed("\(error)") }
        }
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

    /// The usage as the gateway read it before `AnswerSummary`: the whole answer as a `JSONValue` tree.
    static func treeUsage(_ body: Data, promptBytes: Int) -> (isObject: Bool, usage: TokenUsage) {
        let json = try? JSONValue.decode(body)
        if let u = json?["usage"], let p = u["prompt_tokens"]?.intValue, let c = u["completion_tokens"]?.intValue, p >= 0, c >= 0 {
            return (json?.objectValue != nil, TokenUsage(promptTokens: p, completionTokens: c, estimated: false))
        }
        let answerBytes = json?["choices"]?.arrayValue?.reduce(0) { $0 + ($1["message"]?["content"]?.stringValue?.utf8.count ?? 0) } ?? body.count
        return (json?.objectValue != nil, TokenUsage(
            promptTokens: TokenUsage.estimate(bytes: promptBytes), completionTokens: TokenUsage.estimate(bytes: answerBytes), estimated: true))
    }

    /// Reading only `usage` and the contents' lengths gives what reading the whole tree gave, for answers of
    /// every shape: odd `usage` and `choices` values count as missing, and only a top level that is not an
    /// object (or not JSON) fails.
    @Test func theAnswerSummaryReadsWhatTheWholeTreeGave() {
        let shapes = [
            #"{"choices":[{"message":{"content":"héllo wörld"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
            #"{"usage":{"prompt_tokens":5.0,"completion_tokens":2e1},"choices":[]}"#,
            #"{"usage":{"prompt_tokens":5.5,"completion_tokens":2}}"#,
            #"{"usage":{"prompt_tokens":"5","completion_tokens":2},"choices":[{"message":{"content":"abc"}}]}"#,
            #"{"usage":{"prompt_tokens":-1,"completion_tokens":2},"choices":[{"message":{"content":"abcdefghijk"}}]}"#,
            #"{"usage":{"prompt_tokens":99999999999999999999,"completion_tokens":2}}"#,
            #"{"usage":{"prompt_tokens":null,"completion_tokens":2}}"#,
            #"{"usage":[1,2],"choices":{"message":{"content":"not an array"}}}"#,
            #"{"usage":"none","choices":"none"}"#,
            #"{"choices":[1,"x",null,{"message":null},{"message":{"content":7}},{"message":{"content":"abcd"}},[{"message":{"content":"x"}}]]}"#,
            #"{"choices":[{"message":{"content":"a\u00e9\ud83d\ude00\n"},"finish_reason":"stop","logprobs":{"content":[{"t":1}]}}],"id":"x","extra":[true,false,null,{"deep":[[[]]]}]}"#,
            #"{"usage":{"completion_tokens":3}}"#,
            #"{}"#, #"[]"#, #"[{"usage":{"prompt_tokens":1,"completion_tokens":1}}]"#, #""text""#, #"42"#, #"null"#, #"true"#,
            "<html>502 Bad Gateway</html>", "", #"{"choices":[{"message":{"content":"abc"}}]"#, #"{"usage":{"prompt_tokens":1,"completion_tokens":1}} trailing"#,
        ]
        for (i, text) in shapes.enumerated() {
            let body = Data(text.utf8)
            let reference = Self.treeUsage(body, promptBytes: 10 * i)
            #expect(((try? AnswerSummary.decode(body)) != nil) == reference.isObject, "\(text)")
            #expect(TokenUsage.of(completion: body, promptBytes: 10 * i) == reference.usage, "\(text)")
        }
        // Random answers: `usage` and `choices` of random shapes among random members.
        var rng = SeededRandom(seed: 19)
        for round in 0..<400 {
            var members: [String: JSONValue] = [:]
            for _ in 0..<rng.nextInt(below: 4) { members["k\(rng.nextInt(below: 9))"] = Self.randomValue(&rng, depth: 2) }
            if rng.nextInt(below: 4) != 0 {
                members["usage"] = rng.nextInt(below: 3) == 0
                    ? Self.randomValue(&rng, depth: 2)
                    : .object(["prompt_tokens": Self.randomNumber(&rng), "completion_tokens": Self.randomNumber(&rng)])
            }
            if rng.nextInt(below: 4) != 0 {
                members["choices"] = rng.nextInt(below: 4) == 0 ? Self.randomValue(&rng, depth: 2) : .array((0..<rng.nextInt(below: 4)).map { _ in
                    guard rng.nextInt(below: 3) != 0 else { return Self.randomValue(&rng, depth: 2) }
                    let content = rng.nextInt(below: 5) == 0 ? Self.randomValue(&rng, depth: 1) : .string(Self.randomText(&rng))
                    return .object(["message": .object(["content": content])])
                })
            }
            let body = JSONValue.object(members).encoded()
            let reference = Self.treeUsage(body, promptBytes: round)
            #expect(reference.isObject && (try? AnswerSummary.decode(body)) != nil)
            #expect(TokenUsage.of(completion: body, promptBytes: round) == reference.usage, "\(String(decoding: body, as: UTF8.self))")
        }
    }

    static func randomNumber(_ rng: inout SeededRandom) -> JSONValue {
        switch rng.nextInt(below: 5) {
        case 0: .integer(Int64(rng.nextInt(below: 2000)) - 100)
        case 1: .number(Double(rng.nextInt(below: 200)))
        case 2: .number(Double(rng.nextInt(below: 2000)) / 8 - 10)
        case 3: .string("\(rng.nextInt(below: 50))")
        default: .null
        }
    }

    static func randomText(_ rng: inout SeededRandom) -> String {
        let pieces = ["a", "é", "🙂", "\n", "\"", "\\", "/", " ", "字", "\u{1}"]
        return (0..<rng.nextInt(below: 12)).map { _ in pieces[rng.nextInt(below: pieces.count)] }.joined()
    }

    static func randomValue(_ rng: inout SeededRandom, depth: Int) -> JSONValue {
        switch rng.nextInt(below: depth > 0 ? 8 : 6) {
        case 0: return .null
        case 1: return .bool(rng.nextInt(below: 2) == 0)
        case 2: return randomNumber(&rng)
        case 3, 4: return .string(randomText(&rng))
        case 5: return .integer(Int64(rng.nextInt(below: 100)))
        case 6: return .array((0..<rng.nextInt(below: 4)).map { _ in randomValue(&rng, depth: depth - 1) })
        default:
            var o: [String: JSONValue] = [:]
            for _ in 0..<rng.nextInt(below: 4) { o[["content", "message", "usage", "x"][rng.nextInt(below: 4)]] = randomValue(&rng, depth: depth - 1) }
            return .object(o)
        }
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
