import FedRouteFeatures
import FedRouteRouters
import Foundation

/// What a `FederationJob` trains and how long it waits, whatever the transport.
public struct FederationJobConfiguration: Sendable, Codable, Equatable {
    /// A name for logs and router metadata.
    public var federation: String
    /// Families to train, in this order (each must be federated: `RouterFamily.federated`).
    public var families: [RouterFamily]
    public var encoder: HashedTFIDFEncoder.Configuration
    public var mlp: FederatedMLPConfiguration
    /// The MF-Router's federation; nil: `mlp`'s rounds and sampling with the MF defaults
    /// (`effectiveMF`).
    public var mf: FederatedMLPConfiguration?
    public var kmeans: FederatedKMeansConfiguration
    /// Clients that must be reachable before each training step starts.
    public var minimumOnline: Int
    public var roundDeadlineSeconds: Double
    /// How long setup waits for every client, and a round for `minimumOnline`, before giving up.
    public var joinTimeoutSeconds: Double
    /// After a restart every client's session is gone: the first training step of the resumed job
    /// waits this long for all of them to re-join before settling for `minimumOnline` (nil: 10 s).
    public var rejoinGraceSeconds: Double?
    /// Checkpoints (state.frames; an older state.json is read) go here; a restarted job resumes from them.
    public var stateDirectory: String
    /// Router files and summary.json go here.
    public var outputDirectory: String
    /// A fully labelled native JSONL table held by the coordinator: AUC is reported after every round.
    public var validation: String?
    /// Safe routers: each router file carries a gate calibrated on the clients' held-out rows (nil: none).
    public var safety: FederatedSafety?

    public init(federation: String, families: [RouterFamily] = RouterFamily.federated, encoder: HashedTFIDFEncoder.Configuration,
                mlp: FederatedMLPConfiguration, kmeans: FederatedKMeansConfiguration, minimumOnline: Int,
                roundDeadlineSeconds: Double, joinTimeoutSeconds: Double, rejoinGraceSeconds: Double? = nil,
                stateDirectory: String, outputDirectory: String, validation: String? = nil, mf: FederatedMLPConfiguration? = nil,
                safety: FederatedSafety? = nil) {
        self.mf = mf
        self.safety = safety
        self.federation = federation
        self.families = families
        self.encoder = encoder
        self.mlp = mlp
        self.kmeans = kmeans
        self.minimumOnline = minimumOnline
        self.roundDeadlineSeconds = roundDeadlineSeconds
        self.joinTimeoutSeconds = joinTimeoutSeconds
        self.rejoinGraceSeconds = rejoinGraceSeconds
        self.stateDirectory = stateDirectory
        self.outputDirectory = outputDirectory
        self.validation = validation
    }

    /// The MF-Router settings in effect.
    public var effectiveMF: FederatedMLPConfiguration {
        if let mf { return mf }
        let d = FederatedMLPConfiguration.matrixFactorization
        return mlp.matrixFactorization(rank: d.hiddenDimension, optimizer: d.local.optimizer)
    }

    /// The re-join grace in effect.
    public var rejoinGrace: Duration { .milliseconds(Int64((rejoinGraceSeconds ?? 10) * 1000)) }
    public var roundDeadline: Duration { .milliseconds(Int64(roundDeadlineSeconds * 1000)) }
    public var joinTimeout: Duration { .milliseconds(Int64(joinTimeoutSeconds * 1000)) }

    /// Checks the settings for a federation of `clients` clients; the message names what is wrong.
    public func validate(clients: Int) throws {
        if let problem = RouterFamily.federatedProblem(families) { throw FederationError.invalidConfiguration(problem) }
        guard (1...max(1, clients)).contains(minimumOnline) else {
            throw FederationError.invalidConfiguration("minimumOnline must be in 1…\(clients)")
        }
        guard roundDeadlineSeconds > 0, joinTimeoutSeconds > 0, roundDeadlineSeconds.isFinite, joinTimeoutSeconds.isFinite else {
            throw FederationError.invalidConfiguration("deadlines must be finite and > 0")
        }
        if let g = rejoinGraceSeconds, !(g.isFinite && g >= 0) { throw FederationError.invalidConfiguration("rejoinGraceSeconds must be ≥ 0, not \(g)") }
        if let problem = safety?.problem { throw FederationError.invalidConfiguration(problem) }
        if families.contains(.mlp) { try mlp.validate(clients: clients) }
        if families.contains(.mf) {
            let mf = effectiveMF
            guard mf.trunk == .linear, mf.trunkLayers == 1 else {
                throw FederationError.invalidConfiguration("mf must have one linear trunk layer (trunk: linear, trunkLayers: 1)")
            }
            try mf.validate(clients: clients)
        }
        if mlp.secureAggregation && clients < 2 { throw FederationError.invalidConfiguration("secure aggregation needs ≥ 2 clients") }
    }
}
