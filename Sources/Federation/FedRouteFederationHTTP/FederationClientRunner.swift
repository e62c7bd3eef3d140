import AsyncHTTPClient
import Crypto
import FedRouteFederation
import FedRouteNumerics
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A client process: joins the coordinator, answers tasks with its local `InProcessClient` until
/// training is finished, and re-joins after network errors or a coordinator restart.
public struct FederationClientRunner: Sendable {
    public struct Settings: Sendable {
        /// e.g. `https://127.0.0.1:7443`.
        public var server: String
        /// TLS settings (trust roots), nil for plaintext `http://`.
        public var tls: TLSConfiguration?
        /// Give up after this long without reaching the coordinator.
        public var giveUpAfter: Duration = .seconds(300)
        /// Fault injection for tests: the process kills itself (SIGKILL) on its first MLP task of this round or later
        /// (`trainMLP`, or in a secure round where it trains with its key, `maskUpdate`: after the keys, mid-round).
        public var crashInRound: Int?
        /// With `crashInRound`: only the first process to create this file (it writes its id) crashes,
        /// so that among several armed clients exactly one sampled client dies.
        public var crashMarker: String?
        /// Ask for tensor frames (binary float32 bodies) instead of JSON with base64 tensors.
        public var tensorFrames = true
        /// The frame compression this client offers (it reads every codec it knows either way); replies
        /// are compressed with it once the coordinator says it reads it too.
        public var frameCompression = FrameCompression.shuffleDeflate
        /// HTTP/1.1 (the default), or HTTP/2 when the coordinator offers it (`ClientHTTPVersion`).
        public var httpVersion = defaultHTTPVersion
        public static let defaultHTTPVersion = ClientHTTPVersion.http1
        /// The body digest this client signs once the coordinator lists it in `x-fedroute-digests` (SHA-256 until
        /// then, and always with `.sha256`); with a coordinator that lists only older digests, what
        /// `BodyDigest.negotiate` picks from them.
        public var bodyDigest = BodyDigest.preferred
        /// Benches only: each request waits this long before it is sent and each answer this long after it came,
        /// the one-way delays of a wide-area network on loopback (nil: none).
        public var addedDelay: Duration?

        public init(server: String, tls: TLSConfiguration?) {
            self.server = server
            self.tls = tls
        }
    }

    public let identity: ClientIdentity
    public let local: any FederatedClient
    public let settings: Settings
    let logger: Logger

    public init(identity: ClientIdentity, local: any FederatedClient, settings: Settings, logger: Logger) {
        self.identity = identity
        self.local = local
        self.settings = settings
        self.logger = logger
    }

    /// Counts of what the client did, for its log and tests.
    public struct Outcome: Sendable, Equatable {
        public var tasks = 0
        public var joins = 0
        /// The federation's router files by family, as the coordinator sent them at the end.
        public var routers: [String: Data] = [:]
        /// The federation's local MLP training settings (sent with the routers; fine-tuning starts from them).
        public var fineTuning: LocalTrainingSettings?
        /// The MF-Router's local settings, when the federation trained one.
        public var mfFineTuning: LocalTrainingSettings?
        /// The HTTP version the coordinator answered the last join in ("1.1" or "2").
        public var httpVersion: String?
        /// The body digest the last reply was signed over (SHA-256 until the coordinator lists another).
        public var bodyDigest: BodyDigest?
    }

