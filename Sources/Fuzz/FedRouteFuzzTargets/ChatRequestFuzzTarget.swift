import FedRouteGateway
import Foundation

/// The gateway's chat-completion request handling up to routing: parsing, the text each context
/// mode routes on, and the body sent upstream.
enum ChatRequestFuzzTarget {
    static func run(_ input: Data) {
        guard let request = try? ChatRequest(json: input) else { return }
        for mode in ContextMode.allCases { _ = try? request.routingText(mode) }
        _ = request.upstreamBody(model: "upstream-model")
        _ = try? ModelSelection(request.model)
    }

    /// Requests as OpenAI-compatible clients send them.
    static func seeds() -> [FuzzSeed] {
        [
            ("simple.json", #"{"model":"fedroute/auto","messages":[{"role":"user","content":"What is 2+2?"}]}"#),
            ("stream.json", #"{"model":"fedroute/auto@0.5","stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"Name a prime"}]}"#),
            ("parts.json", #"{"model":"gpt-4","messages":[{"role":"user","content":[{"type":"text","text":"Describe"},{"type":"image_url","image_url":{"url":"data:,"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}"#),
            ("escapes.json", #"{"model":"fedroute/auto","messages":[{"role":"user","content":"\u00e9\ud83d\ude00\n\"quoted\""}],"max_tokens":16}"#),
        ].map { FuzzSeed(name: $0.0, data: Data($0.1.utf8)) }
    }
}
