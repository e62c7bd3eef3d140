import FedRouteGatewayStore
import Foundation
import Logging

/// Who may call the gateway: anyone (`--no-auth`, for local use), or holders of virtual keys.
public enum GatewayAccess: Sendable {
    /// No authentication: every caller is anonymous, admin routes are open.
    case open
    /// `Authorization: Bearer sk-fr-…` with a key the store knows, hashed with this secret.
    case keys(KeySecret)
}

/// The caller of one request.
public enum Caller: Sendable, Equatable {
    /// Authentication is off.
    case anonymous
    /// An active virtual key (as read from the store for this request).
    case key(VirtualKey)

    /// The key's id, recorded with the request; nil for anonymous callers.
    public var keyID: String? { if case .key(let k) = self { k.id } else { nil } }
    /// The key's policy; nil for anonymous callers (no limits).
    public var policy: VirtualKey.Policy? { if case .key(let k) = self { k.policy } else { nil } }
    /// Whether the caller may use the admin routes.
    public var isAdmin: Bool {
        switch self {
        case .anonymous: true
        case .key(let k): k.policy.admin
        }
    }
}

extension Gateway {
    /// Longest `Authorization` value looked at.
    static let maxAuthorizationBytes = 512

    /// The caller behind an `Authorization` header value; throws the `APIError` to answer (401, or 503
    /// when the store cannot be read). Runs before the body is read.
    public func authenticate(authorization: String?) async throws(APIError) -> Caller {
        guard case .keys(let secret) = access else { return .anonymous }
        func unauthorized(_ message: String) -> APIError {
            APIError(status: 401, message: message, type: "invalid_request_error", code: "invalid_api_key")
        }
        guard let header = authorization, !header.isEmpty else {
            throw unauthorized("no API key: send 'Authorization: Bearer <key>' (keys come from `fedroute keys create`)")
        }
        guard header.utf8.count <= Self.maxAuthorizationBytes, header.lowercased().hasPrefix("bearer ") else {
            throw unauthorized("the Authorization header must be 'Bearer <key>'")
        }
        let presented = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        let hash = secret.hash(presented)
        let ttl = Duration.nanoseconds(Int64(routing.configuration.gateway.keyCacheSeconds * 1e9))
        var key = keyCache.key(hash: hash, ttl: ttl)
        if key == nil {
            do {
                key = try await store.key(hash: hash)
                if let key { keyCache.store(key) }
            } catch {
                logger.error("key lookup failed", metadata: ["error": "\(error)"])
                throw APIError(status: 503, message: "the key store cannot be read; try again", type: "server_error", code: "key_store_unavailable")
            }
        }
        guard let key else { throw unauthorized("the API key is not valid") }
        switch key.status() {
        case .active: return .key(key)
        case .revoked: throw unauthorized("the API key '\(key.hint)' was revoked")
        case .expired: throw unauthorized("the API key '\(key.hint)' has expired")
        }
    }

    /// The caller, who must hold an admin key (anyone with authentication off); 403 otherwise.
    public func authenticateAdmin(authorization: String?) async throws(APIError) -> Caller {
        let caller = try await authenticate(authorization: authorization)
        guard caller.isAdmin else {
            throw APIError(status: 403, message: "admin routes need an admin key (`fedroute keys create --admin`)", code: "admin_only")
        }
        return caller
    }
}
