import Crypto
import FedRouteHTTPRunner
import Foundation

/// A client's Ed25519 identity. The coordinator knows only the public half.
public struct ClientIdentity: Sendable {
    public let id: String
    public let privateKey: Curve25519.Signing.PrivateKey

    public init(id: String, privateKey: Curve25519.Signing.PrivateKey = .init()) {
        self.id = id
        self.privateKey = privateKey
    }

    /// Base64 of the raw 32-byte public key, as it goes into the server configuration.
    public var publicKeyBase64: String { privateKey.publicKey.rawRepresentation.base64EncodedString() }

    struct File: Codable {
        var id: String
        var privateKey: String
        var publicKey: String
    }

    /// Writes `{"id", "privateKey", "publicKey"}` readable by the owner only.
    public func write(to path: String) throws {
        let file = File(id: id, privateKey: privateKey.rawRepresentation.base64EncodedString(), publicKey: publicKeyBase64)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(file).write(to: URL(fileURLWithPath: path), options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    public init(contentsOf path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw WireError("cannot read the key file \(path): \(error.localizedDescription)") }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch { throw WireError("\(path) is not a fedroute key file: \(error)") }
        guard let raw = Data(base64Encoded: file.privateKey), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw WireError("\(path): privateKey is not a base64 Ed25519 key")
        }
        self.init(id: file.id, privateKey: key)
    }
}

/// The signature over one request: method, path, client, session, nonce, timestamp and the body's digest
/// (`BodyDigest`: its SHA-256, or the tree digest the request names in `x-fedroute-digest`).
///
/// The nonce must grow with every request of a client (clients start it at the current time in
/// microseconds, so it keeps growing across restarts); the coordinator refuses a nonce it has
/// already passed (a replay) and a timestamp more than `maxClockSkew` away from its clock.
public enum RequestSignature {
    public static func message(method: String, path: String, client: String, session: String, nonce: UInt64, timestamp: Int64, body: Data,
                               scheme: BodyDigest = .sha256) -> Data {
        message(method: method, path: path, client: client, session: session, nonce: nonce, timestamp: timestamp, bodyDigest: scheme.digest(body),
                scheme: scheme)
    }

    /// The signed message given the body's digest under `scheme` (the coordinator hashes the body as it streams
    /// in). Its first line names the scheme (`fedroute-v1` for SHA-256, as before the tree digest existed), so a
    /// signature made over one scheme's digest never verifies under the other.
    public static func message(method: String, path: String, client: String, session: String, nonce: UInt64, timestamp: Int64,
                               bodyDigest: SHA256.Digest, scheme: BodyDigest = .sha256) -> Data {
        let digest = bodyDigest.map { String(format: "%02x", $0) }.joined()
        let version = scheme == .sha256 ? "fedroute-v1" : "fedroute-v1+\(scheme.rawValue)"
        return Data("\(version)\n\(method)\n\(path)\n\(client)\n\(session)\n\(nonce)\n\(timestamp)\n\(digest)".utf8)
    }

    /// Headers for a request signed by `identity`, its body digested under `scheme`.
    public static func headers(identity: ClientIdentity, method: String, path: String, session: String, nonce: UInt64,
                               timestamp: Int64, body: Data, scheme: BodyDigest = .sha256) throws -> [(String, String)] {
        try headers(identity: identity, method: method, path: path, session: session, nonce: nonce, timestamp: timestamp,
                    bodyDigest: scheme.digest(body), scheme: scheme)
    }

    /// Headers for a request signed by `identity`, given its body's digest under `scheme` (computed where the body
    /// was written); a scheme other than SHA-256 is named in `x-fedroute-digest`.
    public static func headers(identity: ClientIdentity, method: String, path: String, session: String, nonce: UInt64,
                               timestamp: Int64, bodyDigest: SHA256.Digest, scheme: BodyDigest = .sha256) throws -> [(String, String)] {
        let m = message(method: method, path: path, client: identity.id, session: session, nonce: nonce, timestamp: timestamp, bodyDigest: bodyDigest,
                        scheme: scheme)
        let signature = try identity.privateKey.signature(for: m)
        var h = [(Wire.Header.client, identity.id), (Wire.Header.session, session), (Wire.Header.nonce, "\(nonce)"),
                 (Wire.Header.timestamp, "\(timestamp)"), (Wire.Header.signature, signature.base64EncodedString())]
        if scheme != .sha256 { h.append((Wire.Header.digest, scheme.rawValue)) }
        return h
    }
}

/// Why the coordinator refused a request. Caller-chosen values (client ids) are escaped and cut to
/// `LogText.defaultLimit` characters in the description.
public enum AuthenticationFailure: Error, Equatable, CustomStringConvertible {
    case missingHeader(String)
    case unknownClient(String)
    case badSignature(client: String)
    case staleTimestamp(client: String, timestamp: Int64, now: Int64)
    case replayedNonce(client: String, nonce: UInt64, last: UInt64)

