import Crypto
import Foundation

/// The node's identity towards a SuperLink: a P-256 key whose public half (PEM SubjectPublicKeyInfo)
/// is the node's name, and the three headers that sign every Fleet API request.
public struct FleetSigner: Sendable {
    let key: P256.Signing.PrivateKey

    public init(key: P256.Signing.PrivateKey) { self.key = key }

    /// The bytes sent as `public_key` on register/activate, byte-identical to the header's: PEM with
    /// the final newline that Python's `cryptography` writes, so that a key enrolled with
    /// `flwr supernode register` from a PEM file matches (the SuperLink compares bytes).
    public var publicKeyPEM: Data { Data((key.publicKey.pemRepresentation + "\n").utf8) }

    /// The public key in OpenSSH form (`ecdsa-sha2-nistp256 AAAA…`), which `flwr supernode register`
    /// takes to enroll a node when the SuperLink runs with `--enable-supernode-auth`.
    public var openSSHPublicKey: String {
        func field(_ bytes: [UInt8]) -> [UInt8] {
            let n = UInt32(bytes.count)
            return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + bytes
        }
        let blob = field(Array("ecdsa-sha2-nistp256".utf8)) + field(Array("nistp256".utf8)) + field(Array(key.publicKey.x963Representation))
        return "ecdsa-sha2-nistp256 " + Data(blob).base64EncodedString() + "\n"
    }

    /// `flwr-public-key`, `flwr-timestamp`, `flwr-signature` for a request sent at `date`.
    public func headers(at date: Date = Date()) throws -> [(String, String)] {
        let timestamp = Self.timestamp(date)
        let signature = try key.signature(for: Data(timestamp.utf8))
        return [("flwr-public-key", publicKeyPEM.base64EncodedString()), ("flwr-timestamp", timestamp),
                ("flwr-signature", signature.derRepresentation.base64EncodedString())]
    }

    /// ISO-8601 UTC with microseconds and `+00:00`, as Python's `datetime.isoformat()` writes it.
    static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = seconds.rounded(.down)
        let micros = min(999_999, Int(((seconds - whole) * 1_000_000).rounded()))
        var t = time_t(whole)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micros)
    }

    /// Loads the node key from `path` (PEM), or creates it there (mode 0600) when the file does not
    /// exist yet, so that a restarted node keeps its identity.
    public static func loadOrCreate(path: String) throws -> (signer: FleetSigner, created: Bool) {
        if FileManager.default.fileExists(atPath: path) {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            do { return (FleetSigner(key: try P256.Signing.PrivateKey(pemRepresentation: text)), false) } catch {
                throw FlowerError.configuration("the node key \(path) is not a P-256 private key in PEM: \(error)")
            }
        }
        let key = P256.Signing.PrivateKey()
        guard FileManager.default.createFile(atPath: path, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw FlowerError.configuration("cannot write a new node key to \(path)")
        }
        return (FleetSigner(key: key), true)
    }
}
