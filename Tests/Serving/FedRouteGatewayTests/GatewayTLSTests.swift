import AsyncHTTPClient
import FedRouteFederationHTTP
import FedRouteHTTPRunner
@testable import FedRouteGateway
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

/// The gateway over TLS: HTTP/2 for clients that offer it (ALPN), HTTP/1.1 for the others, and no
/// plaintext on the TLS port.
@Suite struct GatewayTLSTests {
    typealias E2E = GatewayEndToEndTests

    @Test func servesHTTP2AndHTTP1OverTLS() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedroute-gateway-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FederationCertificates.generate(directory: directory, hosts: ["127.0.0.1", "localhost"])
        let server = try ServerTLS.configuration(certificate: directory + "/server.pem", key: directory + "/server-key.pem")
        #expect(throws: ServerTLS.LoadError.self) { try ServerTLS.configuration(certificate: directory + "/missing.pem", key: directory + "/server-key.pem") }

        var clientTLS = TLSConfiguration.makeClientConfiguration()
        clientTLS.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(directory + "/ca.pem"))
        func client(_ version: HTTPClient.Configuration.HTTPVersion) -> HTTPClient {
            var c = HTTPClient.Configuration(tlsConfiguration: clientTLS)
            c.httpVersion = version
            return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: c)
        }
        let h2 = client(.automatic), h1 = client(.http1Only)
        do {
            try await E2E.withGateway(tls: (server, h2)) { env in
                #expect(env.gateway.hasPrefix("https://"))
                // HTTP/2 (negotiated by ALPN) for a chat completion.
                var request = HTTPClientRequest(url: env.gateway + "/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"model": "route:0", "messages": [{"role": "user", "content": "hi"}]}"#))
                let response = try await h2.execute(request, timeout: .seconds(30))
                #expect(response.status == .ok && response.version == .http2)
                #expect(response.headers.first(name: "x-fedroute-model") == "strong")
                // HTTP/1.1 over TLS.
                let health = try await h1.execute(HTTPClientRequest(url: env.gateway + "/health"), timeout: .seconds(30))
                #expect(health.status == .ok && health.version == .http1_1)
                // Plaintext to the TLS port gets no HTTP answer.
                let plain = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
                let url = env.gateway.replacingOccurrences(of: "https://", with: "http://") + "/health"
                await #expect(throws: (any Error).self) { _ = try await plain.execute(HTTPClientRequest(url: url), timeout: .seconds(1)) }
                try await plain.shutdown()
            }
        } catch {
            try? await h2.shutdown()
            try? await h1.shutdown()
            throw error
        }
        try await h2.shutdown()
        try await h1.shutdown()
    }
}
