import Crypto
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

/// The signature over one request: method, path, client, session, nonce, timestamp and the body's SHA-256.
///
/// The nonce must grow with every request of a client (clients start it at the current time in
/// microseconds, so it keeps growing across restarts); the coordinator refuses a nonce it has
/// already passed (a replay) and a timestamp more than `maxClockSkew` away from its clock.
public enum RequestSignature {
    public static func message(method: String, path: String, client: String, session: String, nonce: UInt64, timestamp: Int64, body: Data) -> Data {
        let digest = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        return Data("fedroute-v1\n\(method)\n\(path)\n\(client)\n\(session)\n\(nonce)\n\(timestamp)\n\(digest)".utf8)
    }

    /// Headers for a request signed by `identity`.
    public static func headers(identity: ClientIdentity, method: String, path: String, session: String, nonce: UInt64,
                               timestamp: Int64, body: Data) throws -> [(String, String)] {
        let m = message(method: method, path: path, client: identity.id, session: session, nonce: nonce, timestamp: timestamp, body: body)
        let signature = try identity.privateKey.signature(for: m)
        return [(Wire.Header.client, identity.id), (Wire.Header.session, session), (Wire.Header.nonce, "\(nonce)"),
                (Wire.Header.timestamp, "\(timestamp)"), (Wire.Header.signature, signature.base64EncodedString())]
    }
}

/// Why the coordinator refused a request before reading it.
public enum AuthenticationFailure: Error, Equatable, CustomStringConvertible {
    case missingHeader(String)
    case unknownClient(String)
    case badSignature(client: String)
    case staleTimestamp(client: String, skewSeconds: Int64)
    case replayedNonce(client: String, nonce: UInt64, last: UInt64)

    public var description: String {
        switch self {
        case .missingHeader(let h): return "missing or malformed header \(h)"
        case .unknownClient(let c): return "unknown client \(c)"
        case .badSignature(let c): return "bad signature from client \(c)"
        case .staleTimestamp(let c, let s): return "client \(c)'s timestamp is \(s) s away from the coordinator's clock"
        case .replayedNonce(let c, let n, let last): return "replayed request from client \(c): nonce \(n) ≤ last accepted \(last)"
        }
    }
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

    /// Checks a request and, if it is good, records its nonce. Returns the client id.
    public mutating func verify(method: String, path: String, header: (String) -> String?, body: Data, now: Int64) throws(AuthenticationFailure) -> String {
        guard let client = header(Wire.Header.client) else { throw .missingHeader(Wire.Header.client) }
        guard let key = keys[client] else { throw .unknownClient(client) }
        guard let session = header(Wire.Header.session) else { throw .missingHeader(Wire.Header.session) }
        guard let nonce = header(Wire.Header.nonce).flatMap(UInt64.init) else { throw .missingHeader(Wire.Header.nonce) }
        guard let timestamp = header(Wire.Header.timestamp).flatMap(Int64.init) else { throw .missingHeader(Wire.Header.timestamp) }
        guard let signature = header(Wire.Header.signature).flatMap({ Data(base64Encoded: $0) }) else { throw .missingHeader(Wire.Header.signature) }
        let m = RequestSignature.message(method: method, path: path, client: client, session: session, nonce: nonce, timestamp: timestamp, body: body)
        guard key.isValidSignature(signature, for: m) else { throw .badSignature(client: client) }
        guard abs(now - timestamp) <= maxClockSkew else { throw .staleTimestamp(client: client, skewSeconds: now - timestamp) }
        if let last = lastNonce[client], nonce <= last { throw .replayedNonce(client: client, nonce: nonce, last: last) }
        lastNonce[client] = nonce
        return client
    }
}
