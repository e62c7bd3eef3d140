import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import SwiftProtobuf

/// Flower's Fleet API over HTTP: `POST /v1/fleet/<rpc>` with a protobuf body, every request signed.
public struct FleetClient: Sendable {
    public let superlink: String
    let http: HTTPClient
    let signer: FleetSigner
    let traffic: TrafficCounter
    /// Largest response body read (an object is at most a 5 MiB chunk plus its header).
    static let maxResponseBytes = 64 << 20

    public init(superlink: String, http: HTTPClient, signer: FleetSigner, traffic: TrafficCounter = TrafficCounter()) {
        self.superlink = superlink.hasSuffix("/") ? String(superlink.dropLast()) : superlink
        self.http = http
        self.signer = signer
        self.traffic = traffic
    }

    /// Sends `request` to the RPC `rpc` (kebab case, e.g. `pull-messages`) and decodes the answer.
    func call<Response: SwiftProtobuf.Message>(_ rpc: String, _ request: some SwiftProtobuf.Message, as _: Response.Type = Response.self,
                                               timeout: TimeAmount = .seconds(60)) async throws -> Response {
        let body = try request.serializedData()
        var r = HTTPClientRequest(url: "\(superlink)/v1/fleet/\(rpc)")
        r.method = .POST
        r.headers.add(name: "content-type", value: "application/protobuf")
        r.headers.add(name: "accept", value: "application/protobuf")
        for (name, value) in try signer.headers() { r.headers.add(name: name, value: value) }
        r.body = .bytes(ByteBuffer(data: body))
        let response = try await http.execute(r, timeout: timeout)
        let bytes: ByteBuffer
        do { bytes = try await response.body.collect(upTo: Self.maxResponseBytes) } catch is NIOTooManyBytesError {
            throw FlowerError.rpc(rpc, status: Int(response.status.code), "the answer is larger than \(Self.maxResponseBytes) bytes")
        }
        await traffic.add(sent: body.count, received: bytes.readableBytes)
        guard response.status == .ok else {
            let text = String(buffer: bytes).prefix(400)
            throw FlowerError.rpc(rpc, status: Int(response.status.code), String(text))
        }
        do { return try Response(serializedBytes: Data(buffer: bytes)) } catch {
            throw FlowerError.rpc(rpc, status: 200, "the answer is not a \(Response.protoMessageName): \(error)")
        }
    }
}

/// Bytes a node sent and received (request and response bodies), for the round reports and the bench.
public actor TrafficCounter {
    public private(set) var sent = 0
    public private(set) var received = 0

    public init() {}

    func add(sent s: Int, received r: Int) {
        sent += s
        received += r
    }
}

extension FleetClient {
    /// An HTTP client for a SuperLink: plain HTTP for `http://` (Flower's `--insecure`), TLS trusting
    /// `rootCertificates` (PEM) or the system's roots for `https://`.
    public static func makeHTTPClient(rootCertificates: String?) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let rootCertificates {
            guard FileManager.default.isReadableFile(atPath: rootCertificates) else {
                throw FlowerError.configuration("--root-certificates \(rootCertificates) cannot be read")
            }
            tls.trustRoots = .file(rootCertificates)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
