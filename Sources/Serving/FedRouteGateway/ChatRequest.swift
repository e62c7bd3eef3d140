import Foundation
import FedRouteRouters

/// A client error in OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, CustomStringConvertible, Equatable, Sendable {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Sent as `Retry-After` (rate limits).
    public var retryAfterSeconds: Int?

    public init(status: Int, message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status) \(type): \(message)" }

    /// 400 naming the offending field.
    static func invalid(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 400, message: message, param: param)
    }

    /// The JSON body.
    public var body: JSONValue {
        var e: [String: JSONValue] = ["message": .string(message), "type": .string(type)]
        e["param"] = param.map(JSONValue.string) ?? .null
        e["code"] = code.map(JSONValue.string) ?? .null
        return .object(["error": .object(e)])
    }
}

/// How the client asked for a model.
public enum ModelSelection: Sendable, Equatable {
    /// `auto`: route with the configured λ.
    case auto
    /// `route:<λ>`: route with this λ.
    case route(lambda: Double)
    /// A model by name: no routing, no fallback.
    case named(String)

    /// Parses the request's `model` field.
    public init(_ model: String) throws {
        if model == "auto" {
            self = .auto
        } else if model.hasPrefix("route:") {
            let text = model.dropFirst("route:".count)
            guard let lambda = Double(text), RouterPredictions.isValid(lambda: lambda) else {
                throw APIError.invalid("model '\(model)': the λ after 'route:' must be a finite number ≥ 0", param: "model")
            }
            self = .route(lambda: lambda)
        } else {
            guard !model.isEmpty else { throw APIError.invalid("model must not be empty", param: "model") }
            self = .named(model)
        }
    }
}

/// A validated `POST /v1/chat/completions` body.
public struct ChatRequest: Sendable, Equatable {
    public struct Message: Sendable, Equatable {
        public var role: String
        /// The message's text (text parts of multi-part content joined by newlines).
        public var text: String
    }

    /// The members the gateway interprets (`model`, `messages`, `stream`, `stream_options`,
    /// `max_completion_tokens`, `max_tokens`) as parsed, when present; what is forwarded is the original
    /// bytes with `model` (and streaming options) replaced (see `upstreamBody`).
    public var body: [String: JSONValue]
    /// Where each top-level member sits in the original bytes.
    let members: JSONMembers
    public var model: String
    public var selection: ModelSelection
    public var messages: [Message]
    public var stream: Bool
    /// Whether the client asked for the final usage chunk of a stream (`stream_options.include_usage`).
    public var includeUsage: Bool

    static let roles: Set<String> = ["system", "developer", "user", "assistant", "tool", "function"]

    /// Parses and validates a request body; every problem is a 400 naming the field.
    ///
    /// Only the members the gateway interprets are built as values (`ChatRequestMembers`); the rest is
    /// checked as JSON text. A body that does not read that way is read whole, to tell text that is not
    /// JSON from JSON that is not an object. (So a member the gateway does not interpret may hold a number
    /// no `JSONValue` represents, like `1e400`; the upstream gets it as written.)
    public init(json data: Data) throws {
        let body: [String: JSONValue]
        do { body = try ChatRequestMembers.decode(data) } catch {
            let value: JSONValue
            do { value = try JSONValue.decode(data) } catch {
                throw APIError.invalid("the request body is not valid JSON")
            }
            guard case .object(let whole) = value else { throw APIError.invalid("the request body must be a JSON object") }
            // JSON whose interpreted members did not read (the same decoder read the whole, so this is
            // not expected): validate them as the whole body has them.
            body = whole.filter { ChatRequestMembers.names.contains($0.key) }
        }
        try self.init(interpreted: body, json: data)
    }

