import Foundation

/// What the gateway reads from a non-streamed chat completion: that it is a JSON object, the token
/// counts of its `usage`, and the length of its choices' message contents (to estimate tokens when the
/// upstream reports none). Everything else in the answer is checked as JSON text and skipped, instead of
/// being built into a `JSONValue` tree.
///
/// Only the top level must be an object: a `usage` or `choices` of an unexpected shape counts as
/// missing, as it did when the answer was read as a `JSONValue`.
struct AnswerSummary: Decodable, Equatable {
    /// `usage.prompt_tokens` and `usage.completion_tokens` when they are whole numbers.
    var promptTokens: Int?
    var completionTokens: Int?
    /// UTF-8 bytes of every `choices[i].message.content` string; nil when `choices` is not an array.
    var contentBytes: Int?

    private enum Key: String, CodingKey {
        case usage, choices, message, content
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
    }

    init(from decoder: any Decoder) throws {
        let top = try decoder.container(keyedBy: Key.self)
        if let usage = try? top.nestedContainer(keyedBy: Key.self, forKey: .usage) {
            promptTokens = Self.whole(usage, .promptTokens)
            completionTokens = Self.whole(usage, .completionTokens)
        }
        if var choices = try? top.nestedUnkeyedContainer(forKey: .choices) {
            var bytes = 0
            while !choices.isAtEnd {
                // `ContentBytes` never throws, so each element is consumed whatever its shape.
                guard let choice = try? choices.decode(ContentBytes.self) else { break }
                bytes += choice.bytes
            }
            contentBytes = bytes
        }
    }

    /// Parses an answer body; throws when it is not JSON or not an object.
    static func decode(_ data: Data) throws -> AnswerSummary {
        try JSONDecoder().decode(AnswerSummary.self, from: data)
    }

    /// Foundation's decoder reads a whole number written as `5.0` or `2e1` as an integer too.
    private static func whole(_ c: KeyedDecodingContainer<Key>, _ key: Key) -> Int? {
        (try? c.decode(Int64.self, forKey: key)).flatMap { Int(exactly: $0) }
    }

    /// One element of `choices`: the UTF-8 length of its `message.content` string, 0 for any other shape.
    private struct ContentBytes: Decodable {
        var bytes = 0
        init(from decoder: any Decoder) {
            guard let choice = try? decoder.container(keyedBy: Key.self),
                  let message = try? choice.nestedContainer(keyedBy: Key.self, forKey: .message),
                  let content = try? message.decode(String.self, forKey: .content)
            else { return }
            bytes = content.utf8.count
        }
    }
}
