import FedRouteData
import Foundation

/// Tokens of one answer: from the upstream's `usage` when it reports one, else estimated.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// True when estimated from text length (≈ 4 bytes per token).
    public var estimated: Bool

    /// fedroute's usual estimate (≈ 4 bytes per token, at least 1), as the data loaders use it.
    static func estimate(bytes: Int) -> Int { TokenEstimate.count(bytes: bytes) }

    /// Reads `usage` from a non-streamed chat completion body, estimating what it lacks.
    public static func of(completion body: Data, promptBytes: Int) -> TokenUsage {
        of(summary: try? AnswerSummary.decode(body), bodyBytes: body.count, promptBytes: promptBytes)
    }

    /// The usage of an already read answer (`bodyBytes` long; nil when it is not a JSON object).
    static func of(summary: AnswerSummary?, bodyBytes: Int, promptBytes: Int) -> TokenUsage {
        if let p = summary?.promptTokens, let c = summary?.completionTokens, p >= 0, c >= 0 {
            return TokenUsage(promptTokens: p, completionTokens: c, estimated: false)
        }
        let answerBytes = summary?.contentBytes ?? bodyBytes
        return TokenUsage(promptTokens: estimate(bytes: promptBytes), completionTokens: estimate(bytes: answerBytes), estimated: true)
    }
}

/// Splits an upstream's server-sent-event stream into events, reads the answer length and usage
/// from them, and decides which to pass on to the client.
///
/// Events are forwarded byte for byte, except the usage-only chunk (empty `choices`) that the
/// gateway itself asked for when the client did not.
public struct SSEScanner: Sendable {
    /// Whether the client asked for the usage chunk.
    public let clientWantsUsage: Bool
    private var pending: [UInt8] = []
    public private(set) var usage: (prompt: Int, completion: Int)?
    public private(set) var contentBytes = 0
    public private(set) var sawDone = false
    /// An `error` object the upstream sent inside the stream.
    public private(set) var upstreamError: String?

    public init(clientWantsUsage: Bool) {
        self.clientWantsUsage = clientWantsUsage
    }

    /// Feeds bytes; returns the complete events to forward (each with its terminating blank line).
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        pending.append(contentsOf: bytes)
        var out: [UInt8] = []
        while let (end, next) = Self.eventBoundary(in: pending) {
            let event = Array(pending[..<end])
            let raw = Array(pending[..<next])
            pending.removeSubrange(..<next)
            if inspect(event) { out += raw }
        }
        return out
    }

    /// Whatever is left when the stream ends (an unterminated last event), forwarded as is.
    public mutating func finish() -> [UInt8] {
        defer { pending.removeAll() }
        guard !pending.isEmpty else { return [] }
        return inspect(pending) ? pending : []
    }

    /// End of the first event and start of the next: the first blank line ("\n\n" or "\r\n\r\n").
    static func eventBoundary(in b: [UInt8]) -> (Int, Int)? {
        var i = 0
        while i + 1 < b.count {
            if b[i] == 0x0A, b[i + 1] == 0x0A { return (i, i + 2) }
            if b[i] == 0x0D, i + 3 < b.count, b[i + 1] == 0x0A, b[i + 2] == 0x0D, b[i + 3] == 0x0A { return (i, i + 4) }
            i += 1
        }
        return nil
    }

    /// Reads one event; false when it must not reach the client.
    private mutating func inspect(_ event: [UInt8]) -> Bool {
        let text = String(decoding: event, as: UTF8.self)
        var data: [Substring] = []
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) where line.hasPrefix("data:") {
            var d = line.dropFirst(5)
            if d.first == " " { d = d.dropFirst() }
            data.append(d)
        }
        guard !data.isEmpty else { return true }
        let payload = data.joined(separator: "\n")
        if payload == "[DONE]" {
            sawDone = true
            return true
        }
        guard let json = try? JSONValue.decode(Data(payload.utf8)) else { return true }
        if let e = json["error"] {
            upstreamError = e["message"]?.stringValue ?? String(decoding: e.encoded(), as: UTF8.self)
        }
        for choice in json["choices"]?.arrayValue ?? [] {
            contentBytes += choice["delta"]?["content"]?.stringValue?.utf8.count ?? 0
        }
        if let u = json["usage"], let p = u["prompt_tokens"]?.intValue, let c = u["completion_tokens"]?.intValue {
            usage = (p, c)
            if !clientWantsUsage, json["choices"]?.arrayValue?.isEmpty ?? true { return false }
        }
        return true
    }

    /// Usage of the streamed answer.
    public func tokenUsage(promptBytes: Int) -> TokenUsage {
        if let usage { return TokenUsage(promptTokens: usage.prompt, completionTokens: usage.completion, estimated: false) }
        return TokenUsage(promptTokens: TokenUsage.estimate(bytes: promptBytes), completionTokens: TokenUsage.estimate(bytes: contentBytes), estimated: true)
    }
}
