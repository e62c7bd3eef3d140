import FedRouteFederation
import FedRouteNumerics
import Foundation

// The federation protocol over HTTP/2 (HTTP/1.1 without TLS). Clients connect to the coordinator,
// never the other way round, so they can sit behind NAT and firewalls:
//
//   POST /v1/join   → JoinResponse        a new session for this client process
//   POST /v1/poll   → PollResponse        long poll: the next task, nothing yet, or "finished"
//   POST /v1/reply  ← ReplyEnvelope        the answer to one task, by its id
//   GET  /health, GET /v1/status          unauthenticated liveness and progress counters
//
// Every /v1 request is signed with the client's Ed25519 key (see `RequestSignature`) over a digest of the exact
// body bytes: their SHA-256, or, once the coordinator lists it in `x-fedroute-digests`, the tree digest the
// request names in `x-fedroute-digest` (`BodyDigest`). Bodies are JSON, with tensors and matrices as base64 float32 (`CodingUserInfoKey.packedFloats`) and
// masked vectors as base64 64-bit words; or, negotiated, tensor frames (`TensorFrames`: the same JSON with
// every float array replaced by `{"blob": i}` and the arrays appended as raw little-endian float32). A client
// asks for frames with `accept: application/x-fedroute-frames` on /v1/poll; once the coordinator has
// answered with a frame, the client sends its replies as frames too (the coordinator reads either, by the
// body's first bytes). Frames may carry their large arrays compressed (`FrameCompression`), negotiated with
// `x-fedroute-frame-codecs`. docs/FEDERATION.md documents every message.

/// Encoders and decoders of the wire format.
public enum Wire {
    public static let protocolVersion = "fedroute-federation/1"
    /// Largest request or response body either side accepts.
    public static let maxBodyBytes = 256 << 20
    /// Body limit of `/v1/join` and `/v1/poll` (their bodies are a few bytes).
    public static let maxControlBodyBytes = 64 << 10

    public static func encoder() -> JSONEncoder { FederationCoding.encoder() }

    public static func decoder() -> JSONDecoder { FederationCoding.decoder() }

    /// Media type of a tensor-frame body.
    public static let framesContentType = "application/x-fedroute-frames"

    /// Decodes a JSON or tensor-frame body (told apart by its first bytes); compressed arrays are read with
    /// `codecs` (a frame that uses another codec is refused), and may decode to at most `maxBodyBytes`.
    public static func decode<T: Decodable>(_ type: T.Type, from body: Data, codecs: [any TensorFrameCodec] = []) throws -> T {
        TensorFrames.isFrame(body)
            ? try TensorFrames.decode(type, from: body, with: decoder(), codecs: codecs, maxDecodedBytes: maxBodyBytes)
            : try decoder().decode(type, from: body)
    }

    /// Header names of a signed request.
    public enum Header {
        public static let client = "x-fedroute-client"
        public static let session = "x-fedroute-session"
        public static let nonce = "x-fedroute-nonce"
        public static let timestamp = "x-fedroute-timestamp"
        public static let signature = "x-fedroute-signature"
        /// The frame codecs a peer reads (see `FrameCompression`); not signed, it only shapes answers.
        public static let frameCodecs = "x-fedroute-frame-codecs"
        /// The scheme a signed request's body digest uses (`BodyDigest`; SHA-256 when absent). The signed message
        /// names the scheme too, so changing this header only makes the signature fail.
        public static let digest = "x-fedroute-digest"
        /// On the coordinator's answers: the body digest schemes it reads (`BodyDigest`); not signed, it only
        /// shapes later requests.
        public static let digests = "x-fedroute-digests"
    }
}

public struct JoinRequest: Sendable, Codable, Equatable {
    public var protocolVersion: String
    public init(protocolVersion: String = Wire.protocolVersion) { self.protocolVersion = protocolVersion }
}

public struct JoinResponse: Sendable, Codable, Equatable {
    public var federation: String
    /// Sent back in `x-fedroute-session` with every later request of this process.
    public var session: String

    public init(federation: String, session: String) {
        self.federation = federation
        self.session = session
    }
}

/// One unit of work for a client.
public struct TaskEnvelope: Sendable, Codable, Equatable {
    public var taskID: String
    public var request: FederatedRequest
    /// Seconds the coordinator waits for the reply before it gives up on this client for the step.
    public var deadlineSeconds: Double

    public init(taskID: String, request: FederatedRequest, deadlineSeconds: Double) {
        self.taskID = taskID
        self.request = request
        self.deadlineSeconds = deadlineSeconds
    }
}

public struct PollResponse: Sendable, Codable, Equatable {
    public var task: TaskEnvelope?
    /// Training is over; the client may exit.
    public var finished: Bool
    /// With `finished`: the federation's router files by family (for local personalisation).
    public var routers: [String: Data]?
    /// With `finished`: the federation's local MLP training settings (fine-tuning starts from them).
    public var fineTuning: LocalTrainingSettings?
    /// With `finished`: the MF-Router's local training settings, when the federation trained one.
    public var mfFineTuning: LocalTrainingSettings?

    public init(task: TaskEnvelope?, finished: Bool, routers: [String: Data]? = nil, fineTuning: LocalTrainingSettings? = nil,
                mfFineTuning: LocalTrainingSettings? = nil) {
        self.fineTuning = fineTuning
        self.mfFineTuning = mfFineTuning
        self.task = task
        self.finished = finished
        self.routers = routers
    }
}

/// A client's answer to a task: a reply, or why it could not produce one.
public struct ReplyEnvelope: Sendable, Codable, Equatable {
    public var taskID: String
    public var reply: FederatedReply?
    public var error: String?

    public init(taskID: String, reply: FederatedReply? = nil, error: String? = nil) {
        self.taskID = taskID
        self.reply = reply
        self.error = error
    }
}

/// The body of every error response.
public struct WireError: Sendable, Codable, Equatable, Error, CustomStringConvertible {
    public var error: String
    /// The HTTP status the coordinator answers with (400 when nil).
    public var status: Int?
    public init(_ error: String, status: Int? = nil) {
        self.error = error
        self.status = status
    }
    public var description: String { error }
}