    public var description: String {
        switch self {
        case .missingHeader(let h): return "missing or malformed header \(h)"
        case .unknownClient(let c): return "unknown client \(LogText.escape(c))"
        case .badSignature(let c): return "bad signature from client \(c)"
        case .staleTimestamp(let c, let t, let now):
            let (skew, overflow) = now.subtractingReportingOverflow(t)
            return "client \(c)'s timestamp \(t) is \(overflow ? "far more than 2^63" : "\(skew)") s away from the coordinator's clock (\(now))"
        case .replayedNonce(let c, let n, let last): return "replayed request from client \(c): nonce \(n) ≤ last accepted \(last)"
        }
    }
}

/// The signature headers of a request, parsed and checked against the coordinator's state before
/// its body is read (`ClientAuthenticator.precheck`).
public struct SignedRequestHeaders: Sendable, Equatable {
    public var client: String
    public var session: String
    public var nonce: UInt64
    public var timestamp: Int64
    public var signature: Data
    /// What the body is digested with (`x-fedroute-digest`; SHA-256 when absent).
    public var digest: BodyDigest = .sha256
}

/// The coordinator's view of client keys and the last nonce each has used.
public struct ClientAuthenticator: Sendable {
    let keys: [String: Curve25519.Signing.PublicKey]
    public private(set) var lastNonce: [String: UInt64]
    public var maxClockSkew: Int64 = 300

    /// `publicKeys`: client id → base64 raw Ed25519 public key.
    public init(publicKeys: [String: String], lastNonce: [String: UInt64] = [:]) throws {
        var keys: [String: Curve25519.Signing.PublicKey] = [:]
        for (id, b64) in publicKeys {
            guard let raw = Data(base64Encoded: b64), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
                throw WireError("client \(id): public key is not base64 of a 32-byte Ed25519 key")
            }
            keys[id] = key
        }
        self.keys = keys
        self.lastNonce = lastNonce
    }

    public var clientIDs: [String] { keys.keys.sorted() }

    /// Everything that can be checked without the body: a known client, all headers well formed, the
    /// timestamp within `maxClockSkew` of `now` (compared without overflow whatever the header
    /// says), and a nonce above the last accepted one. Records nothing.
    public func precheck(header: (String) -> String?, now: Int64) throws(AuthenticationFailure) -> SignedRequestHeaders {
        guard let client = header(Wire.Header.client) else { throw .missingHeader(Wire.Header.client) }
        guard keys[client] != nil else { throw .unknownClient(client) }
        guard let session = header(Wire.Header.session) else { throw .missingHeader(Wire.Header.session) }
        guard let nonce = header(Wire.Header.nonce).flatMap(UInt64.init) else { throw .missingHeader(Wire.Header.nonce) }
        guard let timestamp = header(Wire.Header.timestamp).flatMap(Int64.init) else { throw .missingHeader(Wire.Header.timestamp) }
        guard let signature = header(Wire.Header.signature).flatMap({ Data(base64Encoded: $0) }) else { throw .missingHeader(Wire.Header.signature) }
        // The header's value is never subtracted; the window's ends saturate.
        let (low, below) = now.subtractingReportingOverflow(maxClockSkew)
        let (high, above) = now.addingReportingOverflow(maxClockSkew)
        guard timestamp >= (below ? .min : low), timestamp <= (above ? .max : high) else {
            throw .staleTimestamp(client: client, timestamp: timestamp, now: now)
        }
        var digest = BodyDigest.sha256
        if let named = header(Wire.Header.digest) {
            guard let scheme = BodyDigest(rawValue: named) else { throw .missingHeader(Wire.Header.digest) }
            digest = scheme
        }
        if let last = lastNonce[client], nonce <= last { throw .replayedNonce(client: client, nonce: nonce, last: last) }
        return SignedRequestHeaders(client: client, session: session, nonce: nonce, timestamp: timestamp, signature: signature, digest: digest)
    }

    /// Checks the signature over the body's digest (under `h.digest`) for headers that passed `precheck` and, if it is
    /// good, records the nonce (checked again: another request may have used it meanwhile).
    public mutating func verify(method: String, path: String, _ h: SignedRequestHeaders, bodyDigest: SHA256.Digest) throws(AuthenticationFailure) -> String {
        guard let key = keys[h.client] else { throw .unknownClient(h.client) }
        let m = RequestSignature.message(method: method, path: path, client: h.client, session: h.session, nonce: h.nonce,
                                         timestamp: h.timestamp, bodyDigest: bodyDigest, scheme: h.digest)
        guard key.isValidSignature(h.signature, for: m) else { throw .badSignature(client: h.client) }
        if let last = lastNonce[h.client], h.nonce <= last { throw .replayedNonce(client: h.client, nonce: h.nonce, last: last) }
        lastNonce[h.client] = h.nonce
        return h.client
    }

    /// Checks a whole request (headers and body) and, if it is good, records its nonce. Returns the client id.
    public mutating func verify(method: String, path: String, header: (String) -> String?, body: Data, now: Int64) throws(AuthenticationFailure) -> String {
        let h = try precheck(header: header, now: now)
        return try verify(method: method, path: path, h, bodyDigest: h.digest.digest(body))
    }
}
