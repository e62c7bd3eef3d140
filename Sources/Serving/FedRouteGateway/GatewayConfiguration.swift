import FedRouteData
import FedRouteRouters
import Foundation
import Yams

/// What text of a conversation the router embeds.
public enum ContextMode: String, Sendable, Codable, CaseIterable {
    /// The last user message (what routers trained on single queries expect).
    case lastUser = "last-user"
    /// Every message's text, in order, joined by blank lines.
    case conversation
}

/// One model the gateway can call: its name in the router file, its OpenAI-compatible upstream and price.
public struct ModelEndpoint: Sendable, Codable, Equatable {
    /// The model's name in the router file and in client requests.
    public var name: String
    /// The upstream's API root, e.g. `https://api.openai.com/v1`; the gateway posts to `<base_url>/chat/completions`.
    public var baseURL: String
    /// Environment variable holding the upstream's API key (sent as `Authorization: Bearer`); none for open upstreams.
    public var apiKeyEnv: String?
    /// The model name the upstream expects; defaults to `name`.
    public var upstreamModel: String?
    /// USD per million input and output tokens (`price: {input_per_million, output_per_million}`).
    public var price: TokenPrice

    public init(name: String, baseURL: String, apiKeyEnv: String? = nil, upstreamModel: String? = nil, price: TokenPrice) {
        self.name = name
        self.baseURL = baseURL
        self.apiKeyEnv = apiKeyEnv
        self.upstreamModel = upstreamModel
        self.price = price
    }

    /// `<base_url>/chat/completions`.
    public var chatCompletionsURL: String {
        (baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL) + "/chat/completions"
    }

    enum CodingKeys: String, CodingKey {
        case name, price
        case baseURL = "base_url"
        case apiKeyEnv = "api_key_env"
        case upstreamModel = "upstream_model"
    }

    /// The YAML spelling of a price.
    struct PriceKeys: Codable {
        var input_per_million: Double
        var output_per_million: Double
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        baseURL = try c.decode(String.self, forKey: .baseURL)
        apiKeyEnv = try c.decodeIfPresent(String.self, forKey: .apiKeyEnv)
        upstreamModel = try c.decodeIfPresent(String.self, forKey: .upstreamModel)
        let p = try c.decode(PriceKeys.self, forKey: .price)
        price = TokenPrice(input: p.input_per_million, output: p.output_per_million)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(baseURL, forKey: .baseURL)
        try c.encodeIfPresent(apiKeyEnv, forKey: .apiKeyEnv)
        try c.encodeIfPresent(upstreamModel, forKey: .upstreamModel)
        try c.encode(PriceKeys(input_per_million: price.input, output_per_million: price.output), forKey: .price)
    }
}

/// The gateway's `models.yaml`.
///
/// ```yaml
/// gateway:
///   lambda: 20              # λ for requests with model "auto"
///   context: last-user      # or conversation
///   max_attempts: 3         # models tried per request: the chosen one, then fallbacks
///   timeout_seconds: 120    # per upstream call
///   connect_timeout_seconds: 2   # an unreachable upstream is given up after this
///   max_routing_characters: 8000 # the router embeds at most the last N characters of the routing text
///   max_body_bytes: 4194304      # larger request bodies get 413
///   idle_timeout_seconds: 30     # a connection with no request in flight (or a head not finished) is closed
///   body_timeout_seconds: 30     # a request body not received in full by then gets 408
///   key_cache_seconds: 1         # a key read from the store is reused this long (0: read every request)
/// models:
///   - name: gpt-4
///     base_url: https://api.openai.com/v1
///     api_key_env: OPENAI_API_KEY
///     price: { input_per_million: 30, output_per_million: 60 }
/// ```
public struct GatewayConfiguration: Sendable, Codable, Equatable {
    public struct Settings: Sendable, Codable, Equatable {
        public var lambda: Double
        public var context: ContextMode
        public var maxAttempts: Int
        public var timeoutSeconds: Double
        /// How long to keep trying to connect to an upstream before falling back.
        public var connectTimeoutSeconds: Double
        /// The router embeds at most this many characters: the last ones of the routing text (the end
        /// of a long message or conversation is what the model is asked to answer), so routing time is
        /// bounded whatever a client sends. The whole request is still forwarded.
        public var maxRoutingCharacters: Int
        /// Largest request body accepted (413 above it).
        public var maxBodyBytes: Int
        /// A connection with no request in flight is closed after this; it also bounds how long a
        /// request head may take to arrive (slow or half-open clients).
        public var idleTimeoutSeconds: Double
        /// A request body must arrive in full within this (408 otherwise).
        public var bodyTimeoutSeconds: Double
        /// How long a key read from the store is reused before it is read again (0: every request). A
        /// revocation or expiry reaches every replica within this; budgets are always checked in the store.
        public var keyCacheSeconds: Double

