import FedRouteFederation
import FedRouteFeatures
import FedRouteRouters
import Foundation
import Yams

/// Everything `fedroute coordinator` needs (YAML or JSON; every key but `tls`, `validation`, `mf` and
/// `rejoinGraceSeconds` is required; see docs/FEDERATION.md and `fedroute simulate
/// --export-federation`, which writes one). The keys are flat: where to listen and who may join,
/// plus the `FederationJobConfiguration` (`job`).
public struct CoordinatorConfiguration: Sendable, Codable, Equatable {
    public struct TLSFiles: Sendable, Codable, Equatable {
        public var certificate: String
        public var key: String
        public init(certificate: String, key: String) { self.certificate = certificate; self.key = key }
    }

    public struct Client: Sendable, Codable, Equatable {
        public var id: String
        /// Base64 raw Ed25519 public key (`fedroute federation keygen` prints it).
        public var publicKey: String
        public init(id: String, publicKey: String) { self.id = id; self.publicKey = publicKey }
    }

    public var federation: String
    public var host: String
    public var port: Int
    /// Nil serves plaintext HTTP/1.1 (loopback experiments only).
    public var tls: TLSFiles?
    public var clients: [Client]
    /// Families to train, in this order (`mlp`, `kmeans`, `mf`).
    public var families: [RouterFamily]
    public var encoder: HashedTFIDFEncoder.Configuration
    public var mlp: FederatedMLPConfiguration
    /// The MF-Router's federation (optional: absent, `mlp`'s rounds and sampling with the MF defaults).
    public var mf: FederatedMLPConfiguration?
    public var kmeans: FederatedKMeansConfiguration
    /// Clients that must be online before each MLP round starts.
    public var minimumOnline: Int
    public var roundDeadlineSeconds: Double
    /// How long setup waits for every client, and a round for `minimumOnline`, before giving up.
    public var joinTimeoutSeconds: Double
    /// After a restart every client's session is gone: the first round of the resumed job waits this
    /// long for all of them to re-join before settling for `minimumOnline` (absent: 10 s).
    public var rejoinGraceSeconds: Double?
    /// Checkpoints (state.frames; an older state.json is read) go here; a restarted coordinator resumes from them.
    public var stateDirectory: String
    /// Router files and summary.json go here.
    public var outputDirectory: String
    /// A fully labelled native JSONL table held by the coordinator: AUC is reported after every round.
    public var validation: String?
    /// Compression of tensor frames with clients that read it (absent: `none`). Pays on slow links only.
    public var frameCompression: FrameCompression?
    /// Safe routers (absent: none): `{bands, standardErrors}`, both optional; see `FederatedSafety`.
    public var safety: FederatedSafety?

    public init(federation: String, host: String, port: Int, tls: TLSFiles?, clients: [Client], families: [RouterFamily] = RouterFamily.federated,
                encoder: HashedTFIDFEncoder.Configuration, mlp: FederatedMLPConfiguration, kmeans: FederatedKMeansConfiguration,
                minimumOnline: Int, roundDeadlineSeconds: Double, joinTimeoutSeconds: Double, stateDirectory: String,
                outputDirectory: String, validation: String?, rejoinGraceSeconds: Double? = nil, mf: FederatedMLPConfiguration? = nil,
                safety: FederatedSafety? = nil) {
        self.mf = mf
        self.safety = safety
        self.federation = federation
        self.host = host
        self.port = port
        self.tls = tls
        self.clients = clients
        self.families = families
        self.encoder = encoder
        self.mlp = mlp
        self.kmeans = kmeans
        self.minimumOnline = minimumOnline
        self.roundDeadlineSeconds = roundDeadlineSeconds
        self.joinTimeoutSeconds = joinTimeoutSeconds
        self.stateDirectory = stateDirectory
        self.outputDirectory = outputDirectory
        self.validation = validation
        self.rejoinGraceSeconds = rejoinGraceSeconds
    }

    /// The training job these settings describe.
    public var job: FederationJobConfiguration {
        FederationJobConfiguration(federation: federation, families: families, encoder: encoder, mlp: mlp, kmeans: kmeans,
                                   minimumOnline: minimumOnline, roundDeadlineSeconds: roundDeadlineSeconds,
                                   joinTimeoutSeconds: joinTimeoutSeconds, rejoinGraceSeconds: rejoinGraceSeconds,
                                   stateDirectory: stateDirectory, outputDirectory: outputDirectory, validation: validation, mf: mf,
                                   safety: safety)
    }

    public static func load(path: String) throws -> CoordinatorConfiguration {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw WireError("cannot read the coordinator configuration \(path): \(error.localizedDescription)") }
        let c: CoordinatorConfiguration
        do { c = try YAMLDecoder().decode(CoordinatorConfiguration.self, from: text) } catch let e as DecodingError {
            throw WireError("\(path): \(Self.describe(e))")
        } catch { throw WireError("\(path): \(error)") }
        try c.validate(path: path)
        return c
    }

    static func describe(_ e: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String { path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description }
        switch e {
        case .keyNotFound(let k, let ctx): return "\(at(ctx.codingPath + [k])) is missing"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx): return "\(at(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    func validate(path: String) throws {
        let ids = clients.map(\.id)
        guard !ids.isEmpty, Set(ids).count == ids.count else { throw WireError("\(path): clients must be non-empty with unique ids") }
        guard (0...65535).contains(port) else { throw WireError("\(path): the port must be in 0…65535") }
        do { try job.validate(clients: clients.count) } catch let e as FederationError {
            guard case .invalidConfiguration(let why) = e else { throw WireError("\(path): \(e)") }
            throw WireError("\(path): \(why)")
        }
    }
}