    /// Runs until the coordinator says training is finished.
    public func run() async throws -> Outcome {
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = settings.tls
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(120))
        configuration.httpVersion = settings.httpVersion.asyncHTTPClient
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let outcome = try await loop(http)
            try await http.shutdown()
            return outcome
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    func loop(_ http: HTTPClient) async throws -> Outcome {
        var outcome = Outcome()
        var signer = Signer(identity: identity)
        var session: String?
        var frames = Negotiated()
        var lastContact = ContinuousClock.now
        var backoff = Duration.milliseconds(200)
        while true {
            do {
                guard let current = session else {
                    // A (re)started coordinator is asked afresh whether it speaks frames.
                    frames = Negotiated()
                    let join: JoinResponse = try await call(http, "/v1/join", JoinRequest(), session: "-", signer: &signer, frames: &frames)
                    session = join.session
                    outcome.joins += 1
                    outcome.httpVersion = frames.httpVersion
                    logger.info("joined", metadata: ["federation": .string(join.federation), "session": .string(String(join.session.prefix(8))),
                                                     "http": .string(frames.httpVersion ?? "?")])
                    lastContact = .now
                    backoff = .milliseconds(200)
                    continue
                }
                let poll: PollResponse = try await call(http, "/v1/poll", Empty(), session: current, signer: &signer, frames: &frames)
                lastContact = .now
                if poll.finished {
                    outcome.routers = poll.routers ?? [:]
                    outcome.fineTuning = poll.fineTuning
                    outcome.mfFineTuning = poll.mfFineTuning
                    logger.info("training finished", metadata: ["tasks": .stringConvertible(outcome.tasks)])
                    return outcome
                }
                guard let task = poll.task else { continue }
                if let r = settings.crashInRound, Self.isMLPTask(task.request, fromRound: r), claimCrash() {
                    logger.warning("fault injection: killing this process in round \(r)")
                    kill(getpid(), SIGKILL)
                }
                let envelope: ReplyEnvelope
                do {
                    envelope = ReplyEnvelope(taskID: task.taskID, reply: try await local.handle(task.request))
                } catch {
                    logger.warning("task failed", metadata: ["task": .string(task.request.kind), "error": .string("\(error)")])
                    envelope = ReplyEnvelope(taskID: task.taskID, error: "\(error)")
                }
                outcome.bodyDigest = frames.digest
                let _: Empty = try await call(http, "/v1/reply", envelope, session: current, signer: &signer, frames: &frames)
                outcome.tasks += 1
                logger.debug("answered", metadata: ["task": .string(task.request.kind), "round": .string(task.request.round.map(String.init) ?? "-")])
            } catch let e as WireError where e.error.contains("session") {
                logger.info("session no longer valid; joining again", metadata: ["reason": .string(e.error)])
                session = nil
            } catch let e as WireError where e.error.contains("is not open") {
                logger.warning("reply refused", metadata: ["reason": .string(e.error)])
            } catch let e as WireError {
                throw e
            } catch {
                guard ContinuousClock.now - lastContact < settings.giveUpAfter else {
                    throw WireError("cannot reach the coordinator at \(settings.server) for \(settings.giveUpAfter): \(error)")
                }
                logger.debug("coordinator unreachable; retrying", metadata: ["error": .string("\(error)")])
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
                session = nil
            }
        }
    }

