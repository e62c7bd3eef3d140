import Crypto
import FedRouteNumerics
import FedRouteHTTPRunner
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdTLS
import Logging
import NIOCore
import NIOFoundationCompat
import NIOSSL

/// The coordinator's HTTP surface: `/v1/join`, `/v1/poll`, `/v1/reply` (signed), `/health`, `/v1/status`.
public enum CoordinatorRoutes {
    /// Longest a poll is held open when no task is waiting.
    public static let pollWait = Duration.seconds(20)

    /// The routes; `compression` is the codec tasks' arrays may be compressed with for clients that read it
    /// (and that replies may use). The round's global model is encoded (and compressed) once for all the
    /// clients it goes to, into one network buffer an array that every task's response sends: frames share a
    /// `TensorFrameCache` and its `SharedFrameBuffers` for the coordinator's lifetime.
    public static func router(registry: ClientRegistry, pollWait: Duration = pollWait, compression: FrameCompression = .none) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let cache = TensorFrameCache(maxEntries: 256, maxBytes: 1 << 30)
        let shared = SharedFrameBuffers(maxEntries: 256, maxBytes: 1 << 30)
        let codec = compression.codec
        let readable = codec.map { [$0] } ?? []
        // Every signed answer lists the body digests this coordinator reads, and the frame codec it writes.
        let announce = HTTPFields([HTTPField(name: digestsField, value: BodyDigest.allCases.map(\.rawValue).joined(separator: ", "))]
                                  + (codec.map { [HTTPField(name: frameCodecsField, value: $0.name)] } ?? []))
        router.post("/v1/join") { request, _ in
            await signed(request, path: "/v1/join", limit: Wire.maxControlBodyBytes, registry: registry, headers: announce) { client, _, body in
                let join = try Wire.decoder().decode(JoinRequest.self, from: body)
                guard join.protocolVersion == Wire.protocolVersion else {
                    throw WireError("protocol \(join.protocolVersion) is not \(Wire.protocolVersion)")
                }
                return [ByteBuffer(data: try Wire.encoder().encode(await registry.join(client: client)))]
            }
        }
        router.post("/v1/poll") { request, _ in
            // A client that accepts tensor frames gets its task as one (raw float32 arrays after a small JSON header).
            let frames = request.headers[.accept]?.contains(Wire.framesContentType) == true
            let offered = FrameCompression.names(in: request.headers[frameCodecsField])
            let options = TensorFrames.Options(codec: codec.flatMap { offered.contains($0.name) ? $0 : nil }, cache: cache)
            return await signed(request, path: "/v1/poll", limit: Wire.maxControlBodyBytes, registry: registry, headers: announce) { client, session, _ in
                let poll = try await registry.poll(client: client, session: session, wait: pollWait)
                // A frame's arrays go out from the buffers every client's task shares (a task carries the global
                // model, megabytes); the rest is written straight into the response's own buffers.
                return frames ? try TensorFrames.encodePieces(poll, with: Wire.encoder(), options: options, shared: shared)
                    : [ByteBuffer(data: try Wire.encoder().encode(poll))]
            }
        }
        router.post("/v1/reply") { request, _ in
            await signed(request, path: "/v1/reply", limit: Wire.maxBodyBytes, registry: registry, headers: announce) { client, session, body in
                let envelope: ReplyEnvelope
                do { envelope = try Wire.decode(ReplyEnvelope.self, from: body, codecs: readable) } catch {
                    await registry.reject("client \(client): malformed reply (\(error))")
                    throw WireError("malformed reply: \(error)")
                }
                try await registry.reply(client: client, session: session, envelope: envelope)
                return [ByteBuffer(string: "{}")]
            }
        }
        router.get("/health") { _, _ in json(.ok, Data("{\"status\":\"ok\"}".utf8)) }
        router.get("/v1/status") { _, _ in
            let status: [String: Int] = ["clients": registry.clientIDs.count, "online": await registry.online,
                                         "rejected": await registry.rejectionCount, "finished": await registry.finished ? 1 : 0]
            return json(.ok, try JSONEncoder().encode(status))
        }
        return router
    }

    /// Authenticates, runs `handle`, and turns errors into JSON error responses (401 for
    /// authentication, 409 for session and task state — `WireError.status` — 413 for a body over
    /// `limit`, 429 for too many bodies at once from one client, and 400 for bad bodies).
    ///
    /// The signature headers are checked before any of the body is read (client known, timestamp
    /// in window, fresh nonce, known digest scheme, declared length within `limit`); the body is then
    /// read (and, under SHA-256, hashed) as it streams in and refused as soon as it passes `limit`.
    static func signed(_ request: Request, path: String, limit: Int, registry: ClientRegistry, headers extra: HTTPFields = [:],
                       handle: @Sendable (String, String, Data) async throws -> [ByteBuffer]) async -> Response {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let checked: SignedRequestHeaders
        do { checked = try await registry.precheck(path: path, headers: headers) } catch {
            let e = error as? WireError ?? WireError("\(error)")
            return json(HTTPResponse.Status(code: e.status ?? 401), try! JSONEncoder().encode(e))
        }
        let received: (body: Data, digest: SHA256.Digest)?
        let declared = headers["content-length"].flatMap(Int.init)
        if let declared, declared > limit {
            received = nil
        } else {
            received = try? await collect(request.body, upTo: limit, expected: declared, digest: checked.digest)
        }
        await registry.finishBody(of: checked.client)
        guard let (body, digest) = received else {
            await registry.reject("\(path): client \(checked.client) sent a body over \(limit) bytes")
            return json(.contentTooLarge, try! JSONEncoder().encode(WireError("body larger than \(limit) bytes for \(path)")))
        }
        let client: String, session: String
        do { (client, session) = try await registry.authenticate(method: "POST", path: path, checked, bodyDigest: digest, bodyBytes: body.count) } catch {
            return json(.unauthorized, try! JSONEncoder().encode(error as? WireError ?? WireError("\(error)")))
        }
        do {
            let out = try await handle(client, session, body)
            await registry.countOut(out.reduce(0) { $0 + $1.readableBytes })
            let frame = out.first.map { TensorFrames.isFrame($0.readableBytesView) } ?? false
            var h = extra
            h[.contentType] = frame ? Wire.framesContentType : "application/json"
            return Response(status: .ok, headers: h, body: ResponseBody(contentsOf: out))
        } catch let e as WireError {
            return json(HTTPResponse.Status(code: e.status ?? 400), try! JSONEncoder().encode(e))
        } catch {
            return json(.badRequest, try! JSONEncoder().encode(WireError("\(error)")))
        }
    }

    /// The body and its digest under `digest`, read chunk by chunk; throws once more than `limit` bytes
    /// arrived. SHA-256 and BLAKE3 are computed as the chunks arrive (each chunk hashed while it is still in cache,
    /// and the last reply of a round checked as it arrives); the tree digest, whose leaves are spread over the
    /// body, once it is all in. `expected` (the declared length, already checked against `limit` and the
    /// signature's) sizes the buffer once, instead of growing it by copies as multi-megabyte updates arrive.
    static func collect(_ body: RequestBody, upTo limit: Int, expected: Int? = nil, digest: BodyDigest = .sha256) async throws -> (Data, SHA256.Digest) {
        var sha = SHA256()
        let bounded = min(expected ?? 0, limit)
        var b3 = digest == .blake3 ? BLAKE3Kernel.Hasher(expectedBytes: bounded) : nil
        var data = Data()
        if bounded > 0 { data.reserveCapacity(bounded) }
        for try await chunk in body {
            guard chunk.readableBytes <= limit - data.count else { throw WireError("body larger than \(limit) bytes", status: 413) }
            chunk.withUnsafeReadableBytes {
                data.append(contentsOf: $0)
                switch digest {
                case .sha256: sha.update(bufferPointer: $0)
                case .blake3: b3?.update($0)
                case .tree16: break
                }
            }
        }
        switch digest {
        case .sha256: return (data, sha.finalize())
        case .blake3: return (data, b3?.finalize().map { BodyDigest.blake3(inner: $0) } ?? digest.digest(data))
        case .tree16: return (data, digest.digest(data))
        }
    }

    static let frameCodecsField = HTTPField.Name(Wire.Header.frameCodecs)!
    static let digestsField = HTTPField.Name(Wire.Header.digests)!

    static func json(_ status: HTTPResponse.Status, _ data: Data, contentType: String = "application/json", extra: HTTPFields = [:]) -> Response {
        json(status, ByteBuffer(bytes: data), contentType: contentType, extra: extra)
    }

    static func json(_ status: HTTPResponse.Status, _ body: ByteBuffer, contentType: String = "application/json", extra: HTTPFields = [:]) -> Response {
        var h = extra
        h[.contentType] = contentType
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: body))
    }

    /// HTTP/2 (ALPN, with HTTP/1.1 fallback) over TLS, or plaintext HTTP/1.1 without it.
    public static func transport(tls: TLSConfiguration?) throws -> HTTPServerBuilder {
        do { return try tls.map { try .http2Upgrade(tlsConfiguration: $0) } ?? .http1() } catch {
            throw WireError("cannot set up TLS: \(error)")
        }
    }

    /// The application on `transport` (see `transport(tls:)`).
    public static func application(registry: ClientRegistry, host: String, port: Int, transport server: HTTPServerBuilder, logger: Logger,
                                   pollWait: Duration = pollWait, compression: FrameCompression = .none,
                                   onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(registry: registry, pollWait: pollWait, compression: compression),
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "fedroute-coordinator"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