    /// Validates the interpreted members `body` of the request body `data`.
    init(interpreted body: [String: JSONValue], json data: Data) throws {
        do { members = try JSONMembers(data) } catch let e as JSONMembers.ScanError {
            throw APIError.invalid("the request body: \(e.description)")
        }
        guard let modelValue = body["model"] else { throw APIError.invalid("'model' is required", param: "model") }
        guard let model = modelValue.stringValue else { throw APIError.invalid("'model' must be a string", param: "model") }
        guard let messagesValue = body["messages"] else { throw APIError.invalid("'messages' is required", param: "messages") }
        guard let list = messagesValue.arrayValue else { throw APIError.invalid("'messages' must be an array", param: "messages") }
        guard !list.isEmpty else { throw APIError.invalid("'messages' must contain at least one message", param: "messages") }
        var messages: [Message] = []
        for (i, m) in list.enumerated() {
            let at = "messages[\(i)]"
            guard let object = m.objectValue else { throw APIError.invalid("\(at) must be an object", param: at) }
            guard let role = object["role"]?.stringValue else { throw APIError.invalid("\(at).role must be a string", param: "\(at).role") }
            guard Self.roles.contains(role) else {
                throw APIError.invalid("\(at).role '\(role)' is not one of \(Self.roles.sorted().joined(separator: ", "))", param: "\(at).role")
            }
            let text: String
            switch object["content"] {
            case .string(let s)?: text = s
            case .null?, nil:
                // Only assistant turns carrying tool calls may omit content.
                guard role == "assistant" || role == "tool" || role == "function" else {
                    throw APIError.invalid("\(at).content is required for role '\(role)'", param: "\(at).content")
                }
                text = ""
            case .array(let parts)?:
                var texts: [String] = []
                for (j, part) in parts.enumerated() {
                    guard let p = part.objectValue, let type = p["type"]?.stringValue else {
                        throw APIError.invalid("\(at).content[\(j)] must be an object with a 'type'", param: "\(at).content[\(j)]")
                    }
                    if type == "text" {
                        guard let t = p["text"]?.stringValue else {
                            throw APIError.invalid("\(at).content[\(j)].text must be a string", param: "\(at).content[\(j)].text")
                        }
                        texts.append(t)
                    }
                }
                text = texts.joined(separator: "\n")
            default:
                throw APIError.invalid("\(at).content must be a string, an array of parts or null", param: "\(at).content")
            }
            messages.append(Message(role: role, text: text))
        }
        var stream = false
        if let s = body["stream"], s != .null {
            guard let b = s.boolValue else { throw APIError.invalid("'stream' must be a boolean", param: "stream") }
            stream = b
        }
        var includeUsage = false
        if let options = body["stream_options"], options != .null {
            guard let o = options.objectValue else { throw APIError.invalid("'stream_options' must be an object", param: "stream_options") }
            if let u = o["include_usage"], u != .null {
                guard let b = u.boolValue else { throw APIError.invalid("'stream_options.include_usage' must be a boolean", param: "stream_options.include_usage") }
                includeUsage = b
            }
        }
        self.body = body
        self.model = model
        self.selection = try ModelSelection(model)
        self.messages = messages
        self.stream = stream
        self.includeUsage = includeUsage
    }

    /// The text the router embeds: at most the last `maxCharacters` characters of the last user
    /// message (or of the whole conversation), so that routing time is bounded.
    public func routingText(_ mode: ContextMode, maxCharacters: Int = .max) throws -> String {
        let text: String
        switch mode {
        case .lastUser:
            guard let last = messages.last(where: { $0.role == "user" }), !last.text.allSatisfy(\.isWhitespace) else {
                throw APIError.invalid("routing needs a user message with text (context mode last-user)", param: "messages")
            }
            text = last.text
        case .conversation:
            let joined = messages.map(\.text).filter { !$0.isEmpty }.joined(separator: "\n\n")
            guard !joined.allSatisfy(\.isWhitespace) else { throw APIError.invalid("the conversation has no text to route on", param: "messages") }
            text = joined
        }
        // Counting characters is linear, so look at bytes first: a text with no more UTF-8 bytes than
        // the limit has no more characters either.
        guard text.utf8.count > maxCharacters else { return text }
        return String(text.suffix(maxCharacters))
    }

    /// The body sent upstream: the client's bytes with the upstream's model name, and for streams the
    /// usage chunk requested (the gateway needs it to price the answer; it drops it again if the client
    /// did not ask). Every other member goes through byte-exact.
    public func upstreamBody(model upstreamModel: String) -> Data {
        var replacements: [(key: String, value: Data)] = [("model", JSONValue.string(upstreamModel).encoded())]
        if stream {
            var options = body["stream_options"]?.objectValue ?? [:]
            options["include_usage"] = .bool(true)
            replacements.append(("stream_options", JSONValue.object(options).encoded()))
        }
        return members.replacing(replacements)
    }

    /// UTF-8 bytes of all message text, for estimating prompt tokens when the upstream reports no usage.
    var promptBytes: Int { messages.reduce(0) { $0 + $1.text.utf8.count } }
}