    /// True when this process may crash: no marker configured, or it created the marker first.
    func claimCrash() -> Bool {
        guard let marker = settings.crashMarker else { return true }
        let fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0o644)
        guard fd >= 0 else { return false }
        _ = identity.id.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        return true
    }

    struct Empty: Codable {}

    /// What the coordinator has shown it reads: tensor frames, which frame codec (if any) and which body
    /// digest; and the HTTP version its answers came in.
    struct Negotiated {
        var frames = false
        var codec: (any TensorFrameCodec)?
        var digest = BodyDigest.sha256
        var httpVersion: String?
    }

    /// Signs and posts `body`; decodes a 200 reply, throws `WireError` with the server's reason otherwise.
    /// With `settings.tensorFrames`, asks for tensor frames; `frames.frames` is set once the coordinator answered
    /// with one, and then request bodies are sent as frames too, compressed with `frames.codec` once the
    /// coordinator has named a codec this client offered.
    func call<B: Encodable, R: Decodable>(_ http: HTTPClient, _ path: String, _ body: B, session: String, signer: inout Signer,
                                         frames: inout Negotiated) async throws -> R {
        // A frame is written straight into the request's buffer (its arrays can be megabytes); JSON is small.
        let data = frames.frames ? try TensorFrames.encode(body, with: Wire.encoder(), options: .init(codec: frames.codec))
            : ByteBuffer(data: try Wire.encoder().encode(body))
        var request = HTTPClientRequest(url: settings.server + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: frames.frames ? Wire.framesContentType : "application/json")
        if settings.tensorFrames {
            request.headers.add(name: "accept", value: "\(Wire.framesContentType), application/json")
            request.headers.add(name: Wire.Header.frameCodecs, value: settings.frameCompression.codec?.name ?? FrameCompression.none.rawValue)
        }
        let scheme = frames.digest
        let digest = data.withUnsafeReadableBytes { scheme.digest($0) }
        for (k, v) in try signer.headers(path: path, session: session, bodyDigest: digest, scheme: scheme) { request.headers.add(name: k, value: v) }
        request.body = .bytes(data)
        if let delay = settings.addedDelay { try await Task.sleep(for: delay) }
        let response = try await http.execute(request, timeout: .seconds(120))
        let buffer = try await Self.collect(response, upTo: Wire.maxBodyBytes)
        if let delay = settings.addedDelay { try await Task.sleep(for: delay) }
        // A view of the collected bytes, not a copy (the buffer is kept alive by the Data).
        let bytes = Data(buffer: buffer, byteTransferStrategy: .noCopy)
        guard response.status == .ok else {
            let reason = (try? JSONDecoder().decode(WireError.self, from: bytes))?.error ?? "HTTP \(response.status.code)"
            throw WireError("\(path): \(reason)")
        }
        frames.httpVersion = response.version.major >= 2 ? "\(response.version.major)" : "\(response.version.major).\(response.version.minor)"
        if TensorFrames.isFrame(bytes) { frames.frames = true }
        if let listed = response.headers.first(name: Wire.Header.digests) {
            frames.digest = BodyDigest.negotiate(wanted: settings.bodyDigest, listed: BodyDigest.names(in: listed))
        }
        if let mine = settings.frameCompression.codec, FrameCompression.names(in: response.headers.first(name: Wire.Header.frameCodecs)).contains(mine.name) {
            frames.codec = mine
        }
        return try Wire.decode(R.self, from: bytes, codecs: FrameCompression.readable)
    }
}

extension FederationClientRunner {
    /// The response's body in one buffer of the size its content-length declares (at most `limit`), each part copied
    /// in once. (`collect(upTo:)` grows the first part's buffer by doubling, which copies a multi-megabyte task again
    /// at every step, and copies that part itself, since the TLS handler still holds it.) Throws once more than
    /// `limit` bytes arrived.
    static func collect(_ response: HTTPClientResponse, upTo limit: Int) async throws -> ByteBuffer {
        let declared = response.headers.first(name: "content-length").flatMap(Int.init)
        if let declared, declared > limit { throw WireError("the coordinator's answer declares \(declared) bytes, more than \(limit)") }
        var buffer = ByteBuffer()
        if let declared, declared > 0 { buffer.reserveCapacity(declared) }
        for try await part in response.body {
            guard part.readableBytes <= limit - buffer.readableBytes else { throw WireError("the coordinator's answer is larger than \(limit) bytes") }
            buffer.writeImmutableBuffer(part)
        }
        return buffer
    }
}

/// Signs requests with a nonce that starts at the current time in microseconds and grows by one.
struct Signer {
    let identity: ClientIdentity
    var nonce = UInt64(Date().timeIntervalSince1970 * 1_000_000)

    mutating func headers(path: String, session: String, bodyDigest: SHA256.Digest, scheme: BodyDigest) throws -> [(String, String)] {
        nonce += 1
        return try RequestSignature.headers(identity: identity, method: "POST", path: path, session: session, nonce: nonce,
                                            timestamp: Int64(Date().timeIntervalSince1970), bodyDigest: bodyDigest, scheme: scheme)
    }
}

extension FederationClientRunner {
    /// Whether `request` hands this client an MLP round's update to produce, in round `round` or later
    /// (`Settings.crashInRound`).
    static func isMLPTask(_ request: FederatedRequest, fromRound round: Int) -> Bool {
        switch request {
        case .trainMLP(let t): return t.round >= round
        case .maskUpdate(let r, _, _): return r >= round
        default: return false
        }
    }
}