        public init(
            lambda: Double = 0, context: ContextMode = .lastUser, maxAttempts: Int = 3, timeoutSeconds: Double = 120, connectTimeoutSeconds: Double = 2,
            maxRoutingCharacters: Int = 8000, maxBodyBytes: Int = 4 << 20, idleTimeoutSeconds: Double = 30, bodyTimeoutSeconds: Double = 30,
            keyCacheSeconds: Double = 1
        ) {
            self.keyCacheSeconds = keyCacheSeconds
            self.lambda = lambda
            self.context = context
            self.maxAttempts = maxAttempts
            self.timeoutSeconds = timeoutSeconds
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.maxRoutingCharacters = maxRoutingCharacters
            self.maxBodyBytes = maxBodyBytes
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.bodyTimeoutSeconds = bodyTimeoutSeconds
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Settings()
            lambda = try c.decodeIfPresent(Double.self, forKey: .lambda) ?? d.lambda
            context = try c.decodeIfPresent(ContextMode.self, forKey: .context) ?? d.context
            maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? d.maxAttempts
            timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? d.timeoutSeconds
            connectTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .connectTimeoutSeconds) ?? d.connectTimeoutSeconds
            maxRoutingCharacters = try c.decodeIfPresent(Int.self, forKey: .maxRoutingCharacters) ?? d.maxRoutingCharacters
            maxBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? d.maxBodyBytes
            idleTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .idleTimeoutSeconds) ?? d.idleTimeoutSeconds
            bodyTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .bodyTimeoutSeconds) ?? d.bodyTimeoutSeconds
            keyCacheSeconds = try c.decodeIfPresent(Double.self, forKey: .keyCacheSeconds) ?? d.keyCacheSeconds
        }

        enum CodingKeys: String, CodingKey {
            case lambda, context
            case maxAttempts = "max_attempts"
            case timeoutSeconds = "timeout_seconds"
            case connectTimeoutSeconds = "connect_timeout_seconds"
            case maxRoutingCharacters = "max_routing_characters"
            case maxBodyBytes = "max_body_bytes"
            case idleTimeoutSeconds = "idle_timeout_seconds"
            case bodyTimeoutSeconds = "body_timeout_seconds"
            case keyCacheSeconds = "key_cache_seconds"
        }
    }

    public var gateway: Settings
    public var models: [ModelEndpoint]

    public init(gateway: Settings = Settings(), models: [ModelEndpoint]) throws {
        self.gateway = gateway
        self.models = models
        try validate(source: "configuration")
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        gateway = try c.decodeIfPresent(Settings.self, forKey: .gateway) ?? Settings()
        models = try c.decode([ModelEndpoint].self, forKey: .models)
    }

    enum CodingKeys: String, CodingKey { case gateway, models }

    /// Reads and checks a `models.yaml`.
    public static func load(path: String) throws -> GatewayConfiguration {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw GatewayConfigurationError(source: path, message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(yaml: text, source: path)
    }

    /// Parses and checks YAML text; `source` names it in errors.
    public static func parse(yaml: String, source: String = "models.yaml") throws -> GatewayConfiguration {
        let config: GatewayConfiguration
        guard yaml.contains(where: { !$0.isWhitespace }) else {
            throw GatewayConfigurationError(source: source, message: "the file is empty; it needs a 'models:' list (see docs/GATEWAY.md)")
        }
        do { config = try YAMLDecoder().decode(GatewayConfiguration.self, from: yaml) } catch let e as DecodingError {
            throw GatewayConfigurationError(source: source, message: describe(e))
        } catch {
            throw GatewayConfigurationError(source: source, message: "not valid YAML: \(error)")
        }
        try config.validate(source: source)
        return config
    }

    func validate(source: String) throws {
        func fail(_ m: String) -> GatewayConfigurationError { GatewayConfigurationError(source: source, message: m) }
        guard RouterPredictions.isValid(lambda: gateway.lambda) else { throw fail("gateway.lambda must be a finite number ≥ 0, not \(gateway.lambda)") }
        guard gateway.maxAttempts >= 1 else { throw fail("gateway.max_attempts must be at least 1") }
        guard gateway.timeoutSeconds.isFinite, gateway.timeoutSeconds > 0 else { throw fail("gateway.timeout_seconds must be positive") }
        guard gateway.connectTimeoutSeconds.isFinite, gateway.connectTimeoutSeconds > 0 else { throw fail("gateway.connect_timeout_seconds must be positive") }
        guard (100...10_000_000).contains(gateway.maxRoutingCharacters) else { throw fail("gateway.max_routing_characters must be in 100…10000000") }
        guard (1024...(256 << 20)).contains(gateway.maxBodyBytes) else { throw fail("gateway.max_body_bytes must be in 1024…268435456") }
        for (field, v) in [("idle_timeout_seconds", gateway.idleTimeoutSeconds), ("body_timeout_seconds", gateway.bodyTimeoutSeconds)] {
            guard v.isFinite, v > 0, v <= 86_400 else { throw fail("gateway.\(field) must be in (0, 86400]") }
        }
        guard gateway.keyCacheSeconds.isFinite, (0...3600).contains(gateway.keyCacheSeconds) else { throw fail("gateway.key_cache_seconds must be in [0, 3600]") }
        guard !models.isEmpty else { throw fail("models: the list is empty") }
        var seen = Set<String>()
        for (i, m) in models.enumerated() {
            let at = "models[\(i)] (\(m.name))"
            guard !m.name.isEmpty else { throw fail("models[\(i)].name is empty") }
            guard seen.insert(m.name).inserted else { throw fail("\(at): the name appears twice") }
            guard m.name != "auto", !m.name.hasPrefix("route:") else { throw fail("\(at): 'auto' and 'route:…' are reserved for routing") }
            guard let url = URL(string: m.baseURL), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
                throw fail("\(at).base_url '\(m.baseURL)' is not an http(s) URL")
            }
            for (field, v) in [("input_per_million", m.price.input), ("output_per_million", m.price.output)] {
                guard v.isFinite, v >= 0 else { throw fail("\(at).price.\(field) must be a finite number ≥ 0, not \(v)") }
            }
        }
    }

    /// The API key of every model that names an environment variable; a named but unset variable is an error.
    public func apiKeys(environment: [String: String]) throws -> [String: String] {
        var keys: [String: String] = [:]
        for m in models {
            guard let variable = m.apiKeyEnv else { continue }
            guard let key = environment[variable], !key.isEmpty else {
                throw GatewayConfigurationError(source: "environment", message: "model '\(m.name)' takes its API key from $\(variable), which is not set")
            }
            keys[m.name] = key
        }
        return keys
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ p: [any CodingKey]) -> String {
            p.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error {
        case .keyNotFound(let key, let ctx): return "\(path(ctx.codingPath + [key])) is missing"
        case .typeMismatch(let type, let ctx): return "\(path(ctx.codingPath)) should be \(type)"
        case .valueNotFound(let type, let ctx): return "\(path(ctx.codingPath)) should be \(type), found nothing"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "not valid YAML: \(ctx.debugDescription)" : "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// A `models.yaml` (or the environment it names) that cannot be used.
public struct GatewayConfigurationError: Error, CustomStringConvertible {
    public var source: String
    public var message: String
    public var description: String { "\(source): \(message)" }
}
