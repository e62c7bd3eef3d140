import FedRouteGateway
import Foundation

/// The gateway's reading of an upstream's answer: a server-sent-event stream fed in chunks whose
/// sizes the input's first bytes choose (events split anywhere, as TCP delivers them), and the
/// same bytes as a non-streamed completion body.
enum SSEFuzzTarget {
    static func run(_ input: Data) {
        let bytes = [UInt8](input)
        let sizes = bytes.prefix(4).map { Int($0 % 64) + 1 }
        let stream = bytes.dropFirst(min(4, bytes.count))
        for wantsUsage in [false, true] {
            var scanner = SSEScanner(clientWantsUsage: wantsUsage)
            var start = stream.startIndex, chunk = 0
            var forwarded = 0
            while start < stream.endIndex {
                let end = min(stream.endIndex, start + (sizes.isEmpty ? stream.count : sizes[chunk % sizes.count]))
                forwarded += scanner.feed(stream[start..<end]).count
                start = end
                chunk += 1
            }
            forwarded += scanner.finish().count
            // Nothing is invented: at most what came in is passed on.
            precondition(forwarded <= stream.count, "the SSE scanner forwarded \(forwarded) bytes of \(stream.count)")
            _ = scanner.tokenUsage(promptBytes: stream.count)
        }
        _ = TokenUsage.of(completion: Data(stream), promptBytes: bytes.count)
    }

    /// Streams as OpenAI-compatible upstreams send them (the first 4 bytes are chunk sizes).
    static func seeds() -> [FuzzSeed] {
        let chunk = #"data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#
        let usage = #"data: {"id":"c1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#
        return [
            ("stream.txt", "\u{07}\u{13}\u{1f}\u{03}" + chunk + "\n\n" + chunk + "\n\n" + usage + "\n\ndata: [DONE]\n\n"),
            ("crlf.txt", "\u{3f}\u{3f}\u{3f}\u{3f}" + chunk + "\r\n\r\n: keep-alive\r\n\r\n" + "data: [DONE]\r\n\r\n"),
            ("error.txt", "\u{01}\u{02}\u{03}\u{04}" + #"data: {"error":{"message":"overloaded","type":"server_error"}}"# + "\n\n"),
            ("multiline.txt", "\u{10}\u{10}\u{10}\u{10}" + "event: message\ndata: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\n"),
            ("completion.txt", "\u{40}\u{40}\u{40}\u{40}" + #"{"choices":[{"message":{"role":"assistant","content":"4"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#),
        ].map { FuzzSeed(name: $0.0, data: Data($0.1.utf8)) }
    }
}
