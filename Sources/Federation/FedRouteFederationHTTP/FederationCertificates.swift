import Crypto
import FedRouteHTTPRunner
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// Certificates for a federation: a private CA, and a server certificate it signs for the hosts
/// the coordinator is reached at. Clients trust the CA file only.
public enum FederationCertificates {
    /// Writes `ca.pem`, `ca-key.pem`, `server.pem` and `server-key.pem` (keys 0600) into `directory`.
    public static func generate(directory: String, hosts: [String], validDays: Int = 365) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let now = Date()
        let until = now.addingTimeInterval(Double(validDays) * 86_400)
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("fedroute federation CA") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: until, issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey))
        let serverKey = P256.Signing.PrivateKey()
        var names: [GeneralName] = []
        for h in hosts {
            if let ip = ipv4Bytes(h) { names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip)))) } else { names.append(.dnsName(h)) }
        }
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: until, issuer: caName, subject: try DistinguishedName { CommonName(hosts.first ?? "fedroute") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(caKey))
        func write(_ pem: String, _ name: String, secret: Bool) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            try Data(pem.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            if secret { try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
        }
        try write(try ca.serializeAsPEM().pemString, "ca.pem", secret: false)
        try write(try Certificate.PrivateKey(caKey).serializeAsPEM().pemString, "ca-key.pem", secret: true)
        try write(try server.serializeAsPEM().pemString, "server.pem", secret: false)
        try write(try Certificate.PrivateKey(serverKey).serializeAsPEM().pemString, "server-key.pem", secret: true)
    }

    static func ipv4Bytes(_ s: String) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }

    /// The coordinator's TLS settings from PEM files (ALPN offers h2 and http/1.1).
    public static func serverConfiguration(certificate: String, key: String) throws -> TLSConfiguration {
        do { return try ServerTLS.configuration(certificate: certificate, key: key) } catch { throw WireError("\(error)") }
    }

    /// A client's TLS settings: trust only the federation's CA.
    public static func clientConfiguration(caFile: String) throws -> TLSConfiguration {
        do {
            var c = TLSConfiguration.makeClientConfiguration()
            c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            c.minimumTLSVersion = .tlsv12
            return c
        } catch { throw WireError("cannot load the CA certificate \(caFile): \(error)") }
    }
}
