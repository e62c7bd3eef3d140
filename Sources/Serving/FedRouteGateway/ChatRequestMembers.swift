import Foundation

/// The members of a chat request's body that the gateway interprets (`model`, `messages`, `stream`,
/// `stream_options`, `max_completion_tokens`, `max_tokens`), read from the JSON text without building
/// the rest of the body: every other member is checked as JSON and skipped, and reaches the upstream as
/// the client's bytes (`JSONMembers`).
///
/// A member that is present holds its value, `null` included (`.null`), as in a `JSONValue` object; each
/// message that is an object is read straight into a dictionary, so that a request's values need no
/// guessing of their kinds beyond its messages' contents.
struct ChatRequestMembers: Decodable {
    /// The interpreted members that are present.
    var members: [String: JSONValue] = [:]

    private enum Key: String, CodingKey, CaseIterable {
        case model, messages, stream
        case streamOptions = "stream_options"
        case maxCompletionTokens = "max_completion_tokens"
        case maxTokens = "max_tokens"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        for key in Key.allCases where c.contains(key) {
            if key == .messages, var list = try? c.nestedUnkeyedContainer(forKey: key) {
                var messages: [JSONValue] = []
                while !list.isAtEnd {
                    // A failed decode does not consume the element: a message that is not an object is
                    // read again as whatever it is, for the validation to name.
                    if let object = try? list.decode([String: JSONValue].self) {
                        messages.append(.object(object))
                    } else {
                        messages.append(try list.decode(JSONValue.self))
                    }
                }
                members[key.rawValue] = .array(messages)
            } else {
                members[key.rawValue] = try c.decode(JSONValue.self, forKey: key)
            }
        }
    }

    /// The names of the interpreted members.
    static let names = Set(Key.allCases.map(\.rawValue))

    /// The interpreted members of `data`; throws when it is not JSON or not an object.
    static func decode(_ data: Data) throws -> [String: JSONValue] {
        try JSONDecoder().decode(ChatRequestMembers.self, from: data).members
    }
}
