import NIOSSL

/// TLS settings of a fedroute server (the federation coordinator, the gateway) from PEM files.
public enum ServerTLS {
    /// Why a certificate or key could not be used.
    public struct LoadError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// A server configuration from a PEM certificate chain and its PEM private key; TLS 1.2 or newer.
    /// (Hummingbird's HTTP/2 server adds ALPN for h2 and http/1.1.)
    public static func configuration(certificate: String, key: String) throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw LoadError(message: "\(certificate) holds no PEM certificate") }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
            c.minimumTLSVersion = .tlsv12
            return c
        } catch let e as LoadError {
            throw e
        } catch {
            throw LoadError(message: "cannot load the TLS certificate \(certificate) or key \(key): \(error)")
        }
    }
}
