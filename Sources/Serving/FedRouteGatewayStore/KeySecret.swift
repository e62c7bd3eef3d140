import Crypto
import Foundation

/// The gateway's key secret, and what it does with API keys.
///
/// Keys are stored as HMAC-SHA256(secret, key), not as a slow password hash: a key is 256 random bits,
/// so there is nothing to guess that a slow hash would slow down, while a slow hash would cost tens of
/// milliseconds on every request. The secret lives outside the database (environment or file), so a
/// copied database alone cannot even check a guessed key. Lookup is by the hash, so comparing keys
/// never runs over secret material an attacker controls.
public struct KeySecret: Sendable {
    let key: SymmetricKey

    /// Fewest characters a secret may have.
    public static let minimumLength = 32
    /// The environment variable the secret is read from.
    public static let environmentVariable = "FEDROUTE_KEY_SECRET"
    /// What every new key starts with.
    public static let keyPrefix = "sk-fr-"

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count >= Self.minimumLength else {
            throw VirtualKeyError.invalidPolicy("the key secret must have at least \(Self.minimumLength) characters (e.g. `openssl rand -hex 32`)")
        }
        key = SymmetricKey(data: Data(trimmed.utf8))
    }

    /// The secret from `file` if given, else from `$FEDROUTE_KEY_SECRET`.
    public static func load(file: String?, environment: [String: String]) throws -> KeySecret {
        if let file {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw VirtualKeyError.invalidPolicy("\(file): cannot read the key secret: \(error.localizedDescription)")
            }
            return try KeySecret(text)
        }
        guard let text = environment[environmentVariable], !text.isEmpty else {
            throw VirtualKeyError.invalidPolicy(
                "keys need a secret: set $\(environmentVariable) or pass --key-secret-file (or run the gateway with --no-auth for local use)")
        }
        return try KeySecret(text)
    }

    /// Hex HMAC-SHA256 of `apiKey`: what the store keeps and looks keys up by.
    public func hash(_ apiKey: String) -> String {
        Self.hex(HMAC<SHA256>.authenticationCode(for: Data(apiKey.utf8), using: key))
    }

    /// A value that identifies the secret without revealing it; the store keeps the first one it
    /// sees and refuses keys made or checked with another.
    public var check: String { hash("fedroute key secret check v1") }

    /// A new key: `sk-fr-` and 32 random bytes in base64url (256 bits from the system's CSPRNG).
    public static func generateKey() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        let b64 = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return keyPrefix + b64
    }

    /// A new key id: `key-` and 12 random hex digits.
    public static func generateID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "key-" + hex((0..<6).map { _ in UInt8.random(in: .min ... .max, using: &rng) })
    }

    /// The key's first 10 and last 4 characters.
    public static func hint(_ apiKey: String) -> String { "\(apiKey.prefix(10))…\(apiKey.suffix(4))" }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
